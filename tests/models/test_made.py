"""The autoregressive piano-key head: a normalised distribution whose key d sees only the keys below it."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from vrnn_lightning.data.base import Batch
from vrnn_lightning.models import MADE, RNN, VRNN, build
from vrnn_lightning.objectives import IWAE
from vrnn_lightning.training.module import SequenceModule


@pytest.fixture
def head() -> MADE:
    torch.manual_seed(0)
    return MADE(5, hidden_dim=9, layers=2)


def test_the_probabilities_of_all_values_sum_to_one(head):
    params = torch.randn(3, 1, head.param_dim)  # three different contexts
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))  # (32, 5)
    total = sum(torch.exp(-head.nll(params, x.expand(3, 1, 5))) for x in every)
    assert torch.allclose(total, torch.ones(3, 1), atol=1e-5)


def test_nll_is_the_product_of_its_conditionals_computed_one_key_at_a_time(head):
    params, x = torch.randn(2, 3, head.param_dim), torch.randint(0, 2, (2, 3, 5)).float()
    log_p = torch.zeros(2, 3)
    for d in range(5):
        seen = torch.cat([x[..., :d], torch.zeros(2, 3, 5 - d)], -1)  # keys >= d hidden from key d
        logit = head.logits(params, seen)[..., d]
        log_p += -F.binary_cross_entropy_with_logits(logit, x[..., d], reduction="none")
    assert torch.allclose(head.nll(params, x), -log_p, atol=1e-5)


def test_key_i_never_sees_keys_at_or_above_it(head):
    params = torch.randn(1, head.param_dim)
    x = torch.randint(0, 2, (1, 5)).float().requires_grad_()
    jacobian = torch.stack([torch.autograd.grad(head.logits(params, x)[0, i], x)[0][0] for i in range(5)])
    assert torch.equal(jacobian.triu() != 0, torch.zeros(5, 5, dtype=torch.bool))  # d logit_i / d x_j, j >= i
    assert (jacobian.tril(-1) != 0).any()  # and it does read the keys below


def test_zero_temperature_sample_is_the_argmax_chain(head):
    params = torch.randn(4, head.param_dim)
    sample = head.sample(params, temperature=0)
    chain = torch.zeros(4, 5)
    for d in range(5):
        chain[:, d] = (head.logits(params, chain)[:, d] > 0).float()
    assert torch.equal(sample, chain)
    conditionals = head.mean(params)
    assert torch.allclose(conditionals, torch.sigmoid(head.logits(params, chain)), atol=1e-6)


def test_samples_follow_the_distribution(head):
    params = torch.randn(1, head.param_dim).expand(4000, -1)
    draws = head.sample(params, generator=torch.Generator().manual_seed(0))
    values, counts = torch.unique(draws, dim=0, return_counts=True)
    expected = torch.exp(-head.nll(params[: len(values)].unsqueeze(1), values.unsqueeze(1))).squeeze(1)
    assert torch.allclose(counts / 4000, expected, atol=0.03)


@pytest.mark.parametrize("model", ["vrnn", "vrnn smoothing", "rnn"])
def test_padding_and_masks_behave_as_for_every_head(model):
    torch.manual_seed(0)
    head = MADE(6, hidden_dim=8)
    sizes = dict(h_dim=8, z_dim=2, x_feat_dim=8, z_feat_dim=8, hidden_dim=8)
    posterior = "smoothing" if "smoothing" in model else "filtering"
    net = VRNN(head, **sizes, posterior=posterior) if model.startswith("vrnn") else RNN(head, 8)
    x, mask = torch.randint(0, 2, (2, 5, 6)).float(), torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2])
    noise = torch.randn(2, 5, net.latent_dim) if net.latent_dim else None
    out = net(x, mask, noise)
    assert (out.recon[1, 3:] == 0).all() and (out.recon[mask.bool()] > 0).all()
    garbage = x.clone()
    garbage[1, 3:] = 1 - garbage[1, 3:]  # what lies past a piece's end changes nothing before it
    assert torch.allclose(net(garbage, mask, noise).recon, out.recon, atol=1e-6)
    assert net.generate(3, batch_size=2).shape == (2, 3, 6)


def test_rebuilt_from_its_config_and_bad_sizes_are_one_line():
    head = MADE(4, hidden_dim=3, layers=2, direct=False)
    assert build(head.config).config == head.config and head.param_dim == 3 + 4
    with pytest.raises(ValueError, match="model.likelihood.hidden_dim must be a whole number >= 1, got 0"):
        MADE(4, hidden_dim=0)


def test_the_vrnn_with_the_head_trains_on_the_importance_weighted_bound():
    torch.manual_seed(0)
    model = VRNN(MADE(6, hidden_dim=8), h_dim=8, z_dim=2, x_feat_dim=8, z_feat_dim=8, hidden_dim=8)
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={}, objective=IWAE(samples=4))
    batch = Batch(torch.randint(0, 2, (3, 5, 6)).float(), torch.ones(3, 5))
    loss, recon, kl = module.objective.training_terms(module, batch)[:3]
    loss.backward()
    elbo = (recon + kl) / batch.mask.sum()  # the K-fold output's own ELBO estimate
    assert torch.isfinite(loss) and loss <= elbo + 1e-5  # the IW bound is at least the average ELBO
    assert all(p.grad is not None for p in model.likelihood.parameters())
