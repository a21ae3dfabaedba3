"""The data contract: what the training, evaluation and sampling code may ask of a data module.

A `SequenceDataModule` serves batches `Batch(x, mask)`: x (B, T, ...) and a mask (B, T) of real steps (1)
and padding (0, real steps first). It names `x_dim` (what the likelihood head needs), and `metadata`, one
plain dict that rides in every checkpoint: the step unit, the figures in the data's own units, and whatever
its samples need to be read (a vocabulary, an image layout). `write_samples` turns a model's generations into
files, from the metadata alone where it can. Nothing above this folder asks what kind of data it has.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import lightning as L
import torch
from torch import Tensor

from vrnn_lightning.errors import ConfigError


class Batch(NamedTuple):
    x: Tensor  # (B, T, ...)
    mask: Tensor  # (B, T) float: 1 for real steps, 0 for padding
    # False where each row continues the previous batch's row (truncated BPTT over streams): the model may
    # start from the state the previous batch ended in
    first: bool = True


def full_batch(x: Tensor) -> Batch:
    """A batch of equal-length sequences: every step is real."""
    return Batch(x, torch.ones(x.shape[:2]))


def figure(per: str, scale: float, offset: float = 0.0) -> dict[str, Any]:
    """A figure in the data's own units: (the bound per "step" or per "sequence" + `offset` nats for every real
    step in it) times `scale`. The offset carries a normalisation's log-Jacobian: data divided by std_d scores
    sum_d log std_d nats per step more in its own units."""
    if per not in ("step", "sequence"):
        raise ValueError(f"a figure is per 'step' or per 'sequence', not {per!r}")
    return {"per": per, "scale": scale, "offset": offset}


def figure_value(figure: dict[str, Any], nats_per_step: Any, nats_per_sequence: Any, steps_per_sequence: Any) -> Any:
    """A figure's value from the bound per step and per sequence (floats or tensors)."""
    offset = figure.get("offset", 0.0)  # checkpoints from before offsets lack it
    if figure["per"] == "step":
        return (nats_per_step + offset) * figure["scale"]
    return (nats_per_sequence + offset * steps_per_sequence) * figure["scale"]


def check_counts(settings: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Each `data.<key>` present in `settings` a whole number >= 1, else one ConfigError naming it."""
    for key in keys:
        value = settings.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key}={value!r} must be a whole number >= 1")


@dataclass
class SampleRequest:
    """What `python -m vrnn_lightning.sample` asks for; each kind of data uses the fields that apply to it."""

    num_samples: int = 4
    length: int = 500
    temperature: float = 1.0
    seed: int = 0
    prompt: str = ""
    image_scale: int = 3
    futures: int = 20  # frames: futures drawn per video
    predicted: int | None = None  # frames: how many each future has (None: the data's own)


class SequenceDataModule(L.LightningDataModule):
    """Base of every data module; subclasses set `step_unit`, `x_dim` and `metadata`'s own entries."""

    step_unit: str = "step"  # what one time step is: "char", "row", ...
    figures: ClassVar[dict[str, dict[str, Any]]] = {}  # name -> figure(per, scale), logged as */<name>
    note: str | None = None  # a caveat that goes with every figure measured on this data, once set up

    eval_splits: ClassVar[tuple[str, ...]] = ("val", "test")  # what `eval split=...` may name
    has_streams: ClassVar[bool] = False  # one long sequence, read as contiguous streams (`streams`)
    carries_state: bool = False  # its batches continue one another (truncated BPTT): a model state goes between them
    takes_prompt: ClassVar[bool] = False  # `sample prompt=...` continues a text
    # What one step's values are, for the heads that fit them (a Likelihood's `fits`): "symbols" (integer ids),
    # "binary" (0/1), "unit_interval" (intensities in [0, 1]) or "real".
    values: ClassVar[str] = "real"

    @classmethod
    def values_for(cls, settings: dict[str, Any]) -> str:
        """The kind of values this module serves with `settings` (its constructor's arguments)."""
        return cls.values

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """Refuse, in one ConfigError naming the `data.*` option and what would fit, a setting the module cannot
        use; called by its constructor, and on the composed config before a run folder is claimed."""

    @property
    def x_dim(self) -> int:
        raise NotImplementedError

    def check_split(self, split: str) -> None:
        if split not in self.eval_splits:
            raise ConfigError(
                f"split={split} is not a split of {type(self).__name__}; choose one of {', '.join(self.eval_splits)}"
            )

    def eval_dataloader(self, split: str) -> Any:
        """The batches of an evaluation split, each sequence read from the zero state."""
        self.check_split(split)
        return self.test_dataloader() if split == "test" else self.val_dataloader()

    def streams(self, split: str, count: int, window: int) -> list[Batch]:
        """An evaluation split as `count` contiguous streams read `window` steps at a time: batches (count,
        <= window) in reading order, each continuing the last, for evaluation with the state carried."""
        raise ConfigError(
            f"{type(self).__name__} has no contiguous streams to carry a state along; eval.stateful=true "
            "applies to one long sequence such as text (data=shakespeare)"
        )

    def prediction_metrics(
        self, model: Any, split: str, futures: int, predicted: int | None, seed: int, folder: Path
    ) -> dict[str, Any]:
        """Figures of predictions that `eval` adds for this data (frames: PSNR and SSIM of the best of `futures`
        predicted futures); none for data without them."""
        return {}

    @property
    def metadata(self) -> dict[str, Any]:
        """Plain values only (checkpoints carry them): the step unit, the figures and what samples need."""
        return {"step_unit": self.step_unit, "figures": dict(self.figures)}

    @classmethod
    def write_samples(
        cls, model: Any, metadata: dict[str, Any], folder: Path, request: SampleRequest, load_data: Any
    ) -> list[Path]:
        """Generate with `model` and write the files a person looks at; returns their paths. `load_data()`
        builds this data module from the checkpoint, for writers that need real sequences to continue."""
        raise NotImplementedError(f"{cls.__name__} cannot write samples")
