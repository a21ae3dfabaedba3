"""How much the latent variables are used: KL per dimension and active units, accumulated over a data set."""

import torch
from torch import Tensor
from torchmetrics import Metric

from vrnn_lightning.models import SequenceOutput

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): active when Var_x(E_q[z_u]) exceeds this


class LatentUsage(Metric):
    """Sums over every real (sequence, step): per-dimension KL, and the mean and square of posterior means.

    A torchmetrics `Metric`: under DDP, `compute` sums the states of every rank first (a rank that saw no
    batch adds zeros), so active units are counted over the whole split, not one rank's share.
    """

    full_state_update = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("kl_sum", "mean_sum", "square_sum"):
            self.add_state(name, torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, out: SequenceOutput) -> None:
        if out.posterior is None:
            return
        real = out.mask.bool()  # (B, T)
        means = out.posterior.mean.detach()[real].double()  # (N, Z): real steps only
        kl = out.posterior.kl_per_dim(out.prior).detach()[real].double()
        self.count += len(means)
        self.kl_sum += kl.sum(0)
        self.mean_sum += means.sum(0)
        self.square_sum += means.pow(2).sum(0)

    def compute(self) -> dict[str, Tensor]:
        """`count` real steps seen; `kl_per_dim`, nats per step; `mean_variance`, the variance over the data of
        each dimension's posterior mean; `active_units`, how many exceed the threshold."""
        count = self.count.clamp_min(1)
        mean = self.mean_sum / count
        variance = (self.square_sum / count - mean.pow(2)).clamp_min(0)
        return {
            "count": self.count,
            "kl_per_dim": self.kl_sum / count,
            "mean_variance": variance,
            "active_units": (variance > ACTIVE_THRESHOLD).sum(),
        }
