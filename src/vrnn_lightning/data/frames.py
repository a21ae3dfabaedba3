"""Image sequences frame by frame: the base of the frame data modules (Moving MNIST, bouncing balls, your own
videos). A batch is x (B, T, C, H, W) in [0, 1] with a mask (B, T); `x_dim` is the frame's shape [C, H, W],
which the frame head (`model/likelihood=frames`) reads. The figures: nats per frame (the step) and bits per
pixel; the pictures and `sample`: the truth beside predicted futures; `eval`: PSNR and SSIM of the best of N
futures per predicted step (`prediction_metrics`)."""

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from vrnn_lightning.data.base import Batch, SampleRequest, SequenceDataModule, check_counts, figure, full_batch
from vrnn_lightning.data.images import image_grid, write_png
from vrnn_lightning.data.predictions import best_of_scores, future_pictures, predict_futures, scored_futures, write_gif
from vrnn_lightning.data.resumable import EpochDraws, ResumableLoader
from vrnn_lightning.errors import ConfigError


def binarised(frames: Tensor) -> Tensor:
    """Pixels above one half are 1, the rest 0: binary frames that keep a digit's shape from one frame to the
    next (an independent draw per pixel and frame would add noise no model can predict)."""
    return (frames > 0.5).float()


class FrameDataModule(SequenceDataModule):
    """Sequences of frames (C, H, W). Subclasses set `frame_shape` and serve the loaders; this base checks the
    shared settings (`seen` frames before the predicted ones; `binarize`) and writes and scores predictions."""

    step_unit = "frame"
    frame_shape: tuple[int, int, int]
    seen: int = 5  # frames a prediction conditions on
    predicted: int = 10  # frames it predicts at test (SVG: 10 in training, 20 or more at test)
    binarize: bool = True

    @classmethod
    def values_for(cls, settings: dict[str, Any]) -> str:
        return "binary_frames" if settings.get("binarize", cls.binarize) else "unit_interval_frames"

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_counts(settings, ("batch_size", "eval_batch_size", "seen", "predicted"))
        for key in ("binarize", "download"):
            if key in settings and not isinstance(settings[key], bool):
                raise ConfigError(f"data.{key}={settings[key]!r} must be true or false")

    @property
    def x_dim(self) -> list[int]:
        return list(self.frame_shape)

    @property
    def figures(self) -> dict[str, dict[str, Any]]:  # type: ignore[override]
        return {"bits_per_pixel": figure("step", 1 / (math.log(2) * math.prod(self.frame_shape)))}

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            **super().metadata,
            "image_layout": "frames",
            "frame_shape": list(self.frame_shape),
            "seen": self.seen,
            "predicted": self.predicted,
        }

    @classmethod
    def write_samples(
        cls, model: Any, metadata: dict[str, Any], folder: Path, request: SampleRequest, load_data: Any
    ) -> list[Path]:
        """For `num_samples` test videos: `futures` futures of `predicted` frames after `seen` real ones, the truth
        beside the best, a random and the worst (futures.png, futures.gif), and a strip of prior samples."""
        datamodule = load_data()
        datamodule.setup("test")
        seen, predicted = metadata["seen"], request.predicted or metadata["predicted"]
        x = next(iter(datamodule.test_dataloader())).x[: request.num_samples]
        if x.shape[1] < seen + predicted:
            raise ConfigError(
                f"predicted={predicted} frames after {seen} seen ones need videos of {seen + predicted} frames; the "
                f"test videos have {x.shape[1]}: ask for predicted={x.shape[1] - seen} or fewer"
            )
        generator = torch.Generator(model.device).manual_seed(request.seed)
        futures = predict_futures(model, x, seen, predicted, request.futures, generator)
        strip, frames = future_pictures(x, futures, seen, torch.Generator().manual_seed(request.seed), len(x))
        samples = model.generate(seen + predicted, batch_size=len(x), generator=generator).float().cpu()
        prior = torch.stack([s.mean(1) for s in samples]).flatten(0, 1)  # (B * T, H, W)
        return [
            write_png(folder / "futures.png", strip, request.image_scale),
            write_gif(folder / "futures.gif", frames, request.image_scale),
            write_png(folder / "samples.png", image_grid(prior, seen + predicted), request.image_scale),
        ]

    def prediction_metrics(
        self, model: Any, split: str, futures: int, predicted: int | None, seed: int, folder: Path
    ) -> dict[str, Any]:
        """PSNR and SSIM of the best of `futures` futures of each video of `split`, per predicted step (after
        `seen` frames), averaged over the videos; their means over the steps; the curve as prediction.png."""
        predicted = predicted or self.predicted
        generator = torch.Generator(model.device).manual_seed(seed)
        psnr, ssim = [], []
        for batch in self.eval_dataloader(split):
            if batch.x.shape[1] < self.seen + predicted:
                raise ConfigError(
                    f"eval.predicted={predicted} frames after {self.seen} seen need videos of "
                    f"{self.seen + predicted} frames; split={split} has {batch.x.shape[1]}: ask for fewer"
                )
            if not bool(batch.mask[:, : self.seen + predicted].all()):
                raise ConfigError(
                    f"eval.predicted={predicted}: some videos of split={split} are shorter than "
                    f"{self.seen + predicted} frames; ask for fewer predicted frames"
                )
            scores = best_of_scores(*scored_futures(model, batch.x, self.seen, predicted, futures, generator))
            psnr.append(scores["psnr"])
            ssim.append(scores["ssim"])
        psnr_t, ssim_t = torch.cat(psnr).double(), torch.cat(ssim).double()  # (videos, predicted)
        curve = {"psnr": psnr_t.mean(0).tolist(), "ssim": ssim_t.mean(0).tolist()}
        write_curve(folder / "prediction.png", curve, futures, self.seen)
        (folder / "prediction.json").write_text(json.dumps(curve, indent=2) + "\n")
        return {
            f"best_of_{futures}_psnr": float(psnr_t.mean()),
            f"best_of_{futures}_ssim": float(ssim_t.mean()),
            "prediction_curve": curve,
        }


def write_curve(path: Path, curve: dict[str, list[float]], futures: int, seen: int) -> Path:
    """PSNR and SSIM against the predicted step, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, name in zip(axes, ("psnr", "ssim"), strict=True):
        steps = range(seen + 1, seen + 1 + len(curve[name]))
        axis.plot(list(steps), curve[name], marker="o", markersize=3)
        axis.set_xlabel("frame")
        axis.set_ylabel(f"{name.upper()}, best of {futures}")
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class GeneratedFrames(FrameDataModule):
    """Frames simulated on the fly (`make`): new training videos every epoch, drawn from a generator seeded by
    `seed` and the epoch (so a resumed run draws what the unbroken run drew), and fixed validation and test sets,
    each drawn once from its own generator seeded by `seed`. Validation videos are `seq_len` frames long, test
    videos `seen + predicted`."""

    def __init__(
        self,
        seq_len: int,
        seen: int,
        predicted: int,
        train_size: int,
        val_size: int,
        test_size: int,
        batch_size: int,
        eval_batch_size: int,
        binarize: bool,
        seed: int,
    ) -> None:
        super().__init__()
        self.seq_len, self.seen, self.predicted, self.binarize = seq_len, seen, predicted, binarize
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.videos: dict[str, Tensor] = {}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        super().check_settings(settings)
        check_counts(settings, ("seq_len", "train_size", "val_size", "test_size"))
        seen, seq_len = settings.get("seen", cls.seen), settings.get("seq_len")
        if seq_len is not None and seen >= seq_len:
            raise ConfigError(
                f"data.seen={seen} frames must be fewer than data.seq_len={seq_len}, so "
                "that some are predicted; lower data.seen or raise data.seq_len"
            )

    def make(self, count: int, steps: int, generator: torch.Generator, split: str) -> Tensor:
        """`count` videos of `steps` frames (count, steps, C, H, W) in [0, 1], drawn with `generator`."""
        raise NotImplementedError

    def served(self, videos: Tensor) -> Tensor:
        return binarised(videos) if self.binarize else videos

    def setup(self, stage: str | None = None) -> None:
        if self.videos:
            return
        lengths = {"val": self.seq_len, "test": self.seen + self.predicted}
        for offset, split in enumerate(("val", "test"), start=1):
            generator = torch.Generator().manual_seed(self.seed * 1000 + offset)  # fixed per seed and split
            self.videos[split] = self.served(self.make(self.sizes[split], lengths[split], generator, split))

    def train_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        return ResumableLoader(FreshVideos(self, rank, world))

    def val_dataloader(self) -> DataLoader:
        return DataLoader([full_batch(b) for b in self.videos["val"].split(self.eval_batch_size)], batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader([full_batch(b) for b in self.videos["test"].split(self.eval_batch_size)], batch_size=None)


class FreshVideos(EpochDraws):
    """An epoch of `train_size` new videos, simulated batch by batch; under DDP each rank keeps its part of the
    global batch."""

    def __init__(self, source: GeneratedFrames, rank: int, world_size: int) -> None:
        super().__init__(source.seed, source.batch_size, rank, world_size)
        self.source = source

    def __len__(self) -> int:
        return max(1, self.source.sizes["train"] // self.global_batch)

    def draws(self, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(len(self)):
            videos = self.source.make(self.global_batch, self.source.seq_len, generator, "train")
            yield full_batch(self.source.served(videos[self.own]))
