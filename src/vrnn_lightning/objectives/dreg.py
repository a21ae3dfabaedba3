"""IWAE with doubly reparameterised gradients (DReG, Tucker, Lawson, Gu and Maddison, ICLR 2019).

The same bound as IWAE, log (1/K) sum_k w_k, and the same gradient in expectation, with less variance for the
posterior. IWAE's gradient for the posterior's own parameters phi carries a score term, sum_k w~_k d/dphi
log q(z_k) at fixed z, whose variance grows with K until the signal-to-noise ratio of phi's gradient falls as
K rises (Rainforth et al., 2018). Reparameterising that term a second time replaces it and the path term by
    sum_k w~_k^2 d log w_k / d z_k  d z_k / d phi,        w~_k = w_k / sum_j w_j (no gradient through w~),
which reads z's path alone: log w_k is taken with q's means and stds cut from the graph (`stopped`), so only
z = mean + std * noise carries phi's gradient. That applies to the parameters only the posterior reads
(`SequenceModel.posterior_parameters`); every other parameter, the prior's, the emission's and those the
posterior shares with them, gets IWAE's own gradient. So each step runs the K-fold pass twice on the same
noise and the same dropout masks: once with phi cut (IWAE's surrogate, for the rest), once with the rest cut
(DReG's surrogate, for phi); about twice IWAE's cost. Judged by the IW bound at its K: `val/iw_bound`.
`benchmarks/dreg_variance.py` measures the variance of phi's gradient against IWAE's.
"""

from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call

from vrnn_lightning.models.base import SequenceModel, SequenceOutput, masked, shared_dropout
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.objectives.base import Terms
from vrnn_lightning.objectives.bounds import mean_weight, takes_samples
from vrnn_lightning.objectives.iwae import IWAE


def stopped(out: SequenceOutput) -> Tensor:
    """log w of each trajectory (B*K,) with q's means and stds cut from the graph: its gradient reaches the
    posterior's parameters through z alone."""
    q = DiagonalGaussian(out.posterior.mean.detach(), out.posterior.std.detach())
    log_ratio = out.prior.log_prob(out.z) - q.log_prob(out.z)  # (B*K, T)
    return (-out.recon + masked(log_ratio, out.mask)).sum(1)


class DReG(IWAE):
    graphed = False  # two passes with parameters cut in turn: run through torch.func, eager

    def k_fold(self, model: SequenceModel, x: Tensor, mask: Tensor, noise: Tensor, cut: set[str]) -> SequenceOutput:
        """The K-fold pass with the parameters named in `cut` detached (rows b*K .. b*K+K-1: sequence b)."""
        params = {name: p.detach() if name in cut else p for name, p in model.named_parameters()}
        with shared_dropout(model, len(x)):
            if takes_samples(model):
                return functional_call(model, params, (x, mask, noise), {"samples": self.samples})
            repeated = (x.repeat_interleave(self.samples, 0), mask.repeat_interleave(self.samples, 0), noise)
            return functional_call(model, params, repeated)

    def training_terms(self, module: Any, batch: Any) -> Terms:
        model, k, steps = module.model, self.samples, batch.mask.sum()
        own = {id(p) for p in model.posterior_parameters()}
        posterior = {name for name, p in model.named_parameters() if id(p) in own}
        rest = {name for name, _ in model.named_parameters()} - posterior
        noise = module.draw_noise(batch.x, k)  # one draw for both passes
        devices = [noise.device.index or 0] if noise.is_cuda else []
        with torch.random.fork_rng(devices=devices):  # the second pass redraws the first's dropout masks
            for_posterior = self.k_fold(model, batch.x, batch.mask, noise, cut=rest)
        out = self.k_fold(model, batch.x, batch.mask, noise, cut=posterior)
        log_w = out.log_weight().view(-1, k)  # (B, K)
        bound = mean_weight(log_w)  # (B,): the IW bound, as IWAE's
        normalised = torch.softmax(log_w.detach(), 1)  # w~ (B, K)
        dreg = (normalised.pow(2) * stopped(for_posterior).view(-1, k)).sum()  # reaches phi alone, via z
        # Its value cancels (x - x.detach()): the loss reads as the IW bound, the gradients are DReG's
        loss = -(bound.sum() + dreg - dreg.detach()) / steps
        auxiliary = None if out.auxiliary is None else out.auxiliary.sum() / out.mask.sum()
        return Terms(loss, out.recon.sum() / k, out.kl.sum() / k, batch.mask, auxiliary, None)
