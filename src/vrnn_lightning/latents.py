"""How much the latent variables are used: KL per dimension and active units, accumulated over a data set."""

from collections.abc import Callable

import torch
from torch import Tensor

from vrnn_lightning.models import VRNNOutput

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): active when Var_x(E_q[z_u]) exceeds this


class LatentUsage:
    """Running sums over every (sequence, step): per-dimension KL, and the mean and square of posterior means."""

    def __init__(self) -> None:
        self.count = 0
        self.kl_sum = self.mean_sum = self.square_sum = torch.zeros(0, dtype=torch.float64)

    def update(self, out: VRNNOutput) -> None:
        if out.posterior is None:
            return
        means = out.posterior.mean.detach().flatten(0, 1).double()
        kl = out.posterior.kl_per_dim(out.prior).detach().flatten(0, 1).double()
        if self.count == 0:
            self.kl_sum = self.mean_sum = self.square_sum = torch.zeros(means.shape[1], dtype=torch.float64, device=means.device)
        self.count += len(means)
        self.kl_sum = self.kl_sum + kl.sum(0)
        self.mean_sum = self.mean_sum + means.sum(0)
        self.square_sum = self.square_sum + means.pow(2).sum(0)

    def sum_across(self, reduce_sum: Callable[[Tensor], Tensor], z_dim: int, device: torch.device) -> None:
        """Replace this process's sums by their totals over all DDP ranks (`reduce_sum` all-reduces one tensor),
        so active units are counted over the whole split, not one rank's share. Every rank must call it, also
        one that saw no batch: `z_dim` sizes its zeros."""
        if self.count == 0:
            self.kl_sum = self.mean_sum = self.square_sum = torch.zeros(z_dim, dtype=torch.float64, device=device)
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=device)
        totals = reduce_sum(torch.cat([count, self.kl_sum.to(device), self.mean_sum.to(device), self.square_sum.to(device)]))
        self.count = int(totals[0].item())
        self.kl_sum, self.mean_sum, self.square_sum = totals[1:].view(3, z_dim).unbind(0)

    def kl_per_dim(self) -> Tensor:
        """Average KL of each latent dimension, nats per step."""
        return self.kl_sum / max(self.count, 1)

    def mean_variance(self) -> Tensor:
        """Variance over the data of each dimension's posterior mean."""
        mean = self.mean_sum / max(self.count, 1)
        return (self.square_sum / max(self.count, 1) - mean.pow(2)).clamp_min(0)

    def active_units(self, threshold: float = ACTIVE_THRESHOLD) -> int:
        return int((self.mean_variance() > threshold).sum())
