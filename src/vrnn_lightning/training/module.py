"""The LightningModule: Lightning's glue around a model of the contract and an objective of the contract.

The objective (`objectives/`) says what a training step optimises and which bound a run is judged by; the module
runs it and logs: in validation and test the full ELBO of every run (`*/recon`, `*/kl`, `*/loss`,
`*/loss_per_sequence`, the data's figures such as `*/bpc`, in nats per real step) and beside it the trained
objective's own bound (`val/iw_bound`, `val/fivo_bound`, negated per real step), which chooses checkpoints.
Dashboards are callbacks (`training/callbacks/`) reading the `SequenceOutput`s the evaluation steps return.
"""

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor

from vrnn_lightning.data.base import Batch, figure_value
from vrnn_lightning.models import SequenceModel, SequenceOutput
from vrnn_lightning.models.base import detach_state, shared_dropout, with_current_names
from vrnn_lightning.objectives import ELBO, Objective
from vrnn_lightning.objectives.bounds import trajectories
from vrnn_lightning.training.cuda_graphs import GraphedPasses, graphs_for, posterior_noise
from vrnn_lightning.training.schedules import with_lr_schedule

log = logging.getLogger(__name__)


class SequenceModule(L.LightningModule):
    """Trains any model of the contract (`models/base.py`) by any objective (`objectives/base.py`) on any data
    of the contract (`data/base.py`); the data's metadata and the objective's settings ride in its
    hyperparameters, so every checkpoint can read what its model generates and how it was trained."""

    def __init__(
        self,
        model: SequenceModel,
        optimizer: Callable[..., torch.optim.Optimizer],
        data_metadata: dict[str, Any],
        objective: Objective | None = None,
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.1,
        auxiliary_weight: float = 1.0,
        cuda_graphs: bool | str = "auto",
    ) -> None:
        super().__init__()
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"module.lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        if cuda_graphs not in ("auto", True, False):
            raise ValueError(f"module.cuda_graphs must be auto, true or false, got {cuda_graphs!r}")
        self.objective = ELBO() if objective is None else objective
        self.objective.check_model(model)
        self.save_hyperparameters(ignore=["model", "optimizer", "objective"])
        self.hparams["objective"] = self.objective.config  # plain data: a checkpoint rebuilds it
        self.model = model
        self.optimizer_factory = optimizer
        self.carried_states: dict[str, Any] = {}  # stage -> the state its last window ended in (streams)
        self.graphs: GraphedPasses | None = None  # the model's pass as CUDA graphs, where they apply
        self.graphs_decided = False

    def draw_noise(self, x: Tensor, samples: int = 1) -> Tensor | None:
        """The posterior noise of a pass over x with `samples` trajectories per sequence (`posterior_noise`)."""
        return posterior_noise(self.model, x, samples)

    def decide_graphs(self) -> None:
        """Whether the model's pass runs as CUDA graphs (`training/cuda_graphs.py` decides and logs why)."""
        self.graphs_decided = True
        self.graphs = graphs_for(self.hparams.cuda_graphs, self.device, self._trainer, self.model, self.objective)

    def run_model(self, x: Tensor, mask: Tensor, state: Any = None, samples: int = 1) -> SequenceOutput:
        """The model's pass with noise drawn here, `samples` trajectories per sequence of x (rows b*K .. b*K+K-1
        of the output); through CUDA graphs where they apply."""
        if not self.graphs_decided:
            self.decide_graphs()
        noise = self.draw_noise(x, samples)
        if self.graphs is None and state is None:
            return trajectories(self.model, x, mask, samples, noise)
        # The graphs and a carried state (which models refuse with samples > 1) run over K copies of each sequence
        with shared_dropout(self.model, len(x)):  # whose K rows share the sequence's dropout masks
            if samples > 1:
                x, mask = x.repeat_interleave(samples, 0), mask.repeat_interleave(samples, 0)
            if self.graphs is not None:
                return self.graphs(x, mask, noise, state)
            return self.model(x, mask, noise, state=state)

    def teacher_forced(self, batch: Batch, stage: str) -> SequenceOutput:
        """One pass over the batch; a batch that continues its stage's last one row by row (streams) starts from
        the state that one ended in."""
        continues = not batch.first
        out = self.run_model(batch.x, batch.mask, state=self.carried_states.get(stage) if continues else None)
        # Carried into the next window, cut from this window's graph (truncated BPTT). After a resume the
        # first window starts from the zero state: the streams continue, their states do not.
        self.carried_states[stage] = None if out.state is None else detach_state(out.state)
        return out

    def teardown(self, stage: str) -> None:
        # After fit Lightning moves the model to the CPU and frees the cache; graphs replaying against the old
        # addresses would be wrong, so each stage (fit, then test) captures its own.
        if self.graphs is not None:
            log.info("CUDA graphs (%s): %s", stage, self.graphs.summary())
        self.graphs, self.graphs_decided = None, False

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        self.objective.check_batch(batch)
        terms = self.objective.training_terms(self, batch)
        loss = terms.loss
        if terms.auxiliary is not None:  # outside the bound
            loss = loss + self.hparams.auxiliary_weight * terms.auxiliary
        self.log_terms("train", loss, terms.recon_total, terms.kl_total, terms.mask, terms.auxiliary)
        for name, value in (terms.figures or {}).items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False)
        return loss

    def evaluation_step(self, batch: Batch, stage: str) -> SequenceOutput:
        """The full ELBO (beta = 1, no floor) of every run, and the trained objective's own bound beside it."""
        out = self.teacher_forced(batch, stage)
        steps = out.mask.sum()
        auxiliary = None if out.auxiliary is None else out.auxiliary.sum() / steps
        loss = (out.recon.sum() + out.kl.sum()) / steps
        self.log_terms(stage, loss, out.recon.sum(), out.kl.sum(), out.mask, auxiliary)
        bound = self.objective.bound(self.model, batch.x, batch.mask, self.run_model)
        if bound is not None:
            figure = -bound.sum() / steps
            self.log(f"{stage}/{self.objective.figure}", figure, on_epoch=True, sync_dist=True, batch_size=int(steps))
        return out

    def validation_step(self, batch: Batch, batch_idx: int) -> SequenceOutput:
        return self.evaluation_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> SequenceOutput:
        return self.evaluation_step(batch, "test")

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
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, hp = self.optimizer_factory(params=self.parameters()), self.hparams
        total = int(self.trainer.estimated_stepping_batches) if hp.lr_schedule != "constant" or hp.warmup_steps else 0
        return with_lr_schedule(optimizer, hp.lr_schedule, hp.warmup_steps, total, hp.min_lr_ratio)

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """torch's, with a checkpoint whose tensors do not fit the model named in one line (a resume, eval,
        sample and `load` alike: `training/checkpoints.py`)."""
        from vrnn_lightning.training.checkpoints import check_weights_fit

        state_dict = with_current_names(self.model, state_dict, prefix="model.")  # parts renamed since
        check_weights_fit(self.state_dict(), state_dict, strict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from vrnn_lightning.training.checkpoints import record_contract

        record_contract(checkpoint, self.model, getattr(self._trainer, "datamodule", None))
