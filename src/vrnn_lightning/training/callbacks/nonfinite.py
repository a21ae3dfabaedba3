"""Stop training at the first NaN or Inf, before it reaches the weights or a checkpoint."""

from typing import Any

import lightning as L
import torch
from torch import Tensor

from vrnn_lightning.errors import ConfigError

FIXES = (
    "lower module.optimizer.lr, keep trainer.gradient_clip_val set (e.g. 1.0), "
    "or ramp the KL in with module.kl_warmup_steps"
)


class NonFiniteLossError(ConfigError):
    """Training diverged; the message names the step and the usual fixes."""


class StopOnNonFinite(L.Callback):
    """Raise at the first non-finite training loss (before backward) or gradient (before the optimiser step).

    Raising there means the optimiser never applies the bad update, so the weights in memory, and every
    checkpoint written from them, stay finite; the last checkpoint on disk is the last good one. Each check is
    one host sync per step, small beside a recurrent step's hundreds of kernels.
    """

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(f"training loss is {loss.item()} at step {trainer.global_step}; {FIXES}")

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if grads and not torch.stack([g.isfinite().all() for g in grads]).all():
            bad = next(n for n, p in pl_module.named_parameters() if p.grad is not None and not p.grad.isfinite().all())
            raise NonFiniteLossError(f"gradient of {bad} is not finite at step {trainer.global_step}; {FIXES}")
