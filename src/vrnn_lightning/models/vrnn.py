"""The Variational Recurrent Neural Network of Chung et al. (2015), arXiv:1506.02216.

At each step t, with h_{t-1} the recurrent state:
    prior         p(z_t | h_{t-1})          = N(Prior(h_{t-1}))                            (`prior`)
    posterior     q(z_t | x_t, h_{t-1})     = N(Encoder(phi_x(x_t), h_{t-1}))     (filtering, `posterior`)
                  q(z_t | x_{t:T}, h_{t-1}) = N(Encoder(phi_x(x_t), b_t, h_{t-1}))          (smoothing)
    emission      p(x_t | z_t, h_{t-1})     = likelihood(Decoder(phi_z(z_t), h_{t-1}))     (`emission`)
    deterministic h_t = Recurrence(phi_x(x_t), phi_z(z_t), h_{t-1})                   (`deterministic`)
The per-step negative ELBO is  -log p(x_t | z_t, h_{t-1}) + KL(q || p). The smoothing posterior reads b_t, the
state of a backward GRU over phi_x(x_{t:T}) (`FutureSummary`, the part `summary`), as SRNN and Z-forcing do:
still a valid bound (any q gives one), generation unchanged (it runs on the prior).

`VRNN.step` is the model one step at a time, as the paper writes it: generation, priming and the per-step
reference use it. Training runs the same maths time-parallel (`time_parallel.py`), tested equal to it.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vrnn_lightning.models.base import (
    SequenceModel,
    SequenceOutput,
    check_common,
    check_rnn,
    dropout_or_identity,
    full_mask,
    mlp,
    with_dropout,
)
from vrnn_lightning.models.blocks import BackwardRNN, GaussianMLP
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.likelihoods import Likelihood
from vrnn_lightning.models.time_parallel import COMPILE_MODES, State, check_fusable, time_parallel_forward

SIZES = ("h_dim", "z_dim", "x_feat_dim", "z_feat_dim", "hidden_dim", "mlp_layers")


class Prior(GaussianMLP):
    """p(z_t | h_{t-1}) = N(mean, diag(std^2)), both from an MLP of h_{t-1}; std = softplus + min_std."""


class Encoder(nn.Module):
    """q(z_t | x_t, h_{t-1}) = N(mean, diag(std^2)), both from an MLP of [phi_x(x_t), h_{t-1}] (filtering), or
    q(z_t | x_{t:T}, h_{t-1}) from an MLP of [phi_x(x_t), b_t, h_{t-1}] (smoothing). Its inputs other than
    h_{t-1} (`observed`) come first, so the time-parallel loop can apply their part of the first layer up front."""

    def __init__(self, observed_dim: int, h_dim: int, hidden_dim: int, z_dim: int, layers: int, min_std: float) -> None:
        super().__init__()
        self.trunk = mlp(observed_dim + h_dim, hidden_dim, layers)
        self.out = nn.Linear(hidden_dim, 2 * z_dim)
        self.min_std = min_std

    def forward(self, observed: Tensor, h: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian.from_params(self.out(self.trunk(torch.cat([observed, h], -1))), self.min_std)


class FutureSummary(BackwardRNN):
    """b_t = GRU_backward(phi_x(x_T), ..., phi_x(x_t)): what the smoothing encoder knows of x_{t:T}. Each sequence
    is read backwards from its own last real step, so padding never reaches a real step's b_t."""

    def __init__(self, x_feat_dim: int, h_dim: int) -> None:
        super().__init__(x_feat_dim, h_dim, "gru")


class FuturePredictor(nn.Module):
    """Z-forcing's auxiliary model (Goyal et al. 2017): p(b_t | z_t) = N(MLP(z_t), I), so that z_t must carry
    what the backward state b_t knows of x_{t:T}. Its cost, -log p(sg(b_t) | z_t) up to a constant
    (0.5 ||b_t - MLP(z_t)||^2), is added to the training loss only, weighted by `module.auxiliary_weight`; b_t
    is a target here (no gradient through it), so the backward GRU cannot shrink it to make the task easy."""

    def __init__(self, z_dim: int, hidden_dim: int, h_dim: int, layers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(mlp(z_dim, hidden_dim, layers), nn.Linear(hidden_dim, h_dim))

    def forward(self, z: Tensor, future: Tensor) -> Tensor:
        """(B, T, Z), (B, T, H) -> the per-step cost (B, T)."""
        return 0.5 * (future.detach() - self.net(z)).pow(2).sum(-1)


class Decoder(nn.Module):
    """p(x_t | z_t, h_{t-1}): the likelihood's parameters from an MLP of [phi_z(z_t), h_{t-1}], its input
    dropped out at rate `dropout` in training."""

    def __init__(
        self, z_feat_dim: int, h_dim: int, hidden_dim: int, param_dim: int, layers: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dropout = dropout_or_identity(dropout)
        self.trunk = mlp(z_feat_dim + h_dim, hidden_dim, layers)
        self.out = nn.Linear(hidden_dim, param_dim)

    def forward(self, z_feat: Tensor, h: Tensor) -> Tensor:
        return self.out(self.trunk(self.dropout(torch.cat([z_feat, h], -1))))


class Recurrence(nn.Module):
    """h_t = cell([phi_x(x_t), phi_z(z_t)], h_{t-1}), the cell a GRU or an LSTM (whose state is (h, c))."""

    def __init__(self, x_feat_dim: int, z_feat_dim: int, h_dim: int, rnn: str) -> None:
        super().__init__()
        check_rnn(rnn)
        self.cell = (nn.GRUCell if rnn == "gru" else nn.LSTMCell)(x_feat_dim + z_feat_dim, h_dim)
        self.h_dim = h_dim

    @property
    def is_lstm(self) -> bool:
        return isinstance(self.cell, nn.LSTMCell)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        h = torch.zeros(batch_size, self.h_dim, device=device, dtype=dtype)
        return (h, torch.zeros_like(h)) if self.is_lstm else h

    @staticmethod
    def hidden(state: State) -> Tensor:
        """h_{t-1}, the part of the state the prior, encoder and decoder read."""
        return state if isinstance(state, Tensor) else state[0]

    def forward(self, x_feat: Tensor, z_feat: Tensor, state: State) -> State:
        return self.cell(torch.cat([x_feat, z_feat], -1), state)


@dataclass
class Step:
    """One step of `VRNN.step`: x_t (observed, or drawn from the decoder), the two Gaussians over z_t (no
    posterior when generating), z_t, the decoder's parameters and the next state."""

    x: Tensor
    prior: DiagonalGaussian
    posterior: DiagonalGaussian | None
    z: Tensor
    x_params: Tensor
    state: State


class VRNN(SequenceModel):
    """A VRNN over sequences x of shape (B, T, ...); the likelihood head fixes what x_t is."""

    posterior_modules = ("posterior", "summary")  # read by q alone
    renamed: ClassVar[dict[str, str]] = {
        "encoder.": "posterior.",
        "decoder.": "emission.",
        "recurrence.": "deterministic.",
        "future.": "summary.",
    }  # earlier versions' names of its parts

    def __init__(
        self,
        likelihood: Likelihood,
        h_dim: int = 256,
        z_dim: int = 32,
        x_feat_dim: int = 256,
        z_feat_dim: int = 256,
        hidden_dim: int = 256,
        mlp_layers: int = 2,
        rnn: str = "gru",
        posterior: str = "filtering",
        future_prediction: bool = False,
        min_std: float = 1e-4,
        compile: bool | str = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.remember(locals(), unless={"dropout": 0.0})  # absent at 0: earlier configs match
        self.latent_dim, self.compile_mode = z_dim, compile
        self.phi_x = with_dropout(mlp(likelihood.in_dim, x_feat_dim, mlp_layers), dropout)
        self.phi_z = mlp(z_dim, z_feat_dim, mlp_layers)
        self.prior = Prior(h_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.summary = FutureSummary(x_feat_dim, h_dim) if posterior == "smoothing" else None
        self.future_predictor = FuturePredictor(z_dim, hidden_dim, h_dim, mlp_layers) if future_prediction else None
        observed_dim = x_feat_dim + (h_dim if self.summary is not None else 0)
        self.posterior = Encoder(observed_dim, h_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.emission = Decoder(z_feat_dim, h_dim, hidden_dim, likelihood.param_dim, mlp_layers, dropout)
        self.deterministic = Recurrence(x_feat_dim, z_feat_dim, h_dim, rnn)
        check_fusable(self)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_common(settings, SIZES, posteriors=("filtering", "smoothing"))
        if settings.get("future_prediction") and settings.get("posterior", "filtering") != "smoothing":
            raise ValueError(
                "model.future_prediction=true predicts the smoothing posterior's backward state; "
                "set model.posterior=smoothing too"
            )
        compile_mode = settings.get("compile", False)
        if not (isinstance(compile_mode, bool) or compile_mode in COMPILE_MODES):
            raise ValueError(
                f"model.compile must be true, false or one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}"
            )

    def initial_state(self, batch_size: int) -> State:
        return self.deterministic.initial_state(batch_size, self.device, self.dtype)

    def step(
        self,
        state: State,
        x: Tensor | None = None,
        noise: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        future: Tensor | None = None,
    ) -> Step:
        """One step from state h_{t-1}. Given x_t (B, ...), z_t is drawn from the encoder q(z_t | x_t, h_{t-1})
        (smoothing: `future`, b_t of `FutureSummary`, is also read); without it, z_t is drawn from the prior and
        x_t from the decoder at `temperature`. `noise` (B, z_dim) fixes the draw of z_t."""
        h = self.deterministic.hidden(state)
        batch = h.shape[0]
        if noise is None:
            noise = torch.randn(batch, self.latent_dim, device=h.device, dtype=h.dtype, generator=generator)
        prior = self.prior(h)
        posterior = None
        if x is not None:
            x_feat = self.phi_x(self.likelihood.features(x.unsqueeze(1), self.dtype)).squeeze(1)
            posterior = self.posterior(x_feat if self.summary is None else torch.cat([x_feat, future], -1), h)
        z = (posterior or prior).rsample(noise)
        z_feat = self.phi_z(z)
        x_params = self.emission(z_feat, h)
        if x is None:
            x = self.likelihood.sample(x_params, temperature, generator)
            x_feat = self.phi_x(self.likelihood.features(x.unsqueeze(1), self.dtype)).squeeze(1)
        return Step(x, prior, posterior, z, x_params, self.deterministic(x_feat, z_feat, state))

    def summarise_future(self, x: Tensor, mask: Tensor) -> Tensor | None:
        """b_t of `FutureSummary` for every step of x (B, T, ...) where the posterior is smoothing (else None)."""
        if self.summary is None:
            return None
        return self.summary(self.phi_x(self.likelihood.features(x, self.dtype)), mask)  # (B, T, H)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        noise: Tensor | None = None,
        state: State | None = None,
        future: Tensor | None = None,
        samples: int = 1,
    ) -> SequenceOutput:
        """Teacher-forced pass, time-parallel (`time_parallel.py`); equal to `step` applied at every t. The
        state carried out is the one the sampled trajectory z reached. `future` (B, T, H), b_t from
        `summarise_future` over a longer sequence, replaces the smoothing posterior's own pass over x.
        `samples` K > 1 draws K trajectories per sequence (rows b*K .. b*K+K-1, `noise` (B*K, T, Z)), with
        phi_x, b_t and the loop's projections of them computed once per sequence."""
        return time_parallel_forward(self, x, mask, noise, state, future, samples)

    def generation_start(self, batch_size: int, prime: Tensor | None, generator: torch.Generator | None) -> Any:
        """The recurrent state after reading `prime` through the encoder step by step, or the initial one."""
        state = self.initial_state(batch_size)
        if prime is None:
            return state
        futures = self.summarise_future(prime, full_mask(prime))
        for t in range(prime.shape[1]):
            future = None if futures is None else futures[:, t]
            state = self.step(state, prime[:, t], generator=generator, future=future).state
        return state

    def generation_step(self, carried: Any, temperature: float, generator: torch.Generator | None) -> Any:
        """prior -> z_t -> decoder -> x_t -> recurrence; `temperature` scales the decoder's distribution."""
        step = self.step(carried, temperature=temperature, generator=generator)
        return step.x, step.state
