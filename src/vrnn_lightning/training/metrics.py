"""How much the latent variables are used: KL per dimension, active units, and units off the prior, accumulated
over a data set."""

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
        for name in ("kl_sum", "mean_sum", "square_sum", "shift_sum", "shift_square_sum"):
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
        # How far the posterior's mean moves off the prior's, in the prior's standard deviations: the activity
        # measure for a prior that itself moves with the past (VRNN, SRNN, DMM), where a posterior equal to its
        # prior still has a mean that varies; scale-free, so rescaling a latent does not change the count
        shifts = ((out.posterior.mean - out.prior.mean) / out.prior.std).detach()[real].double()
        self.shift_sum += shifts.sum(0)
        self.shift_square_sum += shifts.pow(2).sum(0)

    def compute(self) -> dict[str, Tensor]:
        """`count` real steps seen; `kl_per_dim`, nats per step; `mean_variance`, the variance over the data of
        each dimension's posterior mean; `active_units`, how many exceed the threshold (Burda et al.'s measure,
        made for a fixed prior); `units_off_prior`, how many dimensions' posterior-minus-prior mean, divided by the
        prior's std, has a variance above it (the same measure where the prior is N(0, I), as STORN's; the
        informative one where the prior moves with the past)."""
        count = self.count.clamp_min(1)

        def variance(total: Tensor, squares: Tensor) -> Tensor:
            return (squares / count - (total / count).pow(2)).clamp_min(0)

        mean_variance = variance(self.mean_sum, self.square_sum)
        shift_variance = variance(self.shift_sum, self.shift_square_sum)
        return {
            "count": self.count,
            "kl_per_dim": self.kl_sum / count,
            "mean_variance": mean_variance,
            "active_units": (mean_variance > ACTIVE_THRESHOLD).sum(),
            "units_off_prior": (shift_variance > ACTIVE_THRESHOLD).sum(),
        }
