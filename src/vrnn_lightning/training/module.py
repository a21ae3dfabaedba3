"""The LightningModule: the loss, its logging, the optimiser and its schedule; nothing else.

Every term is logged per step of the data (its `step_unit`: a character, an image row), in nats, counting real
steps only: `*/recon`, `*/kl`, `*/loss`; `*/loss_per_sequence` is the same bound per sequence, and the data's
own figures (`metadata["figures"]`, e.g. `*/bpc` for text) follow. `train/loss` is the objective being
optimised (recon + beta * KL, the KL floored per dimension with free bits; or, with `objective=iwae`, the
importance-weighted bound of `train_samples` trajectories; with `objective=fivo`, the bound of a particle filter
of `train_samples` particles, `train/resamplings` its resampling events per sequence; plus `auxiliary_weight`
times a model's auxiliary cost, `*/auxiliary`, where it has one); `val/loss` and `test/loss` are
always the full negative ELBO (beta = 1, no floor), so checkpoints are chosen by the bound. Samples, pictures,
latent usage and the random state are callbacks (`training/callbacks/`), which read `SequenceOutput`s that
`validation_step` and `test_step` return.
"""

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor

from vrnn_lightning.data.base import Batch, figure_value
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import SequenceModel, SequenceOutput
from vrnn_lightning.models.base import detach_state
from vrnn_lightning.models.objectives import RESAMPLING, Filtered, fivo_bound, mean_weight, trajectories
from vrnn_lightning.training.cuda_graphs import GraphedPasses, graphs_for
from vrnn_lightning.training.schedules import kl_weight, warmup_cosine

log = logging.getLogger(__name__)


class SequenceModule(L.LightningModule):
    """Trains any model of the contract (`models/base.py`) on any data of the contract (`data/base.py`); the
    data's metadata rides in its hyperparameters, so every checkpoint can read what its model generates."""

    def __init__(
        self,
        model: SequenceModel,
        optimizer: Callable[..., torch.optim.Optimizer],
        data_metadata: dict[str, Any],
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.1,
        kl_warmup_steps: int = 0,
        free_bits: float = 0.0,
        objective: str = "elbo",
        train_samples: int = 1,
        auxiliary_weight: float = 1.0,
        cuda_graphs: bool | str = "auto",
        resample_threshold: float = 0.5,
        resampling: str = "multinomial",
    ) -> None:
        super().__init__()
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"module.lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        if free_bits < 0:
            raise ValueError(f"module.free_bits must be >= 0 (nats per latent dimension), got {free_bits!r}")
        if objective not in ("elbo", "iwae", "fivo"):
            raise ValueError(f"module.objective must be 'elbo', 'iwae' or 'fivo', got {objective!r}")
        if isinstance(resample_threshold, bool) or not isinstance(resample_threshold, int | float):
            raise ValueError(f"module.resample_threshold must be a number from 0 to 1, got {resample_threshold!r}")
        if not 0 <= resample_threshold <= 1:
            raise ValueError(f"module.resample_threshold must be a number from 0 to 1, got {resample_threshold!r}")
        if resampling not in RESAMPLING:
            raise ValueError(f"module.resampling must be one of {', '.join(RESAMPLING)}, got {resampling!r}")
        if objective == "fivo" and not model.latent_dim:
            raise ValueError(
                "module.objective=fivo filters latent variables, and this model has none; "
                "module.objective=elbo is already its exact likelihood"
            )
        if isinstance(train_samples, bool) or not isinstance(train_samples, int) or train_samples < 1:
            raise ValueError(f"module.train_samples must be a whole number >= 1, got {train_samples!r}")
        if cuda_graphs not in ("auto", True, False):
            raise ValueError(f"module.cuda_graphs must be auto, true or false, got {cuda_graphs!r}")
        if objective != "elbo" and (free_bits > 0 or kl_warmup_steps > 0):
            raise ValueError(
                f"module.objective={objective} trains on its bound itself; "
                "unset module.free_bits and module.kl_warmup_steps (they shape the ELBO's KL)"
            )
        self.save_hyperparameters(ignore=["model", "optimizer"])
        self.model = model
        self.optimizer_factory = optimizer
        self.carried_states: dict[str, Any] = {}  # stage -> the state its last window ended in (streams)
        self.graphs: GraphedPasses | None = None  # the model's pass as CUDA graphs, where they apply
        self.graphs_decided = False

    def draw_noise(self, x: Tensor, samples: int = 1) -> Tensor | None:
        """The posterior noise of a pass over x (B, T, ...) with `samples` trajectories per sequence, drawn here,
        outside the model (and outside any CUDA graph), from the run's seeded generator: the draw the model would
        make itself, in the dtype it would use (autocast's under mixed precision), so eager and graphed runs, and
        resumed ones, draw alike."""
        if not self.model.latent_dim:
            return None
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else self.model.dtype
        return torch.randn(len(x) * samples, x.shape[1], self.model.latent_dim, device=x.device, dtype=dtype)

    def decide_graphs(self) -> None:
        """Whether the model's pass runs as CUDA graphs (`training/cuda_graphs.py` decides and logs why)."""
        self.graphs_decided = True
        self.graphs = graphs_for(self.hparams.cuda_graphs, self.device, self._trainer, self.model)

    def run_model(self, x: Tensor, mask: Tensor, state: Any = None, samples: int = 1) -> SequenceOutput:
        """The model's pass with noise drawn here, `samples` trajectories per sequence of x (rows b*K .. b*K+K-1
        of the output); through CUDA graphs where they apply."""
        if not self.graphs_decided:
            self.decide_graphs()
        noise = self.draw_noise(x, samples)
        if self.graphs is None and state is None:
            return trajectories(self.model, x, mask, samples, noise)
        if samples > 1:
            x, mask = x.repeat_interleave(samples, 0), mask.repeat_interleave(samples, 0)
        if self.graphs is not None:
            return self.graphs(x, mask, noise, state)
        return self.model(x, mask, noise, state=state)

    def teardown(self, stage: str) -> None:
        # After fit Lightning moves the model to the CPU and frees the cache; graphs replaying against the old
        # addresses would be wrong, so each stage (fit, then test) captures its own.
        if self.graphs is not None:
            log.info("CUDA graphs (%s): %s", stage, self.graphs.summary())
        self.graphs, self.graphs_decided = None, False

    def beta(self) -> float:
        return kl_weight(self.global_step, self.hparams.kl_warmup_steps)

    def kl_objective(self, out: SequenceOutput) -> Tensor:
        """The KL term the optimiser sees, per real step: with free bits, each dimension's batch-average KL is
        floored at `free_bits` nats (Kingma et al., 2016), so no dimension is pushed to zero for less than that."""
        steps = out.mask.sum()
        if self.hparams.free_bits <= 0 or out.posterior is None:
            return out.kl.sum() / steps
        per_dim = out.posterior.kl_per_dim(out.prior)  # (B, T, Z)
        per_dim = torch.where(out.mask.bool().unsqueeze(-1), per_dim, 0.0).sum((0, 1)) / steps
        return per_dim.clamp_min(self.hparams.free_bits).sum()

    def iwae_loss(self, batch: Batch) -> tuple[Tensor, SequenceOutput]:
        """The negative importance-weighted bound of `train_samples` trajectories per sequence (Burda et al.,
        2016), per real step; and the K-fold output, whose KL and reconstruction terms are logged as usual."""
        k = self.hparams.train_samples
        out = self.run_model(batch.x, batch.mask, samples=k)
        weights = out.log_weight().view(-1, k)  # (B, K)
        bound = mean_weight(weights)  # (B,) log p(x) >= this, in expectation
        return -bound.sum() / batch.mask.sum(), out

    def fivo_loss(self, batch: Batch) -> tuple[Tensor, Filtered]:
        """The negative FIVO bound of `train_samples` particles per sequence (`models/objectives.py`), per real
        step. Its steps run eager, one at a time (no CUDA graph: the particles are resampled between them)."""
        filtered = fivo_bound(
            self.model,
            batch.x,
            batch.mask,
            self.hparams.train_samples,
            self.hparams.resample_threshold,
            self.hparams.resampling,
        )
        return -filtered.bound.sum() / batch.mask.sum(), filtered

    def _shared_step(self, batch: Batch, stage: str) -> tuple[Tensor, SequenceOutput | None]:
        continues = not batch.first  # this batch continues its stage's last one, row by row (streams)
        objective = self.hparams.objective if stage == "train" else "elbo"
        if objective != "elbo" and continues:
            raise ConfigError(
                f"module.objective={objective} draws K trajectories per window and cannot carry one state between "
                "windows; use module.objective=elbo with data.stateful=true"
            )
        if objective == "fivo":
            loss, filtered = self.fivo_loss(batch)
            self.log("train/resamplings", filtered.resamplings.float().mean(), on_step=True, on_epoch=False)
            return self.log_terms(stage, loss, filtered.recon.sum(), filtered.kl.sum(), batch.mask, None), None
        if objective == "iwae":
            loss, out = self.iwae_loss(batch)
        else:
            # Only a continuing batch passes a state: a model of the older contract trains as before otherwise
            carried = self.carried_states.get(stage)
            out = self.run_model(batch.x, batch.mask, state=carried if continues else None)
            # Carried into the next window, cut from this window's graph (truncated BPTT). After a resume the
            # first window starts from the zero state: the streams continue, their states do not.
            self.carried_states[stage] = None if out.state is None else detach_state(out.state)
        steps = out.mask.sum()
        if stage != "train":
            loss = (out.recon.sum() + out.kl.sum()) / steps
        elif self.hparams.objective == "elbo":
            loss = out.recon.sum() / steps + self.beta() * self.kl_objective(out)
        auxiliary = None if out.auxiliary is None else out.auxiliary.sum() / steps  # outside the bound
        if auxiliary is not None and stage == "train":
            loss = loss + self.hparams.auxiliary_weight * auxiliary
        return self.log_terms(stage, loss, out.recon.sum(), out.kl.sum(), out.mask, auxiliary), out

    def log_terms(
        self, stage: str, loss: Tensor, recon_total: Tensor, kl_total: Tensor, mask: Tensor, auxiliary: Tensor | None
    ) -> Tensor:
        """Log the loss and the bound's terms (summed over the batch's real steps) per step, per sequence and in
        the data's own figures; returns the loss."""
        steps, sequences = mask.sum(), mask.shape[0]
        recon, kl = recon_total / steps, kl_total / steps
        on_step = stage == "train"
        # Epoch figures are averages over real steps (over sequences for per-sequence figures), across ranks.
        per_step = dict(
            on_step=on_step,
            on_epoch=not on_step,
            sync_dist=not on_step,
            batch_size=sequences if on_step else int(steps),
        )
        per_sequence = dict(per_step, batch_size=sequences)
        self.log_dict({f"{stage}/recon": recon, f"{stage}/kl": kl}, **per_step)
        self.log(f"{stage}/loss", loss, prog_bar=True, **per_step)
        if auxiliary is not None:
            self.log(f"{stage}/auxiliary", auxiliary, **per_step)
        bound_per_sequence = (recon_total + kl_total) / sequences
        self.log(f"{stage}/loss_per_sequence", bound_per_sequence, **per_sequence)
        for name, figure in self.hparams.data_metadata.get("figures", {}).items():
            value = figure_value(figure, recon + kl, bound_per_sequence, steps / sequences)
            self.log(f"{stage}/{name}", value, **(per_sequence if figure["per"] == "sequence" else per_step))
        if on_step:
            self.log("train/beta", self.beta(), on_step=True, on_epoch=False)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")[0]

    def validation_step(self, batch: Batch, batch_idx: int) -> SequenceOutput:
        return self._shared_step(batch, "val")[1]

    def test_step(self, batch: Batch, batch_idx: int) -> SequenceOutput:
        return self._shared_step(batch, "test")[1]

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.hparams.lr_schedule == "constant" and self.hparams.warmup_steps <= 0:
            return {"optimizer": optimizer}
        total = self.trainer.estimated_stepping_batches
        min_ratio = 1.0 if self.hparams.lr_schedule == "constant" else self.hparams.min_lr_ratio
        factor = warmup_cosine(max(1, self.hparams.warmup_steps), int(total), min_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """torch's, with a checkpoint whose tensors do not fit the model named in one line: the first key that
        is missing, unexpected or of another shape, with both shapes (a resume, eval, sample and `load` alike)."""
        own = self.state_dict()
        mismatch = next(
            (
                f"{key} is {tuple(value.shape)} in the checkpoint and {tuple(own[key].shape)} in the model"
                for key, value in state_dict.items()
                if key in own and hasattr(value, "shape") and value.shape != own[key].shape
            ),
            None,
        )
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        if mismatch is None and strict and (missing or unexpected):
            mismatch = (
                f"{missing[0]} is missing from the checkpoint" if missing else f"{unexpected[0]} is not a model key"
            )
        if mismatch is not None:
            raise ConfigError(
                f"the checkpoint's weights do not fit the model built from its settings: {mismatch}; resume or "
                "evaluate with the model settings it was trained with (its .hydra/config.yaml)"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Enough to rebuild the model, and the data module, from the checkpoint alone.
        checkpoint["model_config"] = self.model.config
        datamodule = getattr(self._trainer, "datamodule", None)
        if datamodule is not None:
            checkpoint["datamodule_class"] = f"{type(datamodule).__module__}.{type(datamodule).__qualname__}"
