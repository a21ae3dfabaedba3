"""The Stochastic Recurrent Network of Bayer and Osendorfer (2014), arXiv:1411.7610: an RNN driven by
independent latent noise, inferred by a second RNN.

    prior      p(z_t)                   = N(0, I), every step
    posterior  q(z_t | x_{1:t})         = N(Posterior(e_t)),  e_t = RNN_recognition(phi_x(x_t), e_{t-1})
    generator  h_t = RNN_generating([phi_z(z_t), phi_x(x_{t-1})], h_{t-1})      (x_0 a zero feature vector)
    emission   p(x_t | h_t)             = likelihood(Decoder(h_t))
No z reaches another z: the recognition RNN, the draws, and (given the draws) the generating RNN each run over
the whole sequence at once, with no loop in Python. The VRNN's names: `h_dim` both RNNs, `z_dim`,
`x_feat_dim` (phi_x), `z_feat_dim` (phi_z), `hidden_dim` and `mlp_layers` the MLPs; `posterior` is filtering
only (q reads x_{1:t}, as the paper's).
"""

from typing import Any, ClassVar

import torch
from torch import Tensor

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
    Emission,
    Flat,
    GaussianMLP,
    Recurrent,
    check_samples,
    per_trajectory,
    shifted,
    standard_normal,
)
from vrnn_lightning.models.likelihoods import Likelihood

SIZES = ("h_dim", "z_dim", "x_feat_dim", "z_feat_dim", "hidden_dim", "mlp_layers")


class Posterior(GaussianMLP):
    """q(z_t | x_{1:t}) = N(mean, diag(std^2)) from an MLP of the recognition state e_t."""


class Decoder(Emission):
    """p(x_t | h_t): the likelihood's parameters from an MLP of h_t, its input dropped out at `dropout`."""


class STORN(SequenceModel):
    """A STORN over sequences x of shape (B, T, ...). Its carried state is (the recognition RNN's state, the
    generating RNN's state, phi_x(x_T)), an LSTM's (h, c) as two entries each."""

    posterior_modules = ("summary", "posterior")  # read by q alone
    renamed: ClassVar[dict[str, str]] = {
        "recognition.": "summary.",
        "generating.": "deterministic.",
        "decoder.": "emission.",
    }  # earlier versions' names of its parts

    def __init__(
        self,
        likelihood: Likelihood,
        h_dim: int = 256,
        z_dim: int = 32,
        x_feat_dim: int = 128,
        z_feat_dim: int = 128,
        hidden_dim: int = 256,
        mlp_layers: int = 2,
        rnn: str = "gru",
        posterior: str = "filtering",
        min_std: float = 1e-4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.remember(locals())
        self.latent_dim, self.x_feat_dim = z_dim, x_feat_dim
        self.phi_x = with_dropout(mlp(likelihood.in_dim, x_feat_dim, mlp_layers), dropout)
        self.phi_z = mlp(z_dim, z_feat_dim, mlp_layers)
        self.summary = Recurrent(x_feat_dim, h_dim, rnn)
        self.posterior = Posterior(h_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.deterministic = Recurrent(z_feat_dim + x_feat_dim, h_dim, rnn)
        self.emission = Decoder(h_dim, hidden_dim, likelihood.param_dim, mlp_layers, dropout)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_common(settings, SIZES, posteriors=("filtering",))

    def split_state(self, state: Flat | None) -> tuple[Flat | None, Flat | None, Tensor | None]:
        """(the recognition RNN's state, the generating RNN's state, phi_x(x_{t-1})) of a carried state."""
        if state is None:
            return None, None, None
        parts = self.summary.parts
        return tuple(state[:parts]), tuple(state[parts : 2 * parts]), state[2 * parts]

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        noise: Tensor | None = None,
        state: Flat | None = None,
        samples: int = 1,
    ) -> SequenceOutput:
        """Teacher-forced pass over x (B, T, ...); `noise` (B, T, Z) fixes the posterior's draws. `samples` K > 1
        draws K trajectories per sequence (rows b*K .. b*K+K-1 of the output, `noise` (B*K, T, Z)) with the
        recognition RNN run once per sequence: the same as K copies of x."""
        check_samples(samples, state)
        mask = full_mask(x) if mask is None else mask
        e_state, h_state, x_feat_prev = self.split_state(state)
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))  # (B, T, Fx)
        e, e_last = self.summary(x_feats, e_state)  # (B, T, H): e_t over x_{1:t}
        if samples > 1:
            x, mask, x_feats, e, *e_last = per_trajectory(samples, x, mask, x_feats, e, *e_last)  # (B*K, ...)
        posterior = self.posterior(e)  # (B, T, Z)
        z = posterior.rsample(noise)  # (B, T, Z), all steps at once
        generator_inputs = torch.cat([self.phi_z(z), shifted(x_feats, x_feat_prev)], -1)
        h, h_last = self.deterministic(generator_inputs, h_state)  # (B, T, H): h_t
        x_params = self.emission(h)
        prior = standard_normal(z)
        recon = masked(self.likelihood.nll(x_params, x), mask)
        kl = masked(posterior.kl(prior), mask)
        return SequenceOutput(recon, kl, mask, x_params, posterior, prior, z, (*e_last, *h_last, x_feats[:, -1]))

    def generation_start(self, batch_size: int, prime: Tensor | None, generator: torch.Generator | None) -> Any:
        """(the generating RNN's state, phi_x(x)) after reading `prime` through the posterior, or zeros."""
        _, h_state, x_feat = self.split_state(None if prime is None else self(prime).state)
        if x_feat is None:
            x_feat = torch.zeros(batch_size, self.x_feat_dim, device=self.device, dtype=self.dtype)
        return h_state, x_feat

    def generation_step(self, carried: Any, temperature: float, generator: torch.Generator | None) -> Any:
        """z_t ~ N(0, I) -> h_t -> x_t ~ p(x_t | h_t)."""
        h_state, x_feat = carried
        z = torch.randn(len(x_feat), self.latent_dim, device=self.device, dtype=self.dtype, generator=generator)
        h, h_state = self.deterministic(torch.cat([self.phi_z(z), x_feat], -1).unsqueeze(1), h_state)
        x_t = self.likelihood.sample(self.emission(h[:, 0]), temperature, generator)
        return x_t, (h_state, self.phi_x(self.likelihood.features(x_t.unsqueeze(1), self.dtype))[:, 0])
