"""Real-valued multivariate sequences of different lengths (T_i x D each): the part every source shares.

A subclass reads its splits (`read_splits`: lists of (T_i, D) float arrays, "val" and "test" optional); this
module checks them (one width, finite values, no empty split), makes the missing splits by a seeded shuffle of
the training sequences (`val_fraction`, `test_fraction`), and normalises every dimension by the training
split's mean and std. Those statistics ride in the checkpoint (the data module's hyperparameters and the
metadata), so evaluation reuses them and samples come back in the data's own units.

Figures, in the data's own units (the normalisation's log-Jacobian, sum_d log std_d per step, added back):
`*/ll` the log-likelihood bound per step and `*/ll_per_sequence` per sequence (higher is better).
Training batches are random crops of at most `max_len` steps (shorter sequences whole); evaluation reads every
sequence whole, sorted by length.
"""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vrnn_lightning.data.base import SampleRequest, SequenceDataModule, check_counts, figure
from vrnn_lightning.data.variable_length import VariableLengthLoaders
from vrnn_lightning.errors import ConfigError

SPLITS = ("train", "val", "test")
MIN_STD = 1e-6  # a dimension constant over the training split is divided by 1, not by 0


def check_sequences(sequences: Sequence[Any], where: str, width: int | None = None) -> list[Tensor]:
    """(T_i, D) arrays -> float32 tensors, refusing in one line a wrong rank, an empty sequence, a width that
    differs from the first, or a NaN / Inf (named by sequence and step)."""
    checked = []
    for i, sequence in enumerate(sequences):
        array = np.asarray(sequence)
        if array.ndim != 2 or len(array) == 0 or not np.issubdtype(array.dtype, np.number):
            raise ConfigError(
                f"{where}: sequence {i} has shape {array.shape} ({array.dtype}); each must be numbers (steps, dims)"
            )
        width = array.shape[1] if width is None else width
        if array.shape[1] != width:
            raise ConfigError(
                f"{where}: sequence {i} is {array.shape[1]} wide, sequence 0 is {width}; every step needs the same dims"
            )
        bad = ~np.isfinite(array)
        if bad.any():
            step, dim = np.argwhere(bad)[0]
            raise ConfigError(
                f"{where}: sequence {i} holds {array[step, dim]} at step {step}, dim {dim}; remove or fill it"
            )
        checked.append(torch.as_tensor(array, dtype=torch.float32))
    return checked


def split_off(sequences: list[Tensor], fraction: float, seed: int) -> tuple[list[Tensor], list[Tensor]]:
    """A seeded random `fraction` of the sequences (at least one) and the rest, each in the original order."""
    order = torch.randperm(len(sequences), generator=torch.Generator().manual_seed(seed)).tolist()
    taken = set(order[: max(1, round(fraction * len(sequences)))])
    return (
        [s for i, s in enumerate(sequences) if i not in taken],
        [s for i, s in enumerate(sequences) if i in taken],
    )


class RealValuedDataModule(VariableLengthLoaders, SequenceDataModule):
    """Base of `data=arrays` and `data=uea`; subclasses implement `read_splits` and name `source`."""

    step_unit = "step"
    source = "the data"
    values = "real"

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_counts(settings, ("max_len", "batch_size", "batches_per_epoch", "eval_batch_size"))
        for key in ("val_fraction", "test_fraction"):
            value = settings.get(key, 0.1)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ConfigError(f"data.{key}={value!r} must lie between 0 and 1 (a share of the training set)")
        for key in ("normalize", "download"):
            if not isinstance(settings.get(key, True), bool):
                raise ConfigError(f"data.{key}={settings[key]!r} must be true or false")

    def __init__(
        self,
        max_len: int = 200,
        batch_size: int = 32,
        batches_per_epoch: int = 50,
        eval_batch_size: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        normalize: bool = True,
        normalization: dict[str, list[float]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        RealValuedDataModule.check_settings(  # the shared settings; a subclass checks its own before calling here
            dict(
                max_len=max_len,
                batch_size=batch_size,
                batches_per_epoch=batches_per_epoch,
                eval_batch_size=eval_batch_size,
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                normalize=normalize,
            )
        )
        self.max_len, self.batch_size, self.batches_per_epoch = max_len, batch_size, batches_per_epoch
        self.eval_batch_size, self.seed = eval_batch_size, seed
        self.sequences = self.make_splits(val_fraction, test_fraction, seed)
        width = self.sequences["train"][0].shape[1]
        if normalization is None:
            frames = torch.cat(self.sequences["train"]).double()  # (sum T_i, D)
            mean = frames.mean(0) if normalize else torch.zeros(width, dtype=torch.float64)
            std = frames.std(0, correction=0).clamp(min=MIN_STD) if normalize else torch.ones(width)
            normalization = {"mean": mean.tolist(), "std": std.double().tolist()}
        if len(normalization["mean"]) != width or len(normalization["std"]) != width:
            raise ConfigError(
                f"{self.source} is {width} wide but the checkpoint's normalisation covers "
                f"{len(normalization['mean'])} dims; evaluate on data of the width it was trained on"
            )
        self.normalization = normalization
        self.mean = torch.tensor(normalization["mean"], dtype=torch.float32)
        self.std = torch.tensor(normalization["std"], dtype=torch.float32)
        for split, sequences in self.sequences.items():
            self.sequences[split] = [(s - self.mean) / self.std for s in sequences]
        # Checkpoints carry the statistics: a model rebuilt for eval reads its data exactly as in training.
        self.save_hyperparameters(ignore=["normalization"])
        self.hparams["normalization"] = normalization

    def read_splits(self) -> dict[str, list[Any]]:
        """The splits the source has: "train" always, "val" and "test" where given; (T_i, D) arrays."""
        raise NotImplementedError

    def make_splits(self, val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[Tensor]]:
        read = self.read_splits()
        width = None
        sequences: dict[str, list[Tensor]] = {}
        for split in SPLITS:
            if split in read:
                sequences[split] = check_sequences(read[split], f"{self.source}, {split} split", width)
                if not sequences[split]:
                    raise ConfigError(f"{self.source}: the {split} split holds no sequences; give it some")
                width = sequences[split][0].shape[1]
        if "test" not in sequences:
            sequences["train"], sequences["test"] = split_off(sequences["train"], test_fraction, seed)
        if "val" not in sequences:
            sequences["train"], sequences["val"] = split_off(sequences["train"], val_fraction, seed + 1)
        if not sequences["train"]:
            raise ConfigError(f"{self.source}: too few sequences to split off validation and test; give more")
        return sequences

    @property
    def x_dim(self) -> int:
        return self.sequences["train"][0].shape[1]

    @property
    def metadata(self) -> dict[str, Any]:
        log_jacobian = float(sum(math.log(s) for s in self.normalization["std"]))  # nats per step
        return {
            **super().metadata,
            "figures": {
                "ll": figure("step", -1.0, log_jacobian),
                "ll_per_sequence": figure("sequence", -1.0, log_jacobian),
            },
            "normalization": self.normalization,
            "typical_length": int(np.median([len(s) for s in self.sequences["train"]])),
        }

    def split_sequences(self, split: str) -> list[Tensor]:
        return self.sequences[split]

    @classmethod
    def write_samples(
        cls, model: Any, metadata: dict[str, Any], folder: Path, request: SampleRequest, load_data: Any
    ) -> list[Path]:
        """`samples.npy` (num_samples, length, D) in the data's own units, and `samples.png`, line plots of
        their first dims. The model has no end-of-sequence: every sample is `length` steps."""
        from vrnn_lightning.data.line_plots import write_line_plots  # matplotlib only where pictures are made

        generator = torch.Generator(model.device).manual_seed(request.seed)
        with torch.no_grad():
            samples = model.generate(
                request.length, batch_size=request.num_samples, temperature=request.temperature, generator=generator
            ).cpu()
        samples = denormalize(samples, metadata["normalization"])
        path = folder / "samples.npy"
        np.save(path, samples.numpy())
        picture = write_line_plots(folder / "samples.png", {"sampled": samples})
        return [path, picture]


def denormalize(x: Tensor, normalization: dict[str, list[float]]) -> Tensor:
    """Normalised (..., D) values back in the data's own units."""
    mean, std = (torch.tensor(normalization[key], dtype=x.dtype, device=x.device) for key in ("mean", "std"))
    return x * std + mean
