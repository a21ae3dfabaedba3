"""The model contract: all that the training, evaluation and sampling code may ask of a sequence model.

A model reads a batch x (B, T, ...) with a mask (B, T) of real steps (1) and padding (0; real steps first),
and returns a `SequenceOutput`: per-step reconstruction and KL terms in nats, zero at padding, so that any sum
over them counts real steps only. It generates, it names its likelihood and its latent width (0 without
latents), and its `config` rebuilds it with `build` (what a checkpoint stores).
"""

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.likelihoods import Likelihood


@dataclass
class SequenceOutput:
    """A teacher-forced pass. `recon` and `kl` (B, T) are per-step nats, zero where `mask` is 0; `x_params`
    (B, T, param_dim) are the emission's outputs; a model with latents adds the posterior and prior Gaussians
    and the sampled trajectory z, each (B, T, latent_dim). `state` is the recurrent state after the last step
    (after padding too: carry it on only from batches without padding), for the next window of a stream.
    `auxiliary` (B, T) is a per-step training cost outside the bound (Z-forcing's), where the model has one."""

    recon: Tensor
    kl: Tensor
    mask: Tensor
    x_params: Tensor
    posterior: DiagonalGaussian | None = None
    prior: DiagonalGaussian | None = None
    z: Tensor | None = None
    state: Any = None
    auxiliary: Tensor | None = None

    def log_weight(self) -> Tensor:
        """log p(x, z) - log q(z | x) of each sequence (B,) at the sampled trajectory z: an importance weight.

        Its expectation under q is the ELBO; log-mean-exp over K trajectories is the IW bound. Without latents
        it is the exact log-likelihood.
        """
        if self.z is None:
            return -self.recon.sum(1)
        log_ratio = self.prior.log_prob(self.z) - self.posterior.log_prob(self.z)  # (B, T)
        return (-self.recon + torch.where(self.mask.bool(), log_ratio, 0.0)).sum(1)


def select_state(state: Any, index: Tensor) -> Any:
    """The rows `index` of a recurrent state: a (B, ...) tensor or a tuple of them (an LSTM's (h, c))."""
    return state[index] if isinstance(state, Tensor) else tuple(s[index] for s in state)


def detach_state(state: Any) -> Any:
    """A state cut from the graph that made it: truncated backpropagation through time stops here."""
    return state.detach() if isinstance(state, Tensor) else tuple(s.detach() for s in state)


def full_mask(x: Tensor) -> Tensor:
    """The mask of a batch without padding: every step of x (B, T, ...) is real."""
    return x.new_ones(x.shape[:2], dtype=torch.float32)


def masked(values: Tensor, mask: Tensor) -> Tensor:
    """`values` (B, T) with padding set to zero; `where`, not a product, so a non-finite value at padding
    reaches neither a sum nor a gradient."""
    return torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))


class SequenceModel(nn.Module, ABC):
    """What every model of the family implements (VRNN, SRNN, DMM, STORN, the RNN); everything above `models/`
    uses only this."""

    likelihood: Likelihood
    latent_dim: int  # 0 for a model without latent variables
    config: dict[str, Any]  # `build(config)` makes an untrained copy
    posterior_modules: tuple[str, ...] = ()  # the submodules only the posterior q(z | x) reads
    # Every model names its parts by their roles: prior, posterior, emission, deterministic (the RNN state the
    # generative model carries), summary (what the posterior reads of x). Earlier versions' names of them, old
    # prefix -> new, so that their checkpoints load (`with_current_names`).
    renamed: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def forward(
        self, x: Tensor, mask: Tensor | None = None, noise: Tensor | None = None, state: Any = None
    ) -> SequenceOutput:
        """Teacher-forced pass over x (B, T, ...); `mask` (B, T) defaults to all steps real; `noise`
        (B, T, latent_dim) fixes the reparameterisation draws of a model with latents; `state` (a previous
        output's `state`) continues a stream where the last window ended, instead of from the zero state. A model
        may also take `samples=K`: K trajectories per sequence of x (rows b*K .. b*K+K-1 of the output, `noise`
        (B*K, T, latent_dim)), computing what reads no z once per sequence; the IW bound uses it where it is
        taken (`objectives.takes_samples`) and K copies of each sequence otherwise."""

    @torch.no_grad()
    def generate(
        self,
        length: int,
        batch_size: int = 1,
        prime: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """`length` new steps (B, length, ...), continuing `prime` (B, P, ...) where given: the prime is read
        through the posterior, as in training, and not repeated; `temperature` scales the emission's
        distribution. Written once for the family: each model says where generation starts and what one step
        draws (`generation_start`, `generation_step`)."""
        if prime is not None:
            prime, batch_size = prime.to(self.device), prime.shape[0]
        with self.likelihood.generating(prime, batch_size):
            carried = self.generation_start(batch_size, prime, generator)
            samples = []
            for _ in range(length):
                x_t, carried = self.generation_step(carried, temperature, generator)
                samples.append(x_t)
        return torch.stack(samples, 1)

    def generation_start(self, batch_size: int, prime: Tensor | None, generator: torch.Generator | None) -> Any:
        """What generation carries from step to step, after reading `prime` (on the model's device) or from the
        start of a sequence; `generator` for the draws reading it takes, where the model draws them itself."""
        raise NotImplementedError(f"{type(self).__name__} does not generate")

    def generation_step(self, carried: Any, temperature: float, generator: torch.Generator | None) -> Any:
        """One new step: (x_t (B, ...) drawn from the prior and the emission, what it carries on)."""
        raise NotImplementedError(f"{type(self).__name__} does not generate")

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """Raise ValueError, in one line naming the setting and what it must be, for the first of `settings` (a
        composed config's `model` node, without its likelihood) that this model cannot take. Called before any
        run folder is made, and by the constructor: the model owns its settings' checks."""

    def summarise_future(self, x: Tensor, mask: Tensor) -> Tensor | None:
        """What the posterior reads of x_{t:T} at every step t, (B, T, C), over the whole of x (B, T, ...) from
        the start of the sequence; None where the posterior reads only the past. A model that returns a tensor
        takes its slice as `forward(..., future=)` and then runs no backward pass of its own: a particle filter
        (FIVO), which steps the model one step at a time through its carried state, computes it once per
        sequence and hands each step its slice; it reads no z, so it is the same for every particle."""
        return None

    def remember(self, arguments: dict[str, Any], unless: dict[str, Any] | None = None) -> None:
        """The constructors' shared first step, given their `locals()` before anything else: the settings
        checked by the model's own `check_settings`, kept as the `config` that `build` turns back into an
        untrained copy (without those at the value `unless` names: options earlier versions lacked, so their
        configs still compare equal), and the likelihood head kept."""
        likelihood = arguments["likelihood"]
        settings = {k: v for k, v in arguments.items() if k not in ("self", "likelihood", "__class__")}
        self.check_settings(settings)
        kept = {k: v for k, v in settings.items() if k not in (unless or {}) or unless[k] != v}
        target = f"{type(self).__module__}.{type(self).__qualname__}"
        self.config = dict(_target_=target, likelihood=likelihood.config, **kept)
        self.likelihood = likelihood

    def posterior_parameters(self) -> list[nn.Parameter]:
        """The parameters only the posterior reads (its own network, its summary of the future): they reach the
        bound through q's means and standard deviations alone. Doubly reparameterised gradients (DReG) apply to
        these; parameters the prior or emission read as well get the ordinary gradient."""
        modules = [getattr(self, name) for name in self.posterior_modules if getattr(self, name, None) is not None]
        return [p for module in modules for p in module.parameters()]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


def with_current_names(model: SequenceModel, state_dict: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`state_dict` with the keys of `model`'s parts (under `prefix`, e.g. "model.") saved by an earlier version
    under their old names (`SequenceModel.renamed`) given their current ones; other keys unchanged."""
    renamed = {}
    for key, value in state_dict.items():
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        old = next((o for o in model.renamed if rest is not None and rest.startswith(o)), None)
        renamed[key if old is None else prefix + model.renamed[old] + rest[len(old) :]] = value
    return renamed


def locate(qualified_name: str) -> Any:
    """The object a config or checkpoint names as `package.module.Name`."""
    module_name, _, name = qualified_name.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def build(config: Any) -> Any:
    """Instantiate a `{"_target_": "package.module.Class", **kwargs}` config, nested configs first: the small
    part of Hydra's `instantiate` that rebuilding a model from a checkpoint needs, without Hydra."""
    if isinstance(config, dict):
        kwargs = {k: build(v) for k, v in config.items() if k != "_target_"}
        if "_target_" not in config:
            return kwargs
        return locate(config["_target_"])(**kwargs)
    if isinstance(config, list):
        return [build(v) for v in config]
    return config


def check_sizes(**sizes: int) -> None:
    """One-line errors, at construction, for sizes that are not positive integers."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{name} must be a whole number >= 1, got {value!r}")


def check_common(settings: dict[str, Any], sizes: tuple[str, ...], posteriors: tuple[str, ...] = ()) -> None:
    """The checks every model of the family shares, on those of `settings` (a model's constructor arguments, or a
    composed config's `model` node) that are present: positive sizes, the dropout rate, the std floor, the
    recurrent cell and the posteriors the model has."""
    check_sizes(**{name: settings[name] for name in sizes if name in settings})
    if "dropout" in settings:
        check_dropout(settings["dropout"])
    min_std = settings.get("min_std", 1.0)
    if isinstance(min_std, bool) or not isinstance(min_std, int | float) or not min_std > 0:
        raise ValueError(f"model.min_std must be > 0 so no std reaches zero, got {min_std!r}")
    if "rnn" in settings:
        check_rnn(settings["rnn"])
    if posteriors and "posterior" in settings and settings["posterior"] not in posteriors:
        raise ValueError(
            f"model.posterior must be {' or '.join(repr(p) for p in posteriors)}, got {settings['posterior']!r}"
        )


def check_rnn(rnn: str) -> None:
    if rnn not in ("gru", "lstm"):
        raise ValueError(f"model.rnn must be 'gru' or 'lstm', got {rnn!r}")


def check_dropout(rate: float) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ValueError(f"model.dropout must be a number from 0 to below 1, got {rate!r}")


class SequenceDropout(nn.Dropout):
    """torch's dropout, except inside `shared_dropout(model, B)`: there a pass over K rows per sequence (the K
    trajectories or particles of sequence b are rows b*K .. b*K+K-1) draws one mask per sequence and gives it to
    all K, so that a bound over them is a bound on one dropped-out network, not an average over K masks. A
    layer that sees one row per sequence (what reads no z, computed once per sequence) draws as usual."""

    sequences: int | None = None  # set by `shared_dropout`

    def forward(self, x: Tensor) -> Tensor:
        rows = x.shape[0]
        if not self.training or self.p == 0 or self.sequences is None or rows == self.sequences:
            return super().forward(x)
        if rows % self.sequences:
            raise ValueError(f"{rows} rows are not K rows for each of {self.sequences} sequences")
        keep = torch.empty((self.sequences, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - self.p)
        return x * (keep / (1 - self.p)).repeat_interleave(rows // self.sequences, 0)  # (B * K, ...)


@contextmanager
def shared_dropout(model: nn.Module, sequences: int) -> Iterator[None]:
    """Within, the model's dropout layers share one mask among the K rows of each of `sequences` sequences."""
    layers = [m for m in model.modules() if isinstance(m, SequenceDropout)]
    for layer in layers:
        layer.sequences = sequences
    try:
        yield
    finally:
        for layer in layers:
            layer.sequences = None


def dropout_or_identity(rate: float) -> nn.Module:
    """Dropout at `rate` in training; at 0, nothing at all (no kernel, no random draw on any device)."""
    return SequenceDropout(rate) if rate > 0 else nn.Identity()


def with_dropout(stack: nn.Sequential, rate: float) -> nn.Sequential:
    """`stack` with its output dropped out at `rate` in training (appended last: the layers keep their
    names, so checkpoints without dropout load into it)."""
    if rate > 0:
        stack.append(SequenceDropout(rate))
    return stack


def mlp(in_dim: int, width: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear, ReLU): the feature extractors and the trunks of the prior, posterior and emission."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*modules)
