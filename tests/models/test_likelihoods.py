import math

import pytest
import torch
import torch.nn.functional as F

from vrnn_lightning.models import Bernoulli, Categorical, Gaussian, build


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


@pytest.mark.parametrize("head", [Categorical(4), Bernoulli(3), Gaussian(2, std=0.5)])
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
    head = Gaussian(5, std=0.5)
    params, x = torch.randn(4, 2, 5), torch.rand(4, 2, 5)
    mse = (x - torch.sigmoid(params)).pow(2).sum(-1)
    constant = 5 * (math.log(0.5) + 0.5 * math.log(2 * math.pi))
    assert torch.allclose(head.nll(params, x), mse / (2 * 0.25) + constant, atol=1e-5)
    assert head.param_dim == 5


def test_learned_std_gaussian_matches_torch_normal():
    torch.manual_seed(0)
    head = Gaussian(3)
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
