"""`data=frames data.path=...`: your own videos, from one `.npz` file (no pickles) or a folder of GIF files.

The `.npz` holds either one array of videos, (N, T, H, W) or (N, T, C, H, W), with an optional `lengths` (N,)
giving each video's real frames (the rest padding), or one array per video, (T_i, H, W) or (T_i, C, H, W). A
folder holds `.gif` files, one video each, read by Pillow as grey frames. Pixels are uint8 (0 to 255) or floats in
[0, 1]; every video has the same frame shape and at least two frames. Validation and test videos are a seeded
random `val_fraction` and `test_fraction` of them; training batches are random crops of at most `seq_len` frames,
evaluation reads every video whole, padded and masked as the music data is.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vrnn_lightning.data.base import check_counts
from vrnn_lightning.data.frames import FrameDataModule, binarised
from vrnn_lightning.data.real_valued import split_off
from vrnn_lightning.data.variable_length import VariableLengthLoaders
from vrnn_lightning.errors import ConfigError


def as_frames(array: np.ndarray, where: str) -> Tensor:
    """A video (T, H, W) or (T, C, H, W) of uint8 or floats in [0, 1] -> float32 (T, C, H, W) in [0, 1]."""
    if array.ndim not in (3, 4) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ConfigError(f"{where} has shape {array.shape} ({array.dtype}); a video is (T, H, W) or (T, C, H, W)")
    if len(array) < 2:
        raise ConfigError(f"{where} has {len(array)} frame; a video needs at least 2 (one seen, one predicted)")
    if array.dtype == np.uint8:
        frames = torch.from_numpy(array.astype(np.float32) / 255)
    else:
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise ConfigError(f"{where} holds NaN or infinite pixels; remove or fill them")
        if values.min() < 0 or values.max() > 1:
            raise ConfigError(
                f"{where} holds pixels from {values.min():g} to {values.max():g}; give uint8 or floats in [0, 1]"
            )
        frames = torch.from_numpy(values)
    return frames if frames.ndim == 4 else frames.unsqueeze(1)


def read_gif(path: Path) -> np.ndarray:
    """A GIF's frames as uint8 (T, H, W), grey."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as image:
            return np.stack([np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(image)])
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} cannot be read as a GIF ({err}); replace or remove it") from None


@lru_cache(maxsize=4)
def read_videos(path: str, modified: float) -> tuple[Tensor, ...]:
    """Every video of `path` (`modified` keys the cache to the file's version), checked: (T_i, C, H, W) each."""
    source = Path(path)
    if source.is_dir():
        files = sorted(source.glob("*.gif"))
        if not files:
            raise ConfigError(f"data.path={path} holds no .gif files; add some or give a .npz file")
        videos = [as_frames(read_gif(f), str(f)) for f in files]
    else:
        try:
            archive = np.load(source, allow_pickle=False)
            arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as err:
            raise ConfigError(f"data.path={path} cannot be read as .npz ({err}); write it with numpy.savez") from None
        lengths = arrays.pop("lengths", None)
        if len(arrays) == 1 and next(iter(arrays.values())).ndim in (4, 5):
            name, stacked = next(iter(arrays.items()))
            counts = [stacked.shape[1]] * len(stacked) if lengths is None else [int(n) for n in lengths]
            if len(counts) != len(stacked) or any(n < 1 or n > stacked.shape[1] for n in counts):
                raise ConfigError(
                    f"data.path={path}: 'lengths' must give each of the {len(stacked)} videos of '{name}' a length "
                    f"from 1 to {stacked.shape[1]}"
                )
            videos = [
                as_frames(v[:n], f"data.path={path} '{name}'[{i}]")
                for i, (v, n) in enumerate(zip(stacked, counts, strict=True))
            ]
        else:
            videos = [as_frames(a, f"data.path={path} '{name}'") for name, a in arrays.items()]
    if not videos:
        raise ConfigError(f"data.path={path} holds no videos")
    shape = videos[0].shape[1:]
    for i, video in enumerate(videos):
        if video.shape[1:] != shape:
            raise ConfigError(
                f"data.path={path}: video {i} has frames {tuple(video.shape[1:])}, video 0 {tuple(shape)}; "
                "every video needs the same frame shape"
            )
    if len(videos) < 3:
        raise ConfigError(f"data.path={path} holds {len(videos)} videos; training, validation and test need 3 or more")
    return tuple(videos)


def videos_at(path: Any) -> tuple[Tensor, ...]:
    if path is None or str(path).strip() == "":
        raise ConfigError("data=frames needs data.path=<a .npz file or a folder of .gif files>")
    source = Path(str(path)).expanduser()
    if not source.exists():
        raise ConfigError(f"data.path={path} does not exist; give a .npz file or a folder of .gif files")
    if source.is_file() and source.suffix != ".npz":
        raise ConfigError(f"data.path={path} is not a .npz file or a folder of .gif files; save it as one of those")
    return read_videos(str(source.resolve()), source.stat().st_mtime)


class FramesDataModule(VariableLengthLoaders, FrameDataModule):
    """Your videos (B, T, C, H, W), padded and masked where their lengths differ."""

    binarize = False

    def __init__(
        self,
        path: str | None = None,
        binarize: bool = False,
        seq_len: int = 20,
        seen: int = 5,
        predicted: int = 10,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 16,
        batches_per_epoch: int = 100,
        eval_batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # checkpoints carry them, so eval and sample can rebuild this module
        self.check_settings(dict(self.hparams))
        self.path, self.binarize, self.seen, self.predicted = path, binarize, seen, predicted
        self.max_len, self.batch_size, self.batches_per_epoch = seq_len, batch_size, batches_per_epoch
        self.eval_batch_size, self.seed = eval_batch_size, seed
        self.fractions = (val_fraction, test_fraction)
        self.frame_shape = tuple(videos_at(path)[0].shape[1:])
        self.splits: dict[str, list[Tensor]] = {}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        super().check_settings(settings)
        check_counts(settings, ("seq_len", "batches_per_epoch"))
        for key in ("val_fraction", "test_fraction"):
            value = settings.get(key, 0.1)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 0.5:
                raise ConfigError(f"data.{key}={value!r} must be a fraction above 0 and below 0.5")
        videos_at(settings.get("path"))  # read and checked now, before any run folder

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        videos = [binarised(v) if self.binarize else v for v in videos_at(self.path)]
        rest, val = split_off(videos, self.fractions[0], self.seed)
        train, test = split_off(rest, self.fractions[1] * len(videos) / len(rest), self.seed + 1)
        self.splits = {"train": train, "val": val, "test": test}

    def split_sequences(self, split: str) -> list[Tensor]:
        return self.splits[split]
