"""The Deep Markov Model of Krishnan, Shalit and Sontag (AAAI 2017), arXiv:1609.09869: a nonlinear state-space
model, latents in a Markov chain, each observation from its own latent.

    transition p(z_t | z_{t-1})          = N(mean, diag(std^2)), gated:
                 gate = sigmoid(MLP_g(z_{t-1})), proposal = MLP_p(z_{t-1}),
                 mean = (1 - gate) * Linear(z_{t-1}) + gate * proposal    (Linear starts as the identity),
                 std  = softplus(Linear(relu(proposal))) + min_std
    emission   p(x_t | z_t)              = likelihood(MLP_e(z_t))
    inference  q(z_t | z_{t-1}, x_{t:T}) = N(Combiner(z_{t-1}, r_t)), r_t = RNN_backward(phi_x(x_{t:T}))  (ST-R,
                 smoothing); r_t = RNN_forward(phi_x(x_{1:t})) for `posterior=filtering` (ST-L)
                 Combiner: c = (tanh(Linear(z_{t-1})) + r_t) / 2, mean and std from Linear(c)
    augmented  (`augmented=true`, DMM-Aug) phi_x(x_{t-1}) feeds the transition's MLPs and the emission too.
    start      p(z_1) = N(0, I) (`initial_prior=standard`, the authors' code, `structuredinference` dkf.py), or the
                 transition from z_0 = 0 (`initial_prior=transition`: the learned start of earlier versions).
The combiner starts from z_0 = 0. The inference RNN reads no z (one fused call over the sequence); only the
combiner steps in Python, and the transition runs on the whole sampled chain after it. The VRNN's names:
`h_dim` the inference RNN, `z_dim`, `x_feat_dim` (phi_x), `hidden_dim` and `mlp_layers` the transition's and
emission's MLPs.
"""

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vrnn_lightning.models import blocks
from vrnn_lightning.models.base import (
    SequenceModel,
    SequenceOutput,
    check_common,
    full_mask,
    masked,
    mlp,
    with_dropout,
)
from vrnn_lightning.models.blocks import (
    BackwardRNN,
    Flat,
    Recurrent,
    check_samples,
    per_trajectory,
    shifted,
    stack_gaussians,
    time_major,
)
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.likelihoods import Likelihood

SIZES = ("h_dim", "z_dim", "x_feat_dim", "hidden_dim", "mlp_layers")


class GatedTransition(nn.Module):
    """p(z_t | z_{t-1} [, x_{t-1}]): a gate mixes a linear transition (identity at the start) with a nonlinear
    proposal; the std comes from the proposal."""

    def __init__(self, z_dim: int, x_feat_dim: int, hidden_dim: int, layers: int, min_std: float) -> None:
        super().__init__()
        in_dim = z_dim + x_feat_dim
        self.gate = nn.Sequential(mlp(in_dim, hidden_dim, layers), nn.Linear(hidden_dim, z_dim))
        self.proposal = nn.Sequential(mlp(in_dim, hidden_dim, layers), nn.Linear(hidden_dim, z_dim))
        self.linear = nn.Linear(z_dim, z_dim)
        self.std = nn.Linear(z_dim, z_dim)
        nn.init.eye_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.min_std = min_std

    def forward(self, z_prev: Tensor, x_feat_prev: Tensor | None = None) -> DiagonalGaussian:
        inputs = z_prev if x_feat_prev is None else torch.cat([z_prev, x_feat_prev], -1)
        gate, proposal = torch.sigmoid(self.gate(inputs)), self.proposal(inputs)
        mean = torch.lerp(self.linear(z_prev), proposal, gate)  # (1 - gate) * linear + gate * proposal
        return DiagonalGaussian(mean, F.softplus(self.std(torch.relu(proposal))) + self.min_std)


class Combiner(nn.Module):
    """q(z_t | z_{t-1}, r_t): c = (tanh(Linear(z_{t-1})) + r_t) / 2, then the mean and std from Linear(c)."""

    def __init__(self, z_dim: int, h_dim: int, min_std: float) -> None:
        super().__init__()
        self.from_z = nn.Linear(z_dim, h_dim)
        self.out = nn.Linear(h_dim, 2 * z_dim)
        self.min_std = min_std

    def forward(self, z_prev: Tensor, r: Tensor) -> DiagonalGaussian:
        combined = 0.5 * (torch.tanh(self.from_z(z_prev)) + r)
        return DiagonalGaussian.from_params(self.out(combined), self.min_std)


class Emission(blocks.Emission):
    """p(x_t | z_t [, x_{t-1}]): the likelihood's parameters from an MLP, its input dropped out at `dropout`."""


class DMM(SequenceModel):
    """A DMM over sequences x of shape (B, T, ...). Its carried state is (z_T, phi_x(x_T) [, the filtering
    RNN's state]): a smoothing posterior reads each window's own future only."""

    posterior_modules = ("posterior", "summary")  # read by q alone
    renamed: ClassVar[dict[str, str]] = {
        "transition.": "prior.",
        "combiner.": "posterior.",
        "inference.": "summary.",
    }  # earlier versions' names of its parts

    def __init__(
        self,
        likelihood: Likelihood,
        h_dim: int = 256,
        z_dim: int = 32,
        x_feat_dim: int = 128,
        hidden_dim: int = 256,
        mlp_layers: int = 2,
        rnn: str = "gru",
        posterior: str = "smoothing",
        augmented: bool = False,
        min_std: float = 1e-4,
        dropout: float = 0.0,
        initial_prior: str = "standard",
    ) -> None:
        super().__init__()
        self.remember(locals())
        self.latent_dim, self.x_feat_dim, self.augmented = z_dim, x_feat_dim, augmented
        self.standard_start = initial_prior == "standard"
        self.phi_x = with_dropout(mlp(likelihood.in_dim, x_feat_dim, mlp_layers), dropout)
        extra = x_feat_dim if augmented else 0
        self.prior = GatedTransition(z_dim, extra, hidden_dim, mlp_layers, min_std)
        self.emission = Emission(z_dim + extra, hidden_dim, likelihood.param_dim, mlp_layers, dropout)
        smoothing = posterior == "smoothing"
        self.summary = BackwardRNN(x_feat_dim, h_dim, rnn) if smoothing else Recurrent(x_feat_dim, h_dim, rnn)
        self.posterior = Combiner(z_dim, h_dim, min_std)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_common(settings, SIZES, posteriors=("smoothing", "filtering"))
        if not isinstance(settings.get("augmented", False), bool):
            raise ValueError(f"model.augmented must be true or false, got {settings['augmented']!r}")
        if settings.get("initial_prior", "standard") not in ("standard", "transition"):
            raise ValueError(
                f"model.initial_prior must be 'standard' (p(z_1) = N(0, I)) or 'transition' (from z_0 = 0), "
                f"got {settings['initial_prior']!r}"
            )

    def start(self, prior: DiagonalGaussian) -> DiagonalGaussian:
        """The prior over a sequence's steps with its first step's p(z_1) = N(0, I) where the start is standard."""
        if not self.standard_start:
            return prior
        first = torch.zeros_like(prior.mean[:, :1])
        mean = torch.cat([first, prior.mean[:, 1:]], 1)
        std = torch.cat([torch.ones_like(first), prior.std[:, 1:]], 1)
        return DiagonalGaussian(mean, std)

    def summarise_future(self, x: Tensor, mask: Tensor) -> Tensor | None:
        """r_t, the backward RNN's state over phi_x(x)_{t:T}, for every step of x (B, T, ...) where the posterior
        is smoothing (else None)."""
        if not isinstance(self.summary, BackwardRNN):
            return None
        return self.summary(self.phi_x(self.likelihood.features(x, self.dtype)), mask)  # (B, T, H)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        noise: Tensor | None = None,
        state: Flat | None = None,
        future: Tensor | None = None,
        samples: int = 1,
    ) -> SequenceOutput:
        """Teacher-forced pass over x (B, T, ...); `noise` (B, T, Z) fixes the posterior's draws; `future`
        (B, T, H), r_t from `summarise_future` over a longer sequence, replaces the backward pass over x.
        `samples` K > 1 draws K trajectories per sequence (rows b*K .. b*K+K-1 of the output, `noise` (B*K, T, Z))
        with the inference RNN run once per sequence: the same as K copies of x, at the combiner chain's cost."""
        check_samples(samples, state)
        mask = full_mask(x) if mask is None else mask
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))  # (B, T, Fx)
        if isinstance(self.summary, BackwardRNN):
            r = self.summary(x_feats, mask) if future is None else future  # (B, T, H)
            rnn_last = ()
        else:
            r, rnn_last = self.summary(x_feats, None if state is None else tuple(state[2:]))
        if samples > 1:
            x, mask, x_feats, r, *rnn_last = per_trajectory(samples, x, mask, x_feats, r, *rnn_last)  # (B*K, ...)
        batch, steps, _ = x_feats.shape
        z = x_feats.new_zeros(batch, self.latent_dim) if state is None else state[0]
        z_first = z
        if noise is None:
            noise = torch.randn(batch, steps, self.latent_dim, device=x.device, dtype=x_feats.dtype)
        posteriors, zs = [], []
        for r_t, noise_t in zip(time_major(r), time_major(noise), strict=True):
            q = self.posterior(z, r_t)
            z = q.rsample(noise_t)
            posteriors.append(q)
            zs.append(z)
        z_all = torch.stack(zs, 1)  # (B, T, Z)
        posterior = stack_gaussians(posteriors)
        x_feat_prev = shifted(x_feats, None if state is None else state[1]) if self.augmented else None
        prior = self.prior(shifted(z_all, z_first), x_feat_prev)  # every step at once, after the chain
        prior = self.start(prior) if state is None else prior  # a continuing window has no first step
        x_params = self.emission(z_all, x_feat_prev)
        recon = masked(self.likelihood.nll(x_params, x), mask)
        kl = masked(posterior.kl(prior), mask)
        carried = (z_all[:, -1], x_feats[:, -1], *rnn_last)
        return SequenceOutput(recon, kl, mask, x_params, posterior, prior, z_all, carried)

    def generation_start(self, batch_size: int, prime: Tensor | None, generator: torch.Generator | None) -> Any:
        """(z, phi_x(x), whether the next step is a sequence's first) after reading `prime`, or from z_0 = 0."""
        if prime is not None:
            return (*self(prime).state[:2], False)
        z = torch.zeros(batch_size, self.latent_dim, device=self.device, dtype=self.dtype)
        return z, torch.zeros(batch_size, self.x_feat_dim, device=self.device, dtype=self.dtype), True

    def generation_step(self, carried: Any, temperature: float, generator: torch.Generator | None) -> Any:
        """z_t ~ p(z_t | z_{t-1}) (p(z_1) = N(0, I) with the standard start) -> x_t ~ p(x_t | z_t)."""
        z, x_feat, first = carried
        extra = x_feat if self.augmented else None
        noise = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)
        z = noise if first and self.standard_start else self.prior(z, extra).rsample(noise)
        x_t = self.likelihood.sample(self.emission(z, extra), temperature, generator)
        return x_t, (z, self.phi_x(self.likelihood.features(x_t.unsqueeze(1), self.dtype))[:, 0], False)
