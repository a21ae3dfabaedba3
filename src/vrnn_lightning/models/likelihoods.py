"""Observation heads: what x_t looks like going in, and how the decoder's output scores and samples it.

The VRNN is agnostic to the data type; a head is the seam. Characters use `Categorical`; image heads
(Bernoulli, Gaussian) plug in the same way.
"""

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


LIKELIHOODS: dict[str, type[Likelihood]] = {"categorical": Categorical}


def make_likelihood(name: str, x_dim: int) -> Likelihood:
    """Build a head by its config name; an unknown name lists the known ones."""
    if name not in LIKELIHOODS:
        raise ValueError(f"model.likelihood={name!r} is unknown; choose one of {sorted(LIKELIHOODS)}")
    return LIKELIHOODS[name](x_dim)
