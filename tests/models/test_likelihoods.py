import pytest
import torch
import torch.nn.functional as F

from vrnn_lightning.models import Categorical, make_likelihood


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


def test_unknown_likelihood_names_the_choices():
    with pytest.raises(ValueError, match="model.likelihood='poisson' is unknown; choose one of"):
        make_likelihood("poisson", 4)
