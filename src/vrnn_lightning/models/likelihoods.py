"""Observation heads p(x_t | decoder output): what x_t looks like going in, how the decoder's output scores it
and samples it.

The models are agnostic to the data type; a head is the seam. Characters use `Categorical`; image rows and
piano rolls `Bernoulli`; real values `Gaussian` (`bounded=True` for intensities in [0, 1]) or
`GaussianMixture`, the paper's GMM output. Each head is built from its own config
(`conf/model/likelihood/<name>.yaml`, `_target_` + options); `x_dim` comes from the data. A new head is a
subclass here (or in any importable module) and a config file.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Likelihood(nn.Module):
    """Base class: `x_dim` is the width of an observation, `in_dim` the width of `features(x)`, `param_dim` the
    width the decoder must output; `config` rebuilds the head (its class and constructor arguments)."""

    x_dim: int
    in_dim: int
    param_dim: int
    config: dict
    # The values this head scores, as a data module names its own (`values`): "symbols" (integer ids),
    # "binary", "unit_interval" (intensities in [0, 1]), "real"; a run pairing it with other data is refused.
    fits: ClassVar[tuple[str, ...]] = ()
    # Whether p(x_t | params_t) also reads earlier observations (the frame head's skips): such a head scores
    # whole sequences from their first step and is handed what it reads while generating (`generating`), but a
    # particle filter that steps the model one observation at a time cannot feed it.
    reads_past_frames: bool = False

    @classmethod
    def check_settings(cls, settings: dict) -> None:
        """Raise ValueError, in one line, for the first of `settings` (a composed config's `model.likelihood`
        node, without x_dim, which the data gives) this head cannot take: the head is built at a width of 2,
        so its constructor's own checks speak (before any run folder is made)."""
        cls(**{**settings, "x_dim": 2})

    def remember_config(self, **options: object) -> None:
        self.config = {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", **options}

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

    @contextmanager
    def generating(self, prime: Tensor | None, batch_size: int) -> Iterator[None]:
        """Within, `sample` draws the steps after `prime` (B, P, ...) or from a sequence's start: a head that
        reads earlier observations keeps them here; the others need nothing."""
        yield


class Categorical(Likelihood):
    """p(x_t) = softmax(params): a distribution over `x_dim` symbols (characters); x holds integer ids."""

    fits = ("symbols",)

    def __init__(self, x_dim: int) -> None:
        super().__init__()
        check_width(x_dim)
        self.remember_config(x_dim=x_dim)
        self.x_dim = self.in_dim = self.param_dim = x_dim

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
    """p(x_t) = prod_d Bernoulli(x_td; sigmoid(params_d)): independent binary values (pixels, piano keys);
    x holds 0/1 floats of width `x_dim`, the decoder outputs logits."""

    fits = ("binary",)

    def __init__(self, x_dim: int) -> None:
        super().__init__()
        check_width(x_dim)
        self.remember_config(x_dim=x_dim)
        self.x_dim = self.in_dim = self.param_dim = x_dim

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
    """p(x_t) = prod_d N(x_td; mean_d, std_d^2): independent real values. The std is learned per value and step
    (softplus plus `min_std`), or fixed by `std`. `bounded=True` is the form for intensities in [0, 1] (MNIST
    pixels): a sigmoid mean and samples clamped to [0, 1]; otherwise the mean is unbounded.

    A fixed std of s turns the NLL into MSE / (2 s^2) plus a constant.
    """

    fits = ("real", "unit_interval")

    def __init__(self, x_dim: int, std: float | None = None, min_std: float = 1e-3, bounded: bool = False) -> None:
        super().__init__()
        check_width(x_dim)
        if std is not None and (isinstance(std, bool) or not isinstance(std, int | float) or not std > 0):
            raise ValueError(f"model.likelihood.std must be > 0 (or null to learn it), got {std!r}")
        check_min_std(min_std)
        if not isinstance(bounded, bool):
            raise ValueError(f"model.likelihood.bounded must be true or false, got {bounded!r}")
        self.remember_config(x_dim=x_dim, std=std, min_std=min_std, bounded=bounded)
        self.x_dim, self.in_dim, self.std, self.min_std, self.bounded = x_dim, x_dim, std, min_std, bounded
        self.param_dim = x_dim if std is not None else 2 * x_dim

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return x.to(dtype)

    def _mean_std(self, params: Tensor) -> tuple[Tensor, Tensor]:
        if self.std is not None:
            mean, std = params, torch.full_like(params, self.std)
        else:
            mean, raw_std = params.chunk(2, dim=-1)
            std = F.softplus(raw_std) + self.min_std
        return (torch.sigmoid(mean) if self.bounded else mean), std

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        mean, std = self._mean_std(params)
        return -normal_log_density(x.to(params.dtype), mean, std).sum(-1)

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        mean, std = self._mean_std(params)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        x = mean + temperature * std * noise
        return x.clamp(0, 1) if self.bounded else x

    def mean(self, params: Tensor) -> Tensor:
        return self._mean_std(params)[0]


class GaussianMixture(Likelihood):
    """p(x_t) = sum_k pi_k prod_d N(x_td; mean_kd, std_kd^2): a mixture of `components` diagonal Gaussians, the
    paper's GMM output. The decoder gives, per step, K mixture logits, K means and K raw stds of width x_dim
    (std = softplus + `min_std`). Sampling draws a component, then from its Gaussian; a temperature T divides
    the logits and multiplies the stds (T -> 0: the most likely component's mean)."""

    fits = ("real",)

    def __init__(self, x_dim: int, components: int = 5, min_std: float = 1e-3) -> None:
        super().__init__()
        check_width(x_dim)
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"model.likelihood.components must be a whole number >= 1, got {components!r}")
        check_min_std(min_std)
        self.remember_config(x_dim=x_dim, components=components, min_std=min_std)
        self.x_dim, self.in_dim, self.components, self.min_std = x_dim, x_dim, components, min_std
        self.param_dim = components * (1 + 2 * x_dim)

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return x.to(dtype)

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(..., param_dim) -> logits (..., K), means (..., K, D), stds (..., K, D)."""
        k, d = self.components, self.x_dim
        logits, means, raw_stds = params.split([k, k * d, k * d], -1)
        shape = (*params.shape[:-1], k, d)
        return logits, means.reshape(shape), F.softplus(raw_stds.reshape(shape)) + self.min_std

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        logits, means, stds = self._split(params)
        per_component = normal_log_density(x.to(params.dtype).unsqueeze(-2), means, stds).sum(-1)  # (B, T, K)
        return -torch.logsumexp(F.log_softmax(logits, -1) + per_component, -1)

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        logits, means, stds = self._split(params)  # (B, K), (B, K, D), (B, K, D)
        if temperature <= 0:
            component = logits.argmax(-1)
        else:
            probs = F.softmax(logits.float() / temperature, -1)
            component = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
        index = component.view(-1, 1, 1).expand(-1, 1, self.x_dim)
        mean, std = means.gather(1, index).squeeze(1), stds.gather(1, index).squeeze(1)  # (B, D)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        return mean + max(temperature, 0.0) * std * noise

    def mean(self, params: Tensor) -> Tensor:
        logits, means, _ = self._split(params)
        return (F.softmax(logits, -1).unsqueeze(-1) * means).sum(-2)


def normal_log_density(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(x; mean, std^2), element-wise."""
    z = (x - mean) / std
    return -0.5 * z.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)


def check_min_std(min_std: float) -> None:
    if isinstance(min_std, bool) or not isinstance(min_std, int | float) or not min_std > 0:
        raise ValueError(f"model.likelihood.min_std must be > 0 so no std reaches zero, got {min_std!r}")


def check_width(x_dim: int) -> None:
    if isinstance(x_dim, bool) or not isinstance(x_dim, int) or x_dim < 1:
        raise ValueError(f"the data's x_dim must be a positive integer, got {x_dim!r}")
