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
    futures = model.summarise_future(x, mask)  # b_t of a smoothing posterior, else None
    steps, recon, kl = [], [], []
    for t in range(x.shape[1]):
        step = model.step(state, x[:, t], noise[:, t], future=None if futures is None else futures[:, t])
        # the loss terms of step t inside the loop, as per-step code computes them
        recon.append(model.likelihood.nll(step.x_params.unsqueeze(1), x[:, t : t + 1])[:, 0])  # (B,)
        kl.append(step.posterior.kl(step.prior))  # (B,)
        steps.append(step)
        state = step.state

    def stack(gaussians: list[DiagonalGaussian]) -> DiagonalGaussian:
        return DiagonalGaussian(torch.stack([g.mean for g in gaussians], 1), torch.stack([g.std for g in gaussians], 1))

    prior, posterior = stack([s.prior for s in steps]), stack([s.posterior for s in steps])
    x_params = torch.stack([s.x_params for s in steps], 1)
    recon, kl = masked(torch.stack(recon, 1), mask), masked(torch.stack(kl, 1), mask)
    return SequenceOutput(recon, kl, mask, x_params, posterior, prior, torch.stack([s.z for s in steps], 1))
