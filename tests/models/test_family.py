"""The sequential-VAE family behind the one contract: SRNN, DMM and STORN (the VRNN has its own tests).

Every model: padding exact (a padded batch scores each sequence as it is alone, the backward RNNs starting at
each sequence's own end), carried state equal to one long pass where the posterior runs forward only, gradients
reaching every parameter, the config rebuilding it, generation with and without a prime, training that learns,
and its own settings checked in one line."""

import pytest
import torch

from vrnn_lightning.models import DMM, SRNN, STORN, VRNN, Bernoulli, Categorical, build
from vrnn_lightning.models.blocks import reverse_within_lengths
from vrnn_lightning.objectives.bounds import iw_bound

SIZES = dict(h_dim=10, z_dim=3, x_feat_dim=6, hidden_dim=9)
VARIANTS = {
    "srnn": lambda head, **o: SRNN(head, **SIZES, **o),
    "srnn_filtering": lambda head, **o: SRNN(head, **SIZES, posterior="filtering", **o),
    "srnn_no_resq_lstm": lambda head, **o: SRNN(head, **SIZES, resq=False, rnn="lstm", **o),
    "dmm": lambda head, **o: DMM(head, **SIZES, **o),
    "dmm_aug_filtering": lambda head, **o: DMM(head, **SIZES, augmented=True, posterior="filtering", **o),
    "storn": lambda head, **o: STORN(head, **SIZES, z_feat_dim=5, **o),
    "storn_lstm": lambda head, **o: STORN(head, **SIZES, z_feat_dim=5, rnn="lstm", **o),
}
FORWARD_ONLY = ["srnn_filtering", "dmm_aug_filtering", "storn", "storn_lstm"]  # no posterior reads the future


def make(name: str, head=None, **options):
    torch.manual_seed(0)
    return VARIANTS[name](head or Bernoulli(5), **options)


def music(batch: int = 3, steps: int = 9) -> torch.Tensor:
    return torch.randint(0, 2, (batch, steps, 5)).float()


@pytest.mark.parametrize("name", VARIANTS)
def test_a_padded_batch_scores_each_sequence_as_it_scores_alone(name):
    model = make(name)
    x, noise = music(3, 9), torch.randn(3, 9, 3)
    lengths = [9, 6, 2]
    mask = (torch.arange(9) < torch.tensor(lengths)[:, None]).float()
    x_junk = torch.where(mask.bool().unsqueeze(-1), x, 1 - x)  # padding holds other values: it must not matter
    together = model(x_junk, mask, noise)
    for row, length in enumerate(lengths):
        alone = model(x[row : row + 1, :length], noise=noise[row : row + 1, :length])
        assert torch.allclose(together.recon[row, :length], alone.recon[0], atol=1e-5), row
        assert torch.allclose(together.kl[row, :length], alone.kl[0], atol=1e-5), row
        assert torch.equal(together.recon[row, length:], torch.zeros(9 - length))
        assert torch.equal(together.kl[row, length:], torch.zeros(9 - length))
        weight = together.log_weight()[row]
        assert torch.allclose(weight, alone.log_weight()[0], atol=1e-4)


VARIANTS_AND_VRNN = {
    **VARIANTS,
    "vrnn": lambda head, **o: VRNN(head, **SIZES, z_feat_dim=5, **o),
    "vrnn_smoothing_lstm": lambda head, **o: VRNN(head, **SIZES, z_feat_dim=5, posterior="smoothing", rnn="lstm"),
}


@pytest.mark.parametrize("name", VARIANTS_AND_VRNN)
def test_k_trajectories_per_sequence_equal_the_same_draws_over_k_copies(name, monkeypatch):
    """`samples=K` computes what reads no z once per sequence and draws K trajectories from it: every output
    (terms, posterior, prior, z, carried state) as K copies of each sequence with the same noise would give,
    padding included; and the IW bound takes that path."""
    torch.manual_seed(0)
    model = VARIANTS_AND_VRNN[name](Bernoulli(5)).eval()
    x, k = music(3, 7), 4
    mask = (torch.arange(7) < torch.tensor([7, 5, 2])[:, None]).float()
    noise = torch.randn(3 * k, 7, 3)
    shared = model(x, mask, noise, samples=k)
    copies = model(x.repeat_interleave(k, 0), mask.repeat_interleave(k, 0), noise)
    for got, want in [(shared.recon, copies.recon), (shared.kl, copies.kl), (shared.z, copies.z)]:
        assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(shared.posterior.std, copies.posterior.std, atol=1e-5)
    assert torch.allclose(shared.prior.mean, copies.prior.mean, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(shared.state, copies.state, strict=True))
    calls = []
    monkeypatch.setattr(model, "forward", lambda *a, samples=1, **kw: calls.append(samples) or shared)
    iw_bound(model, x, mask, k)
    assert calls == [k]
    with pytest.raises(ValueError, match="pass no state"):
        VARIANTS_AND_VRNN[name](Bernoulli(5))(x, mask, noise, state=copies.state, samples=k)


def test_the_backward_reading_reverses_each_sequence_within_its_own_length():
    x = torch.arange(12.0).view(2, 6, 1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]).float()
    reversed_x = reverse_within_lengths(x, mask)
    assert reversed_x[:, :, 0].tolist() == [[5, 4, 3, 2, 1, 0], [8, 7, 6, 9, 10, 11]]
    assert torch.equal(reverse_within_lengths(reversed_x, mask), x)


@pytest.mark.parametrize("name", FORWARD_ONLY)
def test_two_windows_with_the_state_carried_equal_one_pass(name):
    model = make(name, Categorical(7))
    x, noise = torch.randint(0, 7, (2, 10)), torch.randn(2, 10, 3)
    whole = model(x, noise=noise)
    first = model(x[:, :4], noise=noise[:, :4])
    second = model(x[:, 4:], noise=noise[:, 4:], state=first.state)
    assert torch.allclose(torch.cat([first.recon, second.recon], 1), whole.recon, atol=1e-5)
    assert torch.allclose(torch.cat([first.kl, second.kl], 1), whole.kl, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(second.state, whole.state, strict=True))


@pytest.mark.parametrize("name", VARIANTS)
def test_the_loss_reaches_every_parameter_and_the_config_rebuilds_the_model(name):
    model = make(name, Bernoulli(5), dropout=0.2)
    out = model(music(), noise=torch.randn(3, 9, 3))
    (out.recon.sum() + out.kl.sum()).backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None]  # (a ReLU may zero a gradient)
    assert not unreached
    copy = build(model.config)
    assert type(copy) is type(model) and copy.config == model.config
    copy.load_state_dict(model.state_dict())
    model.eval(), copy.eval()
    x, noise = music(2, 5), torch.randn(2, 5, 3)
    assert torch.equal(copy(x, noise=noise).recon, model(x, noise=noise).recon)
    assert model.latent_dim == 3 and out.posterior.mean.shape == out.prior.std.shape == out.z.shape == (3, 9, 3)


@pytest.mark.parametrize("name", VARIANTS)
def test_generation_from_the_prior_and_after_a_prime(name):
    model = make(name, Categorical(7)).eval()
    samples = model.generate(12, batch_size=3, generator=torch.Generator().manual_seed(1))
    again = model.generate(12, batch_size=3, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 12) and samples.dtype == torch.long and torch.equal(samples, again)
    assert model.generate(5, prime=torch.randint(0, 7, (2, 4))).shape == (2, 5)
    greedy = model.generate(6, batch_size=2, temperature=0.0)
    assert greedy.shape == (2, 6) and greedy.min() >= 0 and greedy.max() < 7


@pytest.mark.slow  # 300 updates each
@pytest.mark.parametrize("name", ["srnn", "dmm", "storn"])
def test_training_learns_a_repeating_pattern(name):
    """With the KL annealed over the first 150 updates, as the DMM's paper does (without it the DMM settles on
    the uniform guess, its latents unused, a known local optimum of the family)."""
    model = make(name, Categorical(4))
    x = torch.tensor([[0, 1, 2, 3] * 4] * 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for update in range(300):
        out = model(x)
        loss = (out.recon.sum() + min(1.0, update / 150) * out.kl.sum()) / x.numel()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    bound = (out.recon.sum() + out.kl.sum()).item() / x.numel()
    assert bound < 0.5  # nats per step; log 4 = 1.39 is the uniform guess


@pytest.mark.parametrize(
    "build_model, message",
    [
        (lambda: SRNN(Bernoulli(5), z_dim=0), "model.z_dim must be a whole number >= 1, got 0"),
        (lambda: SRNN(Bernoulli(5), posterior="future"), "model.posterior must be 'smoothing' or 'filtering'"),
        (lambda: SRNN(Bernoulli(5), resq="yes"), "model.resq must be true or false, got 'yes'"),
        (lambda: DMM(Bernoulli(5), augmented=1), "model.augmented must be true or false, got 1"),
        (lambda: DMM(Bernoulli(5), rnn="transformer"), "model.rnn must be 'gru' or 'lstm'"),
        (lambda: STORN(Bernoulli(5), posterior="smoothing"), "model.posterior must be 'filtering', got 'smoothing'"),
        (lambda: STORN(Bernoulli(5), min_std=0), "model.min_std must be > 0"),
        (lambda: DMM(Bernoulli(5), dropout=1.0), "model.dropout must be a number from 0 to below 1"),
        (lambda: VRNN(Bernoulli(5), future_prediction=True), "set model.posterior=smoothing too"),
    ],
)
def test_each_model_checks_its_own_settings_in_one_line(build_model, message):
    with pytest.raises(ValueError, match=message):
        build_model()
