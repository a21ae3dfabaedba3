"""The diagonal Gaussian used by the prior and the encoder."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class DiagonalGaussian:
    """N(mean, diag(std^2)) over the last dimension; a dataclass, not torch.distributions, to stay cheap in the loop."""

    mean: Tensor
    std: Tensor

    @classmethod
    def from_params(cls, params: Tensor, min_std: float) -> "DiagonalGaussian":
        """Split a (..., 2 * z) tensor into a mean and a softplus std with a floor, so the std never reaches 0."""
        mean, raw_std = params.chunk(2, dim=-1)
        return cls(mean, F.softplus(raw_std) + min_std)

    def rsample(self, noise: Tensor | None = None) -> Tensor:
        """Reparameterised sample mean + std * eps; pass `noise` to fix eps."""
        if noise is None:
            noise = torch.randn_like(self.mean)
        return self.mean + self.std * noise

    def log_prob(self, value: Tensor) -> Tensor:
        """Log density summed over the last dimension."""
        z = (value - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.std.log() - 0.5 * _LOG_2PI).sum(-1)

    def kl(self, other: "DiagonalGaussian") -> Tensor:
        """Analytic KL(self || other), summed over the last dimension."""
        return self.kl_per_dim(other).sum(-1)

    def kl_per_dim(self, other: "DiagonalGaussian") -> Tensor:
        """Analytic KL(self || other) for each latent dimension."""
        var_ratio = (self.std / other.std).pow(2)
        mean_term = ((self.mean - other.mean) / other.std).pow(2)
        return 0.5 * (var_ratio + mean_term - 1.0 - var_ratio.log())
