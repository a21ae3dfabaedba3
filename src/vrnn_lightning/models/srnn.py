"""The Stochastic Recurrent Neural Network of Fraccaro, Sønderby, Paquet and Winther (NeurIPS 2016),
arXiv:1605.07571: a deterministic RNN beside a chain of latents, and a posterior that reads the future.

With d_t a deterministic state over x_{<t}, which no z reaches (so it runs as one fused RNN over the sequence):
    deterministic d_t = RNN(phi_x(x_{t-1}), d_{t-1})                       (x_0 a zero feature vector)
    prior         p(z_t | z_{t-1}, d_t)      = N(Prior([z_{t-1}, d_t]))
    emission      p(x_t | z_t, d_t)          = likelihood(Decoder([z_t, d_t]))
    posterior     q(z_t | z_{t-1}, a_t)      = N(Posterior([z_{t-1}, a_t]))
                  a_t = RNN_backward([d_t, phi_x(x_t)], ..., [d_T, phi_x(x_T)])   (smoothing)
                  a_t = [d_t, phi_x(x_t)]                                          (filtering)
    Resq          posterior mean = prior mean + the Posterior's output (on by default): q learns the correction
                  to the prior, the paper's residual parameterisation.
Only the z-chain steps in Python, with the parts of its first layers that read d_t or a_t applied to every
step up front (`ChainGaussian`). The VRNN's names for the same sizes: `h_dim` the recurrent states (d_t and
a_t), `z_dim`, `x_feat_dim` (phi_x), `hidden_dim` and `mlp_layers` the MLPs.
"""

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

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
    ChainGaussian,
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


class Emission(blocks.Emission):
    """p(x_t | z_t, d_t): the likelihood's parameters from an MLP of [z_t, d_t], its input dropped out at
    `dropout` in training."""


class SRNN(SequenceModel):
    """An SRNN over sequences x of shape (B, T, ...); the likelihood head fixes what x_t is. Its carried state
    is (d_T [, c_T for an LSTM], z_T, phi_x(x_T)): everything the next window's first step reads."""

    posterior_modules = ("posterior", "summary")  # read by q alone
    renamed: ClassVar[dict[str, str]] = {"future.": "summary."}  # earlier names

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
        resq: bool = True,
        min_std: float = 1e-4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.remember(locals())
        self.latent_dim, self.x_feat_dim, self.resq = z_dim, x_feat_dim, resq
        self.phi_x = with_dropout(mlp(likelihood.in_dim, x_feat_dim, mlp_layers), dropout)
        self.deterministic = Recurrent(x_feat_dim, h_dim, rnn)
        self.prior = ChainGaussian(z_dim, h_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.summary = BackwardRNN(h_dim + x_feat_dim, h_dim, rnn) if posterior == "smoothing" else None
        summary_dim = h_dim if self.summary is not None else h_dim + x_feat_dim
        self.posterior = ChainGaussian(z_dim, summary_dim, hidden_dim, z_dim, mlp_layers, min_std)
        self.emission = Emission(z_dim + h_dim, hidden_dim, likelihood.param_dim, mlp_layers, dropout)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_common(settings, SIZES, posteriors=("smoothing", "filtering"))
        if not isinstance(settings.get("resq", True), bool):
            raise ValueError(f"model.resq must be true or false, got {settings['resq']!r}")

    def split_state(self, state: Flat | None) -> tuple[Flat | None, Tensor | None, Tensor | None]:
        """(the deterministic RNN's state, z_{t-1}, phi_x(x_{t-1})) of a carried state."""
        if state is None:
            return None, None, None
        parts = self.deterministic.parts
        return tuple(state[:parts]), state[parts], state[parts + 1]

    def summarise_future(self, x: Tensor, mask: Tensor) -> Tensor | None:
        """a_t, the backward state over [d, phi_x(x)]_{t:T}, for every step of x (B, T, ...) where the posterior
        is smoothing (else None); d runs from the start of the sequence, as in `forward` without a state."""
        if self.summary is None:
            return None
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))  # (B, T, Fx)
        d, _ = self.deterministic(shifted(x_feats, None), None)  # (B, T, H)
        return self.summary(torch.cat([d, x_feats], -1), mask)  # (B, T, H)

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
        (B, T, H), a_t from `summarise_future` over a longer sequence, replaces the backward pass over x.
        `samples` K > 1 draws K trajectories per sequence (rows b*K .. b*K+K-1 of the output, `noise` (B*K, T, Z))
        with d and a computed once per sequence: the same as K copies of x, at the z-chain's cost."""
        check_samples(samples, state)
        mask = full_mask(x) if mask is None else mask
        d_state, z, x_feat_prev = self.split_state(state)
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))  # (B, T, Fx)
        d, d_last = self.deterministic(shifted(x_feats, x_feat_prev), d_state)  # (B, T, H): d_t over x_{<t}
        summary = torch.cat([d, x_feats], -1)  # (B, T, H + Fx)
        a = summary  # (B, T, H + Fx): what a filtering posterior reads
        if self.summary is not None:
            a = self.summary(summary, mask) if future is None else future  # (B, T, H): a_t over the steps from t
        if samples > 1:
            x, mask, x_feats, d, a, *d_last = per_trajectory(samples, x, mask, x_feats, d, a, *d_last)  # (B*K, ...)
        batch, steps, _ = x_feats.shape
        if noise is None:
            noise = torch.randn(batch, steps, self.latent_dim, device=x.device, dtype=x_feats.dtype)
        z_first = x_feats.new_zeros(batch, self.latent_dim) if z is None else z  # z_0, or the carried z
        posterior_pre = self.posterior.conditions(a)  # (B, T, hidden)
        if self.resq:
            posterior, prior, z_all = self.resq_chain(self.prior.conditions(d), posterior_pre, noise, z_first)
        else:
            posteriors, z = [], z_first
            for pre_t, noise_t in zip(time_major(posterior_pre), time_major(noise), strict=True):
                q = self.posterior.step(pre_t, z)
                z = q.rsample(noise_t)
                posteriors.append(q)
            posterior = stack_gaussians(posteriors)
            z_all = posterior.rsample(noise)  # the draws the chain made, batched
            prior = self.prior(shifted(z_all, z_first), d)  # z_{t-1} known at every t: all steps at once
        x_params = self.emission(z_all, d)  # (B, T, param_dim)
        recon = masked(self.likelihood.nll(x_params, x), mask)
        kl = masked(posterior.kl(prior), mask)
        carried = (*d_last, z_all[:, -1], x_feats[:, -1])
        return SequenceOutput(recon, kl, mask, x_params, posterior, prior, z_all, carried)

    def resq_chain(
        self, prior_pre: Tensor, posterior_pre: Tensor, noise: Tensor, z: Tensor
    ) -> tuple[DiagonalGaussian, DiagonalGaussian, Tensor]:
        """The z-chain with Resq, (posterior, prior, z) over (B, T, Z). Per step, one matmul takes z_{t-1} into
        both first layers, and one takes both hidden layers to [prior mean + posterior correction, posterior raw
        std] (its weight holds a zero block), so a step is about as many kernels as the VRNN's; the prior's std
        is computed after the chain, on the stacked hidden layers."""
        z_dim = self.latent_dim
        pre = time_major(torch.cat([prior_pre, posterior_pre], -1))  # T x (B, 2 hidden)
        z_weight_t = torch.cat([self.prior.z_weight(), self.posterior.z_weight()]).t()  # (Z, 2 hidden)
        p_out, q_out = self.prior.out, self.posterior.out
        out_weight_t = torch.cat(
            [
                torch.cat([p_out.weight[:z_dim], q_out.weight[:z_dim]], 1),
                torch.cat([torch.zeros_like(p_out.weight[z_dim:]), q_out.weight[z_dim:]], 1),
            ]
        ).t()  # (2 hidden, 2Z)
        out_bias = torch.cat([p_out.bias[:z_dim] + q_out.bias[:z_dim], q_out.bias[z_dim:]])  # (2Z,)
        prior_hiddens, means, stds = [], [], []
        for pre_t, noise_t in zip(pre, time_major(noise), strict=True):
            prior_hidden, posterior_hidden = torch.relu(torch.addmm(pre_t, z, z_weight_t)).chunk(2, -1)
            prior_hidden, posterior_hidden = self.prior.rest(prior_hidden), self.posterior.rest(posterior_hidden)
            mean, raw_std = torch.addmm(out_bias, torch.cat([prior_hidden, posterior_hidden], -1), out_weight_t).chunk(
                2, -1
            )
            std = F.softplus(raw_std) + self.posterior.min_std
            z = torch.addcmul(mean, std, noise_t)
            prior_hiddens.append(prior_hidden)
            means.append(mean)
            stds.append(std)
        posterior = DiagonalGaussian(torch.stack(means, 1), torch.stack(stds, 1))
        prior = DiagonalGaussian.from_params(p_out(torch.stack(prior_hiddens, 1)), self.prior.min_std)
        return posterior, prior, posterior.rsample(noise)

    def generation_start(self, batch_size: int, prime: Tensor | None, generator: torch.Generator | None) -> Any:
        """(the deterministic RNN's state, z, phi_x(x)) after reading `prime` through the posterior, or zeros."""
        d_state, z, x_feat = self.split_state(None if prime is None else self(prime).state)
        if z is None:
            z = torch.zeros(batch_size, self.latent_dim, device=self.device, dtype=self.dtype)
            x_feat = torch.zeros(batch_size, self.x_feat_dim, device=self.device, dtype=self.dtype)
        return d_state, z, x_feat

    def generation_step(self, carried: Any, temperature: float, generator: torch.Generator | None) -> Any:
        """d_t -> z_t ~ p(z_t | z_{t-1}, d_t) -> x_t ~ p(x_t | z_t, d_t)."""
        d_state, z, x_feat = carried
        d, d_state = self.deterministic(x_feat.unsqueeze(1), d_state)  # (B, 1, H)
        d = d[:, 0]
        noise = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)
        z = self.prior.step(self.prior.conditions(d), z).rsample(noise)
        x_t = self.likelihood.sample(self.emission(z, d), temperature, generator)
        return x_t, (d_state, z, self.phi_x(self.likelihood.features(x_t.unsqueeze(1), self.dtype))[:, 0])
