"""The objective contract: what the LightningModule and `eval` may ask of a training objective.

An objective owns its settings and their checks (`check_settings`, called before any run folder is made and by
its constructor), the loss it trains (`training_terms`), the bound it is judged by (`bound`, per sequence, for
validation, checkpoint selection and `eval`) and that figure's name (`figure`: `val/<figure>`). The module runs
whichever it is handed; nothing outside `objectives/` branches on which one it is.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models.base import SequenceModel, SequenceOutput, locate
from vrnn_lightning.objectives.bounds import trajectories

# (x, mask, samples) -> the model's pass with `samples` trajectories per sequence: the module's (noise drawn
# outside the model, through CUDA graphs where they are on) or, outside training, `trajectories` of the model.
Pass = Callable[..., SequenceOutput]


class Terms(NamedTuple):
    """What a training step logs: the loss the optimiser sees, the bound's reconstruction and KL terms summed
    over the batch's real steps (`mask`), a model's auxiliary cost per real step (outside the bound), the pass
    itself where the callbacks can read one, and the objective's own figures (`train/<name>`)."""

    loss: Tensor
    recon_total: Tensor
    kl_total: Tensor
    mask: Tensor
    auxiliary: Tensor | None = None
    out: SequenceOutput | None = None
    figures: dict[str, Tensor | float] | None = None


class Objective(ABC):
    """A training objective of the contract's models; its settings are its constructor's arguments."""

    figure: ClassVar[str] = "loss"  # judged by val/<figure>: `loss` is the negative ELBO every run logs
    carries_state: ClassVar[bool] = False  # trains on windows that continue a stream (data.stateful=true)
    needs_latents: ClassVar[bool] = False  # has nothing to add for a model without latent variables
    graphed: ClassVar[bool] = True  # its training passes go through the module's CUDA graphs where they are on
    steps_alone: ClassVar[bool] = False  # steps the model one observation at a time (a head reading past ones cannot)

    def __init__(self, **settings: Any) -> None:
        self.check_settings(settings)
        self.settings = settings
        self.config = {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", **settings}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """Raise ValueError, in one line naming `objective.<setting>` and what it must be, for the first of
        `settings` this objective cannot take (here: an objective without settings takes none)."""
        for name in settings:
            raise ValueError(f"objective.{name} is not a setting of {cls.__name__}, which has none")

    def check_model(self, model: SequenceModel) -> None:
        """Raise ValueError, in one line, where this objective cannot train `model`."""
        if self.needs_latents and not model.latent_dim:
            raise ValueError(
                f"objective={self.name} filters or weighs latent variables, and {type(model).__name__} has none; "
                "objective=elbo is already its exact likelihood"
            )
        if self.steps_alone and model.likelihood.reads_past_frames:
            raise ValueError(skips_message(f"objective={self.name}"))

    def check_batch(self, batch: Any) -> None:
        """Refuse, in one line, a training batch that continues the last one's stream where this objective does
        not carry the state (config checks refuse data.stateful=true with it first; this guards direct use)."""
        if not batch.first and not self.carries_state:
            raise ConfigError(
                f"objective={self.name} draws K trajectories per window and cannot carry one state between "
                "windows; use objective=elbo with data.stateful=true"
            )

    @property
    def name(self) -> str:
        """Its option in conf/objective/."""
        return type(self).__name__.lower()

    def describe(self) -> str:
        """One line for the log: the objective and its settings."""
        return ", ".join([type(self).__name__, *(f"{k}={v}" for k, v in self.settings.items())])

    @abstractmethod
    def training_terms(self, module: Any, batch: Any) -> Terms:
        """The loss of one training batch and what it logs; `module` is the SequenceModule (its `run_model`,
        its step count, the state carried between windows)."""

    def bound(self, model: SequenceModel, x: Tensor, mask: Tensor, run: Pass | None = None) -> Tensor | None:
        """The bound on log p(x) this objective is judged by, per sequence (B,), in nats (higher is better);
        None where that is the ELBO, which every pass computes already."""
        return None

    def bound_in_chunks(self, model: SequenceModel, x: Tensor, mask: Tensor, chunk: int) -> Tensor:
        """`bound` per sequence (B,) in float64, about `chunk` sequence-steps (sequences x K x steps) at once:
        memory grows with K and with the sequences' length. A sequence whose K trajectories alone are more than
        `chunk` runs on its own (IWAE splits its K further; a filter needs its particles together)."""
        per_chunk = max(1, chunk // (self.settings.get("samples", 1) * x.shape[1]))
        parts = zip(x.split(per_chunk), mask.split(per_chunk), strict=True)
        return torch.cat([self.bound(model, part, part_mask).double() for part, part_mask in parts])


def default_pass(model: SequenceModel) -> Pass:
    return lambda x, mask, samples=1: trajectories(model, x, mask, samples)


def skips_message(subject: str) -> str:
    """Why a particle filter (`subject`, e.g. "objective=fivo") cannot run a head with skips, and what can."""
    return (
        f"{subject} steps the model one frame at a time, and model.likelihood.skips=true reads an earlier frame "
        "it is not handed; with skips use objective=elbo or iwae and eval.iw_samples, or set skips=false"
    )


def check_count(settings: dict[str, Any], name: str) -> None:
    value = settings.get(name, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"objective.{name} must be a whole number >= 1, got {value!r}")


def judged_by(target: str) -> str:
    """The validation figure a run trained by the objective class `target` is judged by (`val/<figure>`):
    what its checkpoints are chosen by (conf/callbacks/model_checkpoint.yaml resolves it)."""
    try:
        found = locate(target)
    except (ImportError, AttributeError, ValueError):
        return "val/loss"
    return f"val/{found.figure}" if isinstance(found, type) and issubclass(found, Objective) else "val/loss"
