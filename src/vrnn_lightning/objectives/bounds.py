"""The bounds on log p(x) a model of the contract is trained and scored by, as functions of the contract, used
by the LightningModule and by eval alike. Each returns one bound per sequence (B,), in nats; higher is better.

    ELBO   E_q[log p(x, z) - log q(z | x)], the module's recon + KL (analytic KL)
    IWAE   log (1/K) sum_k w_k,  w_k = p(x, z_k) / q(z_k | x), K whole trajectories (Burda et al., 2016)
    FIVO   the log of a particle filter's estimate of p(x): K particles proposed from q step by step, weighted
           by p(x_t, z_t | past) / q(z_t | ...), resampled whenever their effective sample size falls below
           `threshold` x K (Maddison et al., 2017, "Filtering Variational Objectives"; Le et al. and Naesseth
           et al. the same year). K = 1 is the ELBO's one-sample estimate; as K grows it tightens towards log p(x)
           faster than IWAE on long sequences, whose whole-trajectory weights degenerate.
FIVO steps the model one step at a time through its carried state (`model(x_t, mask_t, noise_t, state)`), the
K particles a batch dimension. A smoothing posterior's proposal reads x_{t:T} too: its summary of the future is
computed once over each whole sequence (`SequenceModel.summarise_future`) and handed to each step, which keeps
the bound a bound (a proposal may read any of x; the weights still multiply to an unbiased estimate of p(x)).
"""

import inspect
import math
from typing import NamedTuple

import torch
from torch import Tensor

from vrnn_lightning.models.base import SequenceModel, SequenceOutput, select_state, shared_dropout

RESAMPLING = ("multinomial", "systematic")


class Filtered(NamedTuple):
    """What a particle filter over a batch gives, per sequence (B,): the FIVO bound, how often its particles
    were resampled, and the reconstruction and KL terms of the average particle, summed over its real steps."""

    bound: Tensor
    resamplings: Tensor
    recon: Tensor
    kl: Tensor


def iw_bound(model: SequenceModel, x: Tensor, mask: Tensor, samples: int, noise: Tensor | None = None) -> Tensor:
    """The IW bound of `samples` trajectories per sequence of x (B, T, ...), (B,); `noise` (B * K, T, Z), drawn
    by the caller where it must be (the CUDA-graph path), else by the model. A model whose forward takes
    `samples` computes what reads no z once per sequence; any other runs over K copies of each sequence."""
    out = trajectories(model, x, mask, samples, noise)
    return mean_weight(out.log_weight().view(len(x), samples))  # (B, K) -> (B,)


def trajectories(
    model: SequenceModel, x: Tensor, mask: Tensor, samples: int, noise: Tensor | None = None
) -> SequenceOutput:
    """The model's pass with `samples` trajectories per sequence of x (rows b*K .. b*K+K-1 of the output): inside
    the model where its forward takes `samples` (what reads no z once per sequence), else over K copies."""
    if samples == 1:
        return model(x, mask, noise)
    with shared_dropout(model, len(x)):  # the K trajectories of a sequence share its dropout masks
        if takes_samples(model):
            return model(x, mask, noise, samples=samples)
        return model(x.repeat_interleave(samples, 0), mask.repeat_interleave(samples, 0), noise)


def takes_samples(model: SequenceModel) -> bool:
    """Whether `model(x, mask, noise, samples=K)` draws K trajectories per sequence of x itself."""
    return "samples" in inspect.signature(model.forward).parameters


def resample(weights: Tensor, scheme: str, generator: torch.Generator | None = None) -> Tensor:
    """Ancestor indices (R, K) in 0..K-1 drawn in proportion to `weights` (R, K), unnormalised log weights.

    Multinomial draws each ancestor independently; systematic draws one uniform offset per row and takes the
    K evenly spaced points of the cumulative weights (lower variance, the same expectation)."""
    probs = torch.softmax(weights.detach().double(), 1)  # no gradient through the choice (the paper's choice)
    k = weights.shape[1]
    if scheme == "multinomial":
        return torch.multinomial(probs.float(), k, replacement=True, generator=generator)
    offsets = torch.rand(len(weights), 1, dtype=probs.dtype, device=probs.device, generator=generator)
    points = (torch.arange(k, dtype=probs.dtype, device=probs.device) + offsets) / k  # (R, K) in (0, 1)
    cumulative = probs.cumsum(1)
    cumulative[:, -1] = 1.0  # rounding must not leave the last point beyond the last particle
    return torch.searchsorted(cumulative, points).clamp(max=k - 1)


def fivo_bound(
    model: SequenceModel,
    x: Tensor,
    mask: Tensor,
    particles: int,
    threshold: float = 0.5,
    scheme: str = "multinomial",
    generator: torch.Generator | None = None,
) -> Filtered:
    """The FIVO bound per sequence of x (B, T, ...), with what else the filter saw (`Filtered`).

    The K particles of sequence b are rows b*K .. b*K+K-1 of every tensor. After step t, a sequence whose
    particles' effective sample size (sum w)^2 / sum w^2 is below `threshold` x K has its estimate multiplied by
    the mean weight and its particles resampled, every state following its ancestor; a sequence past its last
    real step adds nothing and is not resampled. Gradients flow through the weights and the kept states, not
    through the choice of ancestors (the score-function term is dropped, as in the paper).
    """
    if scheme not in RESAMPLING:
        raise ValueError(f"objective.resampling must be one of {', '.join(RESAMPLING)}, got {scheme!r}")
    batch, k = x.shape[0], particles
    xs, masks = x.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)  # (B * K, T, ...), (B * K, T)
    limit = math.log(threshold * k) if threshold > 0 else -math.inf  # 0: never resample (the IW bound then)
    future = model.summarise_future(x, mask)  # (B, T, C) or None: reads no z, so one per sequence
    future = None if future is None else future.repeat_interleave(k, 0)  # (B * K, T, C)
    with shared_dropout(model, batch):  # the particles of a sequence share its dropout masks at every step
        return filter_steps(model, x, mask, xs, masks, k, limit, scheme, future, generator)


def filter_steps(
    model: SequenceModel,
    x: Tensor,
    mask: Tensor,
    xs: Tensor,
    masks: Tensor,
    k: int,
    limit: float,
    scheme: str,
    future: Tensor | None,
    generator: torch.Generator | None,
) -> Filtered:
    """The particle filter's loop of `fivo_bound` over the K-fold batch xs (B * K, T, ...)."""
    batch, steps = x.shape[:2]
    log_weights = torch.zeros(batch, k, dtype=model.dtype, device=x.device)  # since the last resampling, (B, K)
    estimate = torch.zeros(batch, dtype=model.dtype, device=x.device)  # log p-hat so far (B,)
    resamplings = torch.zeros(batch, dtype=torch.long, device=x.device)
    recon = kl = torch.zeros(batch, dtype=model.dtype, device=x.device)
    rows = torch.arange(batch, device=x.device).unsqueeze(1) * k  # (B, 1): each sequence's first particle
    state = None
    for t in range(steps):
        noise = torch.randn(batch * k, 1, model.latent_dim, device=x.device, dtype=model.dtype, generator=generator)
        given = {} if future is None else {"future": future[:, t : t + 1]}
        out = model(xs[:, t : t + 1], masks[:, t : t + 1], noise, state=state, **given)
        log_weights = log_weights + out.log_weight().view(batch, k)  # zero where the step is padding
        recon = recon + out.recon.view(batch, k).mean(1)
        kl = kl + out.kl.view(batch, k).mean(1)
        ess_low = log_ess(log_weights) < limit
        chosen = ess_low & mask[:, t].bool() & (t < steps - 1)  # the last step's weights close the estimate below
        state = out.state
        if chosen.any():
            estimate = estimate + torch.where(chosen, mean_weight(log_weights), 0.0)
            ancestors = resample(log_weights, scheme, generator)  # (B, K)
            keep = torch.arange(k, device=x.device).expand(batch, k)
            ancestors = torch.where(chosen.unsqueeze(1), ancestors, keep)
            state = select_state(state, (ancestors + rows).flatten())
            log_weights = torch.where(chosen.unsqueeze(1), torch.zeros_like(log_weights), log_weights)
            resamplings = resamplings + chosen.long()
    return Filtered(estimate + mean_weight(log_weights), resamplings, recon, kl)


def log_ess(log_weights: Tensor) -> Tensor:
    """log of the effective sample size (sum w)^2 / sum w^2 of each row of log weights (R, K)."""
    return 2 * torch.logsumexp(log_weights, 1) - torch.logsumexp(2 * log_weights, 1)


def mean_weight(log_weights: Tensor) -> Tensor:
    """log (1/K) sum_k w_k of each row (R, K)."""
    return torch.logsumexp(log_weights, 1) - math.log(log_weights.shape[1])
