import math

import pytest
import torch
import torch.nn.functional as F

from vrnn_lightning.models import Bernoulli, Categorical, Gaussian, GaussianMixture, build


def test_categorical_nll_is_cross_entropy_per_step():
    torch.manual_seed(0)
    head = Categorical(5)
    logits, x = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    expected = -F.log_softmax(logits, -1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(head.nll(logits, x), expected)


def test_categorical_features_are_one_hot():
    feats = Categorical(4).features(torch.tensor([[0, 3]]), torch.float32)
    assert torch.equal(feats, torch.tensor([[[1.0, 0, 0, 0], [0, 0, 0, 1]]]))


def test_zero_temperature_is_argmax_and_low_temperature_concentrates():
    head = Categorical(3)
    logits = torch.tensor([[0.0, 1.0, 0.5]]).repeat(200, 1)
    assert torch.equal(head.sample(logits, temperature=0), torch.ones(200, dtype=torch.long))
    cold = head.sample(logits, temperature=0.05, generator=torch.Generator().manual_seed(0))
    hot = head.sample(logits, temperature=5.0, generator=torch.Generator().manual_seed(0))
    assert (cold == 1).float().mean() > 0.95 > (hot == 1).float().mean()


@pytest.mark.parametrize(
    "head", [Categorical(4), Bernoulli(3), Gaussian(2, std=0.5), Gaussian(2, bounded=True), GaussianMixture(3, 4)]
)
def test_a_head_is_rebuilt_from_its_config(head):
    clone = build(head.config)
    assert type(clone) is type(head) and clone.config == head.config and clone.param_dim == head.param_dim


def test_bernoulli_nll_is_binary_cross_entropy_summed_over_pixels():
    torch.manual_seed(0)
    logits, x = torch.randn(2, 3, 28), torch.randint(0, 2, (2, 3, 28)).float()
    expected = -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)
    assert torch.allclose(Bernoulli(28).nll(logits, x), expected, atol=1e-5)
    assert set(Bernoulli(28).sample(logits[:, 0]).unique().tolist()) <= {0.0, 1.0}


def test_fixed_std_gaussian_is_scaled_mse_plus_a_constant():
    torch.manual_seed(0)
    head = Gaussian(5, std=0.5, bounded=True)
    params, x = torch.randn(4, 2, 5), torch.rand(4, 2, 5)
    mse = (x - torch.sigmoid(params)).pow(2).sum(-1)
    constant = 5 * (math.log(0.5) + 0.5 * math.log(2 * math.pi))
    assert torch.allclose(head.nll(params, x), mse / (2 * 0.25) + constant, atol=1e-5)
    assert head.param_dim == 5


def test_bounded_learned_std_gaussian_matches_torch_normal():
    torch.manual_seed(0)
    head = Gaussian(3, bounded=True)
    params, x = torch.randn(2, 4, 6), torch.rand(2, 4, 3)
    mean, std = torch.sigmoid(params[..., :3]), F.softplus(params[..., 3:]) + head.min_std
    expected = -torch.distributions.Normal(mean, std).log_prob(x).sum(-1)
    assert head.param_dim == 6 and torch.allclose(head.nll(params, x), expected, atol=1e-5)
    assert ((head.sample(params[:, 0]) >= 0) & (head.sample(params[:, 0]) <= 1)).all()


def test_invalid_gaussian_std_and_width_are_one_line():
    with pytest.raises(ValueError, match="model.likelihood.std must be > 0"):
        Gaussian(28, std=0.0)
    with pytest.raises(ValueError, match="x_dim must be a positive integer, got 0"):
        Bernoulli(0)


def test_unbounded_gaussian_has_an_identity_mean_and_unclamped_samples():
    torch.manual_seed(0)
    head = Gaussian(3)
    params, x = 5 * torch.randn(2, 4, 6), 5 * torch.randn(2, 4, 3)
    mean, std = params[..., :3], F.softplus(params[..., 3:]) + head.min_std
    expected = -torch.distributions.Normal(mean, std).log_prob(x).sum(-1)
    assert torch.allclose(head.nll(params, x), expected, atol=1e-4)
    assert torch.equal(head.mean(params), mean)
    draws = head.sample(params[:, 0].repeat(50, 1), generator=torch.Generator().manual_seed(0))
    assert draws.min() < 0 and draws.max() > 1


def reference_mixture(head: GaussianMixture, params: torch.Tensor) -> torch.distributions.MixtureSameFamily:
    k, d = head.components, head.x_dim
    logits, means, raw = params.split([k, k * d, k * d], -1)
    shape = (*params.shape[:-1], k, d)
    stds = F.softplus(raw.reshape(shape)) + head.min_std
    components = torch.distributions.Independent(torch.distributions.Normal(means.reshape(shape), stds), 1)
    return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=logits), components)


def test_mixture_nll_matches_torch_mixture_same_family():
    torch.manual_seed(0)
    head = GaussianMixture(4, components=3)
    params, x = 2 * torch.randn(2, 5, head.param_dim), 2 * torch.randn(2, 5, 4)
    expected = -reference_mixture(head, params).log_prob(x)
    assert head.param_dim == 3 * (1 + 2 * 4)
    assert torch.allclose(head.nll(params, x), expected, atol=1e-4)
    assert torch.allclose(head.mean(params), reference_mixture(head, params).mean, atol=1e-5)


def test_one_component_mixture_is_the_gaussian_head():
    torch.manual_seed(0)
    mixture, gaussian = GaussianMixture(3, components=1), Gaussian(3)
    params, x = torch.randn(2, 4, 7), torch.randn(2, 4, 3)  # one logit, then mean and raw std as the Gaussian's
    assert torch.allclose(mixture.nll(params, x), gaussian.nll(params[..., 1:], x), atol=1e-5)


def test_mixture_samples_have_the_mixture_moments_and_temperature_sharpens_them():
    head = GaussianMixture(1, components=2, min_std=1e-6)
    # weights 0.25 / 0.75, means -2 / +2, stds 0.5 / 1.0 (softplus inverted)
    raw = lambda s: math.log(math.expm1(s))
    params = torch.tensor([[math.log(0.25), math.log(0.75), -2.0, 2.0, raw(0.5), raw(1.0)]]).repeat(40000, 1)
    draws = head.sample(params, generator=torch.Generator().manual_seed(0)).squeeze(-1)
    mean = 0.25 * -2 + 0.75 * 2
    variance = 0.25 * (0.25 + 4) + 0.75 * (1 + 4) - mean**2
    assert abs(draws.mean() - mean) < 0.03 and abs(draws.var() - variance) < 0.08
    cold = head.sample(params, temperature=0.0).squeeze(-1)
    assert torch.equal(cold, torch.full_like(cold, 2.0))  # the likelier component's mean


def test_invalid_mixture_size_is_one_line():
    with pytest.raises(ValueError, match="components must be a whole number >= 1, got 0"):
        GaussianMixture(3, components=0)
