"""Latent usage after every validation and test: `*/active_units`, `*/units_off_prior` and a `*/kl_per_dim`
histogram."""

from typing import Any

import lightning as L

from vrnn_lightning.training.callbacks.media import log_histogram
from vrnn_lightning.training.metrics import LatentUsage


class LatentUsageMonitor(L.Callback):
    """Accumulates a `LatentUsage` metric over the split (all ranks) from the outputs of the evaluation steps.
    Does nothing for a model without latents."""

    def __init__(self) -> None:
        self.usage: LatentUsage | None = None

    def _start(self, pl_module: L.LightningModule) -> None:
        latent_dim = pl_module.model.latent_dim
        self.usage = LatentUsage(latent_dim).to(pl_module.device) if latent_dim else None

    def _update(self, outputs: Any) -> None:
        if self.usage is not None:
            self.usage.update(outputs)

    def _end(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.usage is None:
            return
        usage = self.usage.compute()  # every rank takes part: the sums are all-reduced
        if usage["count"] == 0:
            return
        pl_module.log(f"{stage}/active_units", usage["active_units"].float(), rank_zero_only=True)
        pl_module.log(f"{stage}/units_off_prior", usage["units_off_prior"].float(), rank_zero_only=True)
        log_histogram(trainer, f"{stage}/kl_per_dim", usage["kl_per_dim"], trainer.global_step)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(outputs)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(outputs)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end(trainer, pl_module, "test")
