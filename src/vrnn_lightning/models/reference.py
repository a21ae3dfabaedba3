"""The plain per-step VRNN formulation: every network inside the time loop, as public VRNN code writes it.

Kept as the reference `VRNN.forward` must match (tests) and the baseline it is timed against (benchmarks).
"""

import torch
from torch import Tensor

from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.vrnn import VRNN, VRNNOutput


def per_step_forward(model: VRNN, x: Tensor, noise: Tensor) -> VRNNOutput:
    """Same result as `model(x, noise)`, computed one step at a time."""
    batch, steps = x.shape[:2]
    state = model.initial_state(batch, noise.device, noise.dtype)
    recon, kl, posteriors, priors, x_params_all, zs = [], [], [], [], [], []
    for t in range(steps):
        h = model.hidden(state)
        x_t = x[:, t : t + 1]
        x_feat = model.phi_x(model.likelihood.features(x_t, model.dtype))[:, 0]
        prior = DiagonalGaussian.from_params(model.prior(h), model.min_std)
        posterior = DiagonalGaussian.from_params(model.encoder(torch.cat([x_feat, h], -1)), model.min_std)
        z = posterior.rsample(noise[:, t])
        z_feat = model.phi_z(z)
        x_params = model.decoder(torch.cat([z_feat, h], -1))
        recon.append(model.likelihood.nll(x_params.unsqueeze(1), x_t)[:, 0])
        kl.append(posterior.kl(prior))
        x_params_all.append(x_params)
        zs.append(z)
        posteriors.append(posterior)
        priors.append(prior)
        state = model.cell(torch.cat([x_feat, z_feat], -1), state)

    def stack(gaussians: list[DiagonalGaussian]) -> DiagonalGaussian:
        return DiagonalGaussian(torch.stack([g.mean for g in gaussians], 1), torch.stack([g.std for g in gaussians], 1))

    return VRNNOutput(
        torch.stack(recon, 1), torch.stack(kl, 1), torch.stack(x_params_all, 1), stack(posteriors), stack(priors),
        torch.stack(zs, 1),
    )
