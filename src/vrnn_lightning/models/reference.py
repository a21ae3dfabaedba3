"""The plain per-step VRNN formulation: `VRNN.step` at every t, as public VRNN code writes the loop.

Kept as the reference the time-parallel forward must match (tests) and the baseline it is timed against
(benchmarks).
"""

import torch
from torch import Tensor

from vrnn_lightning.models.base import SequenceOutput, full_mask, masked
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.vrnn import VRNN


def per_step_forward(model: VRNN, x: Tensor, noise: Tensor, mask: Tensor | None = None) -> SequenceOutput:
    """Same result as `model(x, mask, noise)`, computed one step at a time."""
    mask = full_mask(x) if mask is None else mask
    state = model.initial_state(x.shape[0])
    steps = []
    for t in range(x.shape[1]):
        step = model.step(state, x[:, t], noise[:, t])
        steps.append(step)
        state = step.state

    def stack(gaussians: list[DiagonalGaussian]) -> DiagonalGaussian:
        return DiagonalGaussian(torch.stack([g.mean for g in gaussians], 1), torch.stack([g.std for g in gaussians], 1))

    prior, posterior = stack([s.prior for s in steps]), stack([s.posterior for s in steps])
    x_params = torch.stack([s.x_params for s in steps], 1)
    recon = masked(model.likelihood.nll(x_params, x), mask)
    kl = masked(posterior.kl(prior), mask)
    return SequenceOutput(recon, kl, mask, x_params, posterior, prior, torch.stack([s.z for s in steps], 1))
