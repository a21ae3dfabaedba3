"""The bounds of `objectives/bounds.py`: FIVO against the ELBO's one-sample estimate (K = 1), against the exact
log p(x) of a linear-Gaussian state-space model (a Kalman filter's, the test model the FIVO paper's code keeps),
ancestry carrying every state, masks, the resampling schemes, and the module training on it."""

import math

import pytest
import torch
from torch import Tensor

from vrnn_lightning.data.base import Batch
from vrnn_lightning.models import DMM, SRNN, STORN, VRNN, Bernoulli, Categorical, SequenceModel, SequenceOutput
from vrnn_lightning.models.base import masked
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.objectives import FIVO
from vrnn_lightning.objectives.bounds import fivo_bound, iw_bound, resample
from vrnn_lightning.training.module import SequenceModule


class LinearGaussian(SequenceModel):
    """z_1 ~ N(0, 1), z_t = a z_{t-1} + N(0, q), x_t = z_t + N(0, r), proposed from the prior (a bootstrap
    filter). Its state is (z_{t-1}, every z so far): each step checks that the two arrived together, so a
    resampling that moved one part of a particle's state without the other fails."""

    latent_dim = 1

    def __init__(self, a: float = 0.9, q: float = 0.5, r: float = 0.3) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a parameter, so the contract's device/dtype work
        self.a, self.q, self.r = a, q, r
        self.config = {}

    def forward(self, x: Tensor, mask: Tensor | None = None, noise: Tensor | None = None, state=None):
        batch, steps = x.shape[:2]
        mask = torch.ones(batch, steps) if mask is None else mask
        noise = torch.randn(batch, steps, 1) if noise is None else noise
        z_prev, history = (None, x.new_zeros(batch, 0)) if state is None else state
        if z_prev is not None:
            assert torch.equal(z_prev[:, 0], history[:, -1]), "a particle's state parts came from different ancestors"
        means, stds, zs = [], [], []
        for t in range(steps):
            mean = torch.zeros(batch, 1) if z_prev is None else self.a * z_prev
            std = torch.full((batch, 1), 1.0 if z_prev is None else math.sqrt(self.q))
            z_prev = mean + std * noise[:, t]
            means.append(mean), stds.append(std), zs.append(z_prev)
            history = torch.cat([history, z_prev], 1)
        z = torch.stack(zs, 1)  # (B, T, 1)
        prior = DiagonalGaussian(torch.stack(means, 1), torch.stack(stds, 1))
        x_given_z = DiagonalGaussian(z, torch.full_like(z, math.sqrt(self.r)))
        recon = masked(-x_given_z.log_prob(x.unsqueeze(-1)) + 0 * self.anchor, mask)
        return SequenceOutput(recon, torch.zeros_like(recon), mask, z, prior, prior, z, (z_prev, history))

    def generate(self, length, batch_size=1, prime=None, temperature=1.0, generator=None):
        raise NotImplementedError

    def exact_log_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) (B,) by a Kalman filter."""
        mean, var = torch.zeros(len(x)), torch.ones(len(x))
        total = torch.zeros(len(x))
        for t in range(x.shape[1]):
            if t > 0:
                mean, var = self.a * mean, self.a**2 * var + self.q
            predicted = var + self.r
            total += -0.5 * (math.log(2 * math.pi) + predicted.log() + (x[:, t] - mean) ** 2 / predicted)
            gain = var / predicted
            mean, var = mean + gain * (x[:, t] - mean), (1 - gain) * var
        return total


def noise_of(generator_seed: int, batch: int, steps: int, z_dim: int) -> Tensor:
    """The noise fivo_bound draws with K = 1: one (B, 1, Z) draw per step from its generator."""
    generator = torch.Generator().manual_seed(generator_seed)
    return torch.cat([torch.randn(batch, 1, z_dim, generator=generator) for _ in range(steps)], 1)


SIZES = dict(h_dim=8, z_dim=3, x_feat_dim=5, hidden_dim=8)
PROPOSALS = {  # every model and posterior of the family; a smoothing one reads the future through summarise_future
    "vrnn": lambda: VRNN(Categorical(6), z_feat_dim=5, **SIZES),
    "vrnn-smoothing": lambda: VRNN(Categorical(6), z_feat_dim=5, posterior="smoothing", **SIZES),
    "srnn": lambda: SRNN(Categorical(6), posterior="filtering", **SIZES),
    "srnn-smoothing": lambda: SRNN(Categorical(6), **SIZES),
    "srnn-smoothing-no-resq": lambda: SRNN(Categorical(6), resq=False, **SIZES),
    "dmm": lambda: DMM(Categorical(6), posterior="filtering", **SIZES),
    "dmm-smoothing": lambda: DMM(Categorical(6), **SIZES),
    "storn": lambda: STORN(Categorical(6), z_feat_dim=5, **SIZES),
}


@pytest.mark.parametrize("name", PROPOSALS)
def test_one_particle_is_the_elbo_s_one_sample_estimate_with_the_same_noise_and_masks(name):
    """A smoothing posterior stepped one step at a time reads the same future as the whole-sequence pass: each
    sequence's own, up to its last real step (lengths 7, 4 and 1 here)."""
    torch.manual_seed(0)
    model = PROPOSALS[name]()
    x = torch.randint(0, 6, (3, 7))
    mask = (torch.arange(7) < torch.tensor([7, 4, 1])[:, None]).float()
    filtered = fivo_bound(model, x, mask, 1, generator=torch.Generator().manual_seed(3))
    one_sample = model(x, mask, noise_of(3, 3, 7, 3)).log_weight()
    assert torch.allclose(filtered.bound, one_sample, atol=1e-4)
    assert filtered.resamplings.sum() == 0  # one particle: its effective sample size is always 1


def test_the_bound_rises_towards_the_kalman_filter_s_log_likelihood_as_particles_grow():
    torch.manual_seed(0)
    model = LinearGaussian()
    z = torch.zeros(4, 30)
    for t in range(30):
        z[:, t] = (0.9 * z[:, t - 1] if t else 0) + (0.5**0.5 if t else 1.0) * torch.randn(4)
    x = z + 0.3**0.5 * torch.randn(4, 30)
    mask = torch.ones(4, 30)
    exact = model.exact_log_likelihood(x)
    gaps = {}
    repeats, masks = x.repeat(20, 1), mask.repeat(20, 1)  # 20 independent runs as one batch
    for k in (1, 4, 64):
        runs = fivo_bound(model, repeats, masks, k).bound.view(20, 4)
        gaps[k] = (exact - runs.mean(0)).mean().item()
    assert gaps[1] > gaps[4] > gaps[64] > -0.05  # a lower bound in expectation, tightening with K
    assert gaps[64] < 0.5 and gaps[1] > 3  # bootstrap proposals: far off alone, close with many particles
    iw = iw_bound(model, repeats, masks, 64).view(20, 4).mean(0)
    assert (exact - iw).mean() > 2 * gaps[64]  # whole-trajectory weights degenerate over 30 steps


def test_resampling_moves_every_part_of_a_particle_s_state_and_stops_after_a_sequence_ends():
    torch.manual_seed(1)
    model = LinearGaussian()
    x = torch.randn(2, 25)
    mask = torch.ones(2, 25)
    mask[1, 3:] = 0  # the second sequence ends after 3 steps; what follows is junk that would swamp any sum
    x[1, 3:] = 1e4
    filtered = fivo_bound(model, x, mask, 8, threshold=1.0)  # resample whenever the weights are uneven
    assert filtered.resamplings[0] > 10 and filtered.resamplings[1] <= 3  # (the model checks the states)
    exact = model.exact_log_likelihood(x[1:, :3])[0]
    assert exact - 3 < filtered.bound[1] < exact + 1  # the padding added nothing


def test_a_threshold_of_zero_never_resamples_and_is_the_iw_bound_of_its_particles():
    torch.manual_seed(2)
    model = PROPOSALS["vrnn"]()
    x, mask = torch.randint(0, 6, (2, 6)), torch.ones(2, 6)
    filtered = fivo_bound(model, x, mask, 5, threshold=0.0, generator=torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    noise = torch.cat([torch.randn(10, 1, 3, generator=generator) for _ in range(6)], 1)
    assert filtered.resamplings.sum() == 0
    assert torch.allclose(filtered.bound, iw_bound(model, x, mask, 5, noise), atol=1e-4)


@pytest.mark.parametrize("scheme", ["multinomial", "systematic"])
def test_ancestors_are_drawn_in_proportion_to_the_weights(scheme):
    weights = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).log().expand(4000, 4)
    counts = torch.nn.functional.one_hot(resample(weights, scheme), 4).sum((0, 1)).float() / (4000 * 4)
    assert torch.allclose(counts, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.01)
    if scheme == "systematic":  # each particle kept floor or ceil of K w times
        per_row = torch.nn.functional.one_hot(resample(weights, scheme), 4).sum(1)  # (R, 4)
        assert ((per_row >= torch.tensor([0, 0, 1, 1])) & (per_row <= torch.tensor([1, 1, 2, 2]))).all()


def test_the_module_trains_on_the_fivo_bound_and_its_gradient_reaches_the_model():
    torch.manual_seed(0)
    model = SRNN(Bernoulli(5), h_dim=8, z_dim=3, x_feat_dim=5, hidden_dim=8, posterior="filtering")
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={"figures": {}}, objective=FIVO(samples=4))
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    module.log_dict = lambda values, **kw: logged.update({k: float(v) for k, v in values.items()})
    x = torch.randint(0, 2, (3, 9, 5)).float()
    loss = module.training_step(Batch(x, torch.ones(3, 9)), 0)
    loss.backward()
    assert torch.isfinite(loss) and {"train/resamplings", "train/recon", "train/kl"} <= set(logged)
    assert all(p.grad is not None for p in model.parameters())


def test_a_smoothing_posterior_trained_by_fivo_gets_a_gradient_through_its_backward_pass():
    torch.manual_seed(0)
    model = DMM(Bernoulli(5), h_dim=8, z_dim=3, x_feat_dim=5, hidden_dim=8)  # ST-R: q(z_t | z_{t-1}, x_{t:T})
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={"figures": {}}, objective=FIVO(samples=4))
    module.log = module.log_dict = lambda *args, **kw: None
    x = torch.randint(0, 2, (3, 9, 5)).float()
    module.training_step(Batch(x, (torch.arange(9) < torch.tensor([9, 5, 2])[:, None]).float()), 0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.summary.parameters())
