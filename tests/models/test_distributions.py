import torch
from torch.distributions import Normal, kl_divergence

from vrnn_lightning.models import DiagonalGaussian


def random_gaussian(shape: tuple[int, ...]) -> DiagonalGaussian:
    return DiagonalGaussian(torch.randn(shape, dtype=torch.float64), torch.rand(shape, dtype=torch.float64) + 0.1)


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    q, p = random_gaussian((4, 7, 5)), random_gaussian((4, 7, 5))
    expected = kl_divergence(Normal(q.mean, q.std), Normal(p.mean, p.std)).sum(-1)
    assert torch.allclose(q.kl(p), expected, atol=1e-12)
    assert torch.allclose(q.kl_per_dim(p).sum(-1), expected, atol=1e-12)


def test_kl_of_a_gaussian_with_itself_is_zero():
    q = random_gaussian((3, 4))
    assert torch.allclose(q.kl(q), torch.zeros(3, dtype=torch.float64))


def test_log_prob_matches_torch_distributions():
    torch.manual_seed(1)
    q = random_gaussian((6, 3))
    value = torch.randn(6, 3, dtype=torch.float64)
    assert torch.allclose(q.log_prob(value), Normal(q.mean, q.std).log_prob(value).sum(-1))


def test_rsample_is_mean_plus_std_times_noise_and_carries_gradients():
    mean = torch.zeros(2, 3, requires_grad=True)
    std = torch.full((2, 3), 2.0, requires_grad=True)
    noise = torch.ones(2, 3)
    sample = DiagonalGaussian(mean, std).rsample(noise)
    assert torch.equal(sample, torch.full((2, 3), 2.0))
    sample.sum().backward()
    assert torch.equal(mean.grad, torch.ones(2, 3)) and torch.equal(std.grad, noise)


def test_softplus_std_has_a_floor_so_extreme_params_stay_finite():
    params = torch.tensor([[0.0, -1e4], [0.0, 1e4]])
    gaussian = DiagonalGaussian.from_params(params, min_std=1e-4)
    assert gaussian.std[0, 0] >= 1e-4
    assert torch.isfinite(gaussian.kl(DiagonalGaussian(torch.zeros(2, 1), torch.ones(2, 1)))).all()
