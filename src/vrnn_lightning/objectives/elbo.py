"""The ELBO, E_q[log p(x | z)] - KL(q(z | x) || p(z)), with KL warm-up and free bits (Chung et al., 2015).

Trained as recon + beta * KL per real step: beta rises linearly from 0 to 1 over `kl_warmup_steps` (annealing,
Bowman et al., 2016), and with `free_bits` each latent dimension's batch-average KL is floored at that many nats
(Kingma et al., 2016), so no dimension is pushed to zero for less. Judged by the full ELBO (beta = 1, no floor):
`val/loss`. The only objective that carries the state from window to window (data.stateful=true).
"""

from typing import Any

import torch
from torch import Tensor

from vrnn_lightning.models.base import SequenceOutput
from vrnn_lightning.objectives.base import Objective, Terms
from vrnn_lightning.training.schedules import kl_weight


class ELBO(Objective):
    carries_state = True

    def __init__(self, kl_warmup_steps: int = 0, free_bits: float = 0.0) -> None:
        super().__init__(kl_warmup_steps=kl_warmup_steps, free_bits=free_bits)
        self.kl_warmup_steps, self.free_bits = kl_warmup_steps, free_bits

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        warmup = settings.get("kl_warmup_steps", 0)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"objective.kl_warmup_steps must be a whole number >= 0, got {warmup!r}")
        floor = settings.get("free_bits", 0.0)
        if isinstance(floor, bool) or not isinstance(floor, int | float) or not floor >= 0:
            raise ValueError(f"objective.free_bits must be >= 0 (nats per latent dimension), got {floor!r}")

    def beta(self, step: int) -> float:
        return kl_weight(step, self.kl_warmup_steps)

    def kl_term(self, out: SequenceOutput) -> Tensor:
        """The KL term the optimiser sees, per real step, each dimension floored at `free_bits` nats."""
        steps = out.mask.sum()
        if self.free_bits <= 0 or out.posterior is None:
            return out.kl.sum() / steps
        per_dim = out.posterior.kl_per_dim(out.prior)  # (B, T, Z)
        per_dim = torch.where(out.mask.bool().unsqueeze(-1), per_dim, 0.0).sum((0, 1)) / steps
        return per_dim.clamp_min(self.free_bits).sum()

    def training_terms(self, module: Any, batch: Any) -> Terms:
        out = module.teacher_forced(batch, "train")
        steps = out.mask.sum()
        beta = self.beta(module.global_step)
        loss = out.recon.sum() / steps + beta * self.kl_term(out)
        auxiliary = None if out.auxiliary is None else out.auxiliary.sum() / steps
        figures = {"beta": beta}
        return Terms(loss, out.recon.sum(), out.kl.sum(), out.mask, auxiliary, out, figures)
