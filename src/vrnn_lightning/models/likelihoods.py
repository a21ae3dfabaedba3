"""Observation heads: what x_t looks like going in, and how the decoder's output scores and samples it.

The VRNN is agnostic to the data type; a head is the seam. Characters use `Categorical`; image rows use
`Bernoulli` (binarised pixels) or `Gaussian` (intensities in [0, 1]).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Likelihood(nn.Module):
    """Base class: `in_dim` is the width of `features(x)`, `param_dim` the width the decoder must output."""

    in_dim: int
    param_dim: int

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """(B, T, ...) observations -> (B, T, in_dim) features of `dtype` for phi_x."""
        raise NotImplementedError

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        """-log p(x_t | params_t) in nats, shape (B, T)."""
        raise NotImplementedError

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Draw x_t from p(x_t | params_t); `params` is (B, param_dim)."""
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """E[x_t | params_t], for pictures of reconstructions."""
        raise NotImplementedError


class Categorical(Likelihood):
    """A distribution over `num_classes` symbols (characters); x holds integer ids."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.in_dim = self.param_dim = num_classes

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return F.one_hot(x, self.in_dim).to(dtype)

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        return F.cross_entropy(params.flatten(0, 1), x.flatten(), reduction="none").view_as(x)

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        if temperature <= 0:
            return params.argmax(-1)
        probs = F.softmax(params.float() / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


    def mean(self, params: Tensor) -> Tensor:
        return F.softmax(params, dim=-1)


class Bernoulli(Likelihood):
    """Independent binary pixels; x holds 0/1 floats of width `x_dim`, the decoder outputs logits."""

    def __init__(self, x_dim: int) -> None:
        super().__init__()
        self.in_dim = self.param_dim = x_dim

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return x.to(dtype)

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(params, x.to(params.dtype), reduction="none").sum(-1)

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        if temperature <= 0:
            return (params > 0).to(params.dtype)
        return torch.bernoulli(torch.sigmoid(params / temperature), generator=generator)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)


class Gaussian(Likelihood):
    """Independent Gaussian intensities in [0, 1]: mean = sigmoid(output); std learned per pixel and step, or fixed.

    A fixed std of s turns the NLL into MSE / (2 s^2) plus a constant: the MSE of the seed design.
    """

    def __init__(self, x_dim: int, std: float | None = None, min_std: float = 1e-3) -> None:
        super().__init__()
        if std is not None and not std > 0:
            raise ValueError(f"model.output_std must be > 0 (or null to learn it), got {std!r}")
        self.in_dim, self.std, self.min_std = x_dim, std, min_std
        self.param_dim = x_dim if std is not None else 2 * x_dim

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return x.to(dtype)

    def _mean_std(self, params: Tensor) -> tuple[Tensor, Tensor]:
        if self.std is not None:
            return torch.sigmoid(params), torch.full_like(params, self.std)
        mean, raw_std = params.chunk(2, dim=-1)
        return torch.sigmoid(mean), F.softplus(raw_std) + self.min_std

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        mean, std = self._mean_std(params)
        z = (x.to(params.dtype) - mean) / std
        return (0.5 * z.pow(2) + std.log() + 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        mean, std = self._mean_std(params)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        return (mean + temperature * std * noise).clamp(0, 1)

    def mean(self, params: Tensor) -> Tensor:
        return self._mean_std(params)[0]


LIKELIHOODS: dict[str, type[Likelihood]] = {"categorical": Categorical, "bernoulli": Bernoulli, "gaussian": Gaussian}


def make_likelihood(name: str, x_dim: int, output_std: float | None = None) -> Likelihood:
    """Build a head by its config name; an unknown name lists the known ones. `output_std` fixes a Gaussian's std."""
    if name not in LIKELIHOODS:
        raise ValueError(f"model.likelihood={name!r} is unknown; choose one of {sorted(LIKELIHOODS)}")
    if name == "gaussian":
        return Gaussian(x_dim, std=output_std)
    if output_std is not None:
        raise ValueError(f"model.output_std applies only to model.likelihood=gaussian, not {name!r}; unset it")
    return LIKELIHOODS[name](x_dim)
