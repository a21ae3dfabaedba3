"""MNIST as sequences: each 28x28 digit is 28 steps of 28 pixels (rows, or columns).

Owns download (from a list of mirrors, md5-checked, never leaving a partial file under the final name),
IDX parsing, the split and binarisation. Standard split: 55,000 / 5,000 train / validation from the training
file, test on the 10,000 test images. A folder holding only the t10k pair (no network) gives the
`t10k_only` split: 80% / 10% / 10% (8,000 / 1,000 / 1,000) of those images, in file order; its figures are
not comparable with published ones, and the run says so.
"""

import gzip
import logging
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from vrnn_lightning.data.base import Batch, SampleRequest, SequenceDataModule, check_counts, full_batch
from vrnn_lightning.data.downloads import verified_file
from vrnn_lightning.data.images import picture_grids, write_png
from vrnn_lightning.data.resumable import EpochDraws, ResumableLoader
from vrnn_lightning.errors import ConfigError

log = logging.getLogger(__name__)

MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"]
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
IDX_MAGIC = {0x0801: 1, 0x0803: 3}  # unsigned-byte labels (1 dim), unsigned-byte images (3 dims)


def read_idx(path: Path) -> Tensor:
    """Parse a gzipped IDX file of unsigned bytes into a uint8 tensor; a bad magic or a short file is an error."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as err:
        raise ConfigError(f"{path} is not a complete gzip file ({err}); delete it so it is downloaded again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or (raw[2] << 8 | raw[3]) not in IDX_MAGIC:
        raise ConfigError(
            f"{path} has magic number {raw[:4].hex() or 'none'}, not an unsigned-byte IDX file "
            "(0x00000801 or 0x00000803); replace it with the published MNIST file"
        )
    dims = IDX_MAGIC[raw[2] << 8 | raw[3]]
    if len(raw) < 4 + 4 * dims:
        raise ConfigError(f"{path} is truncated inside its header; delete it so it is downloaded again")
    shape = struct.unpack(f">{dims}I", raw[4 : 4 + 4 * dims])
    size = 1
    for n in shape:
        size *= n
    body = raw[4 + 4 * dims :]
    if len(body) != size:
        raise ConfigError(
            f"{path} holds {len(body)} data bytes, its header promises {size} {shape}; "
            "delete it so it is downloaded again"
        )
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)


class ShuffledImages(EpochDraws):
    """Batches of shuffled images, each one gather; binarised afresh on every pass when `dynamic` is set."""

    def __init__(self, images: Tensor, batch_size: int, seed: int, rank: int, world_size: int, dynamic: bool) -> None:
        super().__init__(seed, batch_size, rank, world_size)
        self.images, self.dynamic = images, dynamic

    def __len__(self) -> int:
        return -(-len(self.images) // self.world_size // self.batch_size)

    def draws(self, generator: torch.Generator) -> Iterator[Batch]:
        order = torch.randperm(len(self.images), generator=generator)[self.rank :: self.world_size]
        for index in order.split(self.batch_size):
            batch = self.images[index].float() / 255  # (B, 28, 28)
            yield full_batch(torch.bernoulli(batch, generator=generator) if self.dynamic else batch)


class MNISTDataModule(SequenceDataModule):
    """MNIST digits as (B, 28, 28) sequences of rows (or columns) for the VRNN; a sequence is an image, so
    `*/loss_per_sequence` is the bound in nats per image."""

    def __init__(
        self,
        root: str = "data/mnist",
        mirrors: list[str] | None = None,
        download: bool = True,
        checksums: dict[str, str] | None = None,
        layout: str = "rows",
        binarize: bool = True,
        batch_size: int = 64,
        eval_batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # checkpoints carry them, so eval and sample can rebuild this module
        self.check_settings(dict(self.hparams))
        self.root, self.mirrors, self.download = Path(root).expanduser(), list(mirrors or MIRRORS), download
        self.checksums = {**MD5, **(checksums or {})}
        self.layout, self.binarize = layout, binarize
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.split: str | None = None
        self.missing_train_reason = ""
        self.images: dict[str, Tensor] = {}

    x_dim = 28  # pixels per step
    values = "binary"

    @classmethod
    def values_for(cls, settings: dict[str, Any]) -> str:
        return "binary" if settings.get("binarize", True) else "unit_interval"

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        layout = settings.get("layout", "rows")
        if layout not in ("rows", "columns"):
            raise ConfigError(f"data.layout={layout!r} is not valid: it must be rows or columns")
        check_counts(settings, ("batch_size", "eval_batch_size"))
        for key in ("binarize", "download"):
            if not isinstance(settings.get(key, True), bool):
                raise ConfigError(f"data.{key}={settings[key]!r} must be true or false")

    @property
    def step_unit(self) -> str:
        return self.layout[:-1]  # row | column

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "image_layout": self.layout}

    @classmethod
    def write_samples(
        cls, model: Any, metadata: dict[str, Any], folder: Path, request: SampleRequest, load_data: Any
    ) -> list[Path]:
        """PNG grids: `num_samples` test digits over their reconstructions, twice as many samples from the
        prior, and the test digits' top halves completed."""
        datamodule = load_data()
        datamodule.setup("test")
        digits = next(iter(datamodule.test_dataloader())).x[: request.num_samples]
        grids = picture_grids(model, digits, metadata["image_layout"], seed=request.seed)
        return [
            write_png(folder / f"{name.split('/')[-1]}.png", grid, request.image_scale) for name, grid in grids.items()
        ]

    def _file(self, name: str) -> Path:
        """The verified file `name`, downloaded first where it is missing and downloads are allowed."""
        return verified_file(name, self.root, self.mirrors, self.checksums[name], "md5", self.download)

    def prepare_data(self) -> None:
        self._files()

    def _files(self) -> list[Path]:
        """Both pairs where they can be had; only the t10k pair where the train pair is absent and unreachable."""
        test = [self._file(n) for n in TEST_FILES]
        try:
            return [self._file(n) for n in TRAIN_FILES] + test
        except ConfigError as err:
            if any((self.root / n).exists() for n in TRAIN_FILES):
                raise
            self.missing_train_reason = str(err)
            return test

    def setup(self, stage: str | None = None) -> None:
        if self.images:
            return
        files = self._files()
        if len(files) == 4:
            train = read_idx(files[0])
            self.split = "standard"
            self.images = {"train": train[:55_000], "val": train[55_000:], "test": read_idx(files[2])}
        else:
            log.warning(
                "MNIST training files unavailable (%s); using the t10k_only split: 80/10/10%% of the "
                "test images. Its figures are NOT comparable with published MNIST results.",
                self.missing_train_reason,
            )
            test = read_idx(files[0])
            self.split = "t10k_only"
            self.note = "t10k_only MNIST split: not comparable with published MNIST figures"
            train_end, val_end = len(test) * 8 // 10, len(test) * 9 // 10
            self.images = {"train": test[:train_end], "val": test[train_end:val_end], "test": test[val_end:]}
        if self.layout == "columns":
            self.images = {k: v.transpose(1, 2).contiguous() for k, v in self.images.items()}
        # Validation and test are binarised once, with a fixed seed, so their figures are stable.
        generator = torch.Generator().manual_seed(0)
        for stage_name in ("val", "test"):
            images = self.images[stage_name].float() / 255
            self.images[stage_name] = torch.bernoulli(images, generator=generator) if self.binarize else images

    def train_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        batches = ShuffledImages(self.images["train"], self.batch_size, self.seed, rank, world, self.binarize)
        return ResumableLoader(batches)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([full_batch(b) for b in self.images["val"].split(self.eval_batch_size)], batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader([full_batch(b) for b in self.images["test"].split(self.eval_batch_size)], batch_size=None)
