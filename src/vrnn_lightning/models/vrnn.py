"""The Variational Recurrent Neural Network of Chung et al. (2015), arXiv:1506.02216.

At each step t, with h_{t-1} the recurrent state:
    prior      p(z_t | h_{t-1})             = N(Prior(h_{t-1}))
    encoder    q(z_t | x_t, h_{t-1})        = N(Encoder(phi_x(x_t), h_{t-1}))
    decoder    p(x_t | z_t, h_{t-1})        = likelihood(Decoder(phi_z(z_t), h_{t-1}))
    recurrence h_t = Recurrence(phi_x(x_t), phi_z(z_t), h_{t-1})
The per-step negative ELBO is  -log p(x_t | z_t, h_{t-1}) + KL(q || p).

`VRNN.step` is the model one step at a time, as the paper writes it: generation, priming and the per-step
reference use it. Training runs the same maths time-parallel (`time_parallel.py`), tested equal to it.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vrnn_lightning.models.base import SequenceModel, SequenceOutput, check_sizes, mlp
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.likelihoods import Likelihood
from vrnn_lightning.models.time_parallel import COMPILE_MODES, State, check_fusable, time_parallel_forward


class Prior(nn.Module):
    """p(z_t | h_{t-1}) = N(mean, diag(std^2)), both from an MLP of h_{t-1}; std = softplus + min_std."""

    def __init__(self, h_dim: int, hidden_dim: int, z_dim: int, layers: int, min_std: float) -> None:
        super().__init__()
        self.trunk = mlp(h_dim, hidden_dim, layers)
        self.out = nn.Linear(hidden_dim, 2 * z_dim)
        self.min_std = min_std

    def forward(self, h: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian.from_params(self.out(self.trunk(h)), self.min_std)


class Encoder(nn.Module):
    """q(z_t | x_t, h_{t-1}) = N(mean, diag(std^2)), both from an MLP of [phi_x(x_t), h_{t-1}] (filtering)."""

    def __init__(self, x_feat_dim: int, h_dim: int, hidden_dim: int, z_dim: int, layers: int, min_std: float) -> None:
        super().__init__()
        self.trunk = mlp(x_feat_dim + h_dim, hidden_dim, layers)
        self.out = nn.Linear(hidden_dim, 2 * z_dim)
        self.min_std = min_std

    def forward(self, x_feat: Tensor, h: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian.from_params(self.out(self.trunk(torch.cat([x_feat, h], -1))), self.min_std)


class Decoder(nn.Module):
    """p(x_t | z_t, h_{t-1}): the likelihood's parameters from an MLP of [phi_z(z_t), h_{t-1}]."""

    def __init__(self, z_feat_dim: int, h_dim: int, hidden_dim: int, param_dim: int, layers: int) -> None:
        super().__init__()
        self.trunk = mlp(z_feat_dim + h_dim, hidden_dim, layers)
        self.out = nn.Linear(hidden_dim, param_dim)

    def forward(self, z_feat: Tensor, h: Tensor) -> Tensor:
        return self.out(self.trunk(torch.cat([z_feat, h], -1)))


class Recurrence(nn.Module):
    """h_t = cell([phi_x(x_t), phi_z(z_t)], h_{t-1}), the cell a GRU or an LSTM (whose state is (h, c))."""

    def __init__(self, x_feat_dim: int, z_feat_dim: int, h_dim: int, rnn: str) -> None:
        super().__init__()
        if rnn not in ("gru", "lstm"):
            raise ValueError(f"model.rnn must be 'gru' or 'lstm', got {rnn!r}")
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
        min_std: float = 1e-4,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        sizes = dict(
            h_dim=h_dim,
            z_dim=z_dim,
            x_feat_dim=x_feat_dim,
            z_feat_dim=z_feat_dim,
            hidden_dim=hidden_dim,
            mlp_layers=mlp_layers,
        )
        check_sizes(**sizes)
        if not min_std > 0:
            raise ValueError(f"model.min_std must be > 0 so no std reaches zero, got {min_std!r}")
        if not (isinstance(compile, bool) or compile in COMPILE_MODES):
            raise ValueError(f"model.compile must be true, false or one of {', '.join(COMPILE_MODES)}, got {compile!r}")
        self.config = dict(
            _target_=f"{__name__}.VRNN",
            likelihood=likelihood.config,
            **sizes,
            rnn=rnn,
            min_std=min_std,
            compile=compile,
        )
        self.latent_dim, self.compile_mode = z_dim, compile

        self.likelihood = likelihood
        self.phi_x = mlp(likelihood.in_dim, x_feat_dim, mlp_layers)
        self.phi_z = mlp(z_dim, z_feat_dim, mlp_layers)
        self.prior = Prior(h_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.encoder = Encoder(x_feat_dim, h_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.decoder = Decoder(z_feat_dim, h_dim, hidden_dim, likelihood.param_dim, mlp_layers)
        self.recurrence = Recurrence(x_feat_dim, z_feat_dim, h_dim, rnn)
        check_fusable(self)

    def initial_state(self, batch_size: int) -> State:
        return self.recurrence.initial_state(batch_size, self.device, self.dtype)

    def step(
        self,
        state: State,
        x: Tensor | None = None,
        noise: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Step:
        """One step from state h_{t-1}. Given x_t (B, ...), z_t is drawn from the encoder q(z_t | x_t, h_{t-1});
        without it, z_t is drawn from the prior and x_t from the decoder at `temperature`. `noise` (B, z_dim)
        fixes the draw of z_t."""
        h = self.recurrence.hidden(state)
        batch = h.shape[0]
        if noise is None:
            noise = torch.randn(batch, self.latent_dim, device=h.device, dtype=h.dtype, generator=generator)
        prior = self.prior(h)
        posterior = None
        if x is not None:
            x_feat = self.phi_x(self.likelihood.features(x.unsqueeze(1), self.dtype)).squeeze(1)
            posterior = self.encoder(x_feat, h)
        z = (posterior or prior).rsample(noise)
        z_feat = self.phi_z(z)
        x_params = self.decoder(z_feat, h)
        if x is None:
            x = self.likelihood.sample(x_params, temperature, generator)
            x_feat = self.phi_x(self.likelihood.features(x.unsqueeze(1), self.dtype)).squeeze(1)
        return Step(x, prior, posterior, z, x_params, self.recurrence(x_feat, z_feat, state))

    def forward(self, x: Tensor, mask: Tensor | None = None, noise: Tensor | None = None) -> SequenceOutput:
        """Teacher-forced pass, time-parallel (`time_parallel.py`); equal to `step` applied at every t."""
        return time_parallel_forward(self, x, mask, noise)

    @torch.no_grad()
    def generate(
        self,
        length: int,
        batch_size: int = 1,
        prime: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample `length` steps: prior -> z_t -> decoder -> x_t -> recurrence.

        `prime` (B, P, ...) is read first through the encoder, as in training, so the samples continue it;
        it is not repeated in the output. `temperature` scales the decoder's distribution.
        """
        if prime is not None:
            prime, batch_size = prime.to(self.device), prime.shape[0]
        state = self.initial_state(batch_size)
        for t in range(0 if prime is None else prime.shape[1]):
            state = self.step(state, prime[:, t], generator=generator).state
        samples = []
        for _ in range(length):
            step = self.step(state, temperature=temperature, generator=generator)
            samples.append(step.x)
            state = step.state
        return torch.stack(samples, 1)
