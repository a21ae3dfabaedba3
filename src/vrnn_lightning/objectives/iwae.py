"""The importance-weighted bound (IWAE, Burda et al., 2016): log (1/K) sum_k w_k, w_k = p(x, z_k) / q(z_k | x)
for K whole trajectories z_k ~ q per sequence. Tighter than the ELBO as K grows; K = 1 is the ELBO's one-sample
estimate. Trained and judged by the same bound at its K: `val/iw_bound`, the negative bound per real step (lower
is better, like `val/loss`). The K trajectories of a sequence share everything that reads no z, dropout masks
included: the model computes it once per sequence (`samples=K`).
"""

import math
from typing import Any

import torch
from torch import Tensor

from vrnn_lightning.models.base import SequenceModel
from vrnn_lightning.objectives.base import Objective, Pass, Terms, check_count, default_pass
from vrnn_lightning.objectives.bounds import mean_weight


class IWAE(Objective):
    figure = "iw_bound"
    needs_latents = True

    def __init__(self, samples: int = 4) -> None:
        super().__init__(samples=samples)
        self.samples = samples

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_count(settings, "samples")

    def training_terms(self, module: Any, batch: Any) -> Terms:
        out = module.run_model(batch.x, batch.mask, samples=self.samples)  # rows b*K .. b*K+K-1: sequence b
        bound = mean_weight(out.log_weight().view(-1, self.samples))  # (B,)
        steps = batch.mask.sum()
        auxiliary = None if out.auxiliary is None else out.auxiliary.sum() / out.mask.sum()
        # The terms logged are those of the K-fold pass, per real step of the K copies
        k = self.samples
        return Terms(-bound.sum() / steps, out.recon.sum() / k, out.kl.sum() / k, batch.mask, auxiliary, None)

    def bound(self, model: SequenceModel, x: Tensor, mask: Tensor, run: Pass | None = None) -> Tensor:
        out = (run or default_pass(model))(x, mask, samples=self.samples)
        return mean_weight(out.log_weight().view(len(x), self.samples))

    def bound_in_chunks(self, model: SequenceModel, x: Tensor, mask: Tensor, chunk: int) -> Tensor:
        steps = x.shape[1]
        if self.samples * steps <= chunk:
            return super().bound_in_chunks(model, x, mask, chunk)
        # One sequence's K trajectories do not fit at once: split K into parts of k_i and combine them exactly,
        # log (1/K) sum_k w_k = logsumexp_i(log (1/k_i) sum_{k in i} w_k + log k_i) - log K
        part = max(1, chunk // steps)
        sizes = [min(part, self.samples - start) for start in range(0, self.samples, part)]
        bounds = []
        for one, one_mask in zip(x.split(1), mask.split(1), strict=True):
            parts = [IWAE(samples=k).bound(model, one, one_mask).double() + math.log(k) for k in sizes]
            bounds.append(torch.logsumexp(torch.stack(parts), 0) - math.log(self.samples))  # (1,)
        return torch.cat(bounds)
