import pytest
import torch

from vrnn_lightning.models import VRNN, Categorical, build
from vrnn_lightning.models.base import mlp

SMALL = dict(h_dim=16, z_dim=4, x_feat_dim=8, z_feat_dim=8, hidden_dim=12, mlp_layers=2)


def small_vrnn(rnn: str = "gru", **overrides) -> VRNN:
    torch.manual_seed(0)
    return VRNN(Categorical(7), rnn=rnn, **{**SMALL, **overrides})


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_forward_returns_per_step_terms(rnn):
    model = small_vrnn(rnn)
    out = model(torch.randint(0, 7, (3, 5)))
    assert out.recon.shape == out.kl.shape == (3, 5)
    assert out.posterior.mean.shape == out.prior.std.shape == (3, 5, 4)
    assert torch.isfinite(out.recon).all() and (out.kl >= 0).all()


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_gradients_reach_every_parameter(rnn):
    model = small_vrnn(rnn)
    out = model(torch.randint(0, 7, (3, 5)))
    (out.recon + out.kl).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_gradient_flows_through_the_reparameterised_sample():
    """The recon term alone must train the encoder: only possible through z = mu + sigma * eps."""
    model = small_vrnn()
    model(torch.randint(0, 7, (3, 5))).recon.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.posterior.parameters())


def test_fixed_noise_makes_forward_deterministic_and_noise_matters():
    model = small_vrnn()
    x = torch.randint(0, 7, (2, 6))
    noise = torch.randn(2, 6, 4)
    a, b = model(x, noise=noise), model(x, noise=noise)
    assert torch.equal(a.recon, b.recon) and torch.equal(a.kl, b.kl)
    assert not torch.equal(model(x, noise=noise + 1).recon, a.recon)


def test_step_t_depends_on_no_later_input():
    model = small_vrnn()
    x = torch.randint(0, 7, (2, 8))
    noise = torch.randn(2, 8, 4)
    changed = x.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 7
    a, b = model(x, noise=noise), model(changed, noise=noise)
    assert torch.equal(a.recon[:, :5], b.recon[:, :5]) and torch.equal(a.kl[:, :5], b.kl[:, :5])
    assert not torch.equal(a.recon[:, 5], b.recon[:, 5])


def test_first_step_matches_the_equations_by_hand():
    """t = 0 with h_0 = 0: encoder, prior and decoder read a zero state."""
    model = small_vrnn()
    x, noise = torch.randint(0, 7, (2, 3)), torch.randn(2, 3, 4)
    out = model(x, noise=noise)
    h0 = torch.zeros(2, 16)
    fx = model.phi_x(torch.nn.functional.one_hot(x[:, 0], 7).float())
    encoder = model.posterior
    q_mean, q_raw = encoder.out(encoder.trunk(torch.cat([fx, h0], -1))).chunk(2, -1)
    q_std = torch.nn.functional.softplus(q_raw) + encoder.min_std
    z = q_mean + q_std * noise[:, 0]
    logits = model.emission.out(model.emission.trunk(torch.cat([model.phi_z(z), h0], -1)))
    recon = torch.nn.functional.cross_entropy(logits, x[:, 0], reduction="none")
    assert torch.allclose(out.recon[:, 0], recon, atol=1e-6)
    assert torch.allclose(out.posterior.mean[:, 0], q_mean, atol=1e-6)


def test_smoothing_posterior_reads_the_future_and_generation_runs():
    model = small_vrnn(posterior="smoothing")
    x, noise = torch.randint(0, 7, (2, 8)), torch.randn(2, 8, 4)
    changed = x.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 7
    a, b = model(x, noise=noise), model(changed, noise=noise)
    assert not torch.equal(a.posterior.mean[:, 2], b.posterior.mean[:, 2])  # q(z_2) reads x_6
    out = model.eval().generate(5, prime=x[:, :3], generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 5)


def test_generate_is_reproducible_under_a_seed_and_respects_shape():
    model = small_vrnn().eval()
    a = model.generate(20, batch_size=3, generator=torch.Generator().manual_seed(5))
    b = model.generate(20, batch_size=3, generator=torch.Generator().manual_seed(5))
    c = model.generate(20, batch_size=3, generator=torch.Generator().manual_seed(6))
    assert a.shape == (3, 20) and a.dtype == torch.long
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert ((a >= 0) & (a < 7)).all()


@pytest.mark.slow
def test_generate_continues_the_prime_of_a_learned_cycle():
    """Trained on the cycle 0,1,...,6, the model must pick up the phase of whatever prime it reads."""
    model = small_vrnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    cycle = torch.arange(7).repeat(4)
    for _ in range(300):
        starts = torch.randint(0, 7, (16, 1))
        out = model(cycle[starts + torch.arange(10)])
        optimizer.zero_grad()
        (out.recon + out.kl).mean().backward()
        optimizer.step()
    model.eval()
    prime = torch.tensor([[0, 1, 2], [4, 5, 6]])
    generated = model.generate(8, prime=prime, temperature=0, generator=torch.Generator().manual_seed(0))
    assert generated.tolist() == [[3, 4, 5, 6, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 0]]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(z_dim=0), "model.z_dim must be a whole number >= 1, got 0"),
        (dict(h_dim=-3), "model.h_dim must be a whole number >= 1, got -3"),
        (dict(mlp_layers=1.5), "model.mlp_layers must be a whole number >= 1, got 1.5"),
        (dict(rnn="transformer"), "model.rnn must be 'gru' or 'lstm'"),
        (dict(min_std=0.0), "model.min_std must be > 0"),
        (dict(posterior="future"), "model.posterior must be 'filtering' or 'smoothing'"),
    ],
)
def test_invalid_sizes_fail_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        VRNN(Categorical(7), **{**SMALL, **overrides})


def test_config_rebuilds_the_same_architecture():
    model = small_vrnn("lstm")
    clone = build(model.config)
    assert isinstance(clone, VRNN) and isinstance(clone.likelihood, Categorical) and clone.likelihood.x_dim == 7
    clone.load_state_dict(model.state_dict())
    assert sum(p.numel() for p in clone.parameters()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("where", ["posterior.trunk", "phi_z"])
def test_a_layer_the_fused_loop_does_not_handle_is_refused_at_construction(where, monkeypatch):
    """A LayerNorm slipped into an in-loop MLP would silently change the fused loop's maths."""

    def mlp_with_norm(in_dim: int, width: int, layers: int) -> torch.nn.Sequential:
        return torch.nn.Sequential(*mlp(in_dim, width, layers), torch.nn.LayerNorm(width))

    import vrnn_lightning.models.vrnn as vrnn_module

    calls = {"posterior.trunk": 2, "phi_z": 1}[where]  # the order vrnn.py builds MLPs in: phi_x, phi_z, posterior
    built = iter(range(10))
    monkeypatch.setattr(vrnn_module, "mlp", lambda *a: mlp_with_norm(*a) if next(built) == calls else mlp(*a))
    with pytest.raises(
        ValueError, match=f"model.{where} holds Linear, ReLU, Linear, ReLU, LayerNorm; the time-parallel"
    ):
        small_vrnn()


@pytest.mark.parametrize("posterior", ["filtering", "smoothing"])
def test_padding_changes_nothing_and_a_batch_of_one_equals_it_alone(posterior):
    """Right-padded with garbage: the real steps' losses and the gradients are those of the unpadded pieces."""
    model = small_vrnn(posterior=posterior).double()
    pieces = [torch.randint(0, 7, (n,)) for n in (3, 6, 4)]
    noise = torch.randn(3, 6, 4, dtype=torch.float64)
    x = torch.stack([torch.cat([p, torch.randint(0, 7, (6 - len(p),))]) for p in pieces])
    mask = torch.stack([torch.arange(6) < len(p) for p in pieces]).double()
    out = model(x, mask, noise)
    assert (out.recon[mask == 0] == 0).all() and (out.kl[mask == 0] == 0).all()
    (out.recon + out.kl).sum().backward()
    batch_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    for i, piece in enumerate(pieces):
        alone = model(piece.unsqueeze(0), noise=noise[i : i + 1, : len(piece)])
        assert torch.allclose(alone.recon[0], out.recon[i, : len(piece)], atol=1e-10)
        assert torch.allclose(alone.log_weight(), out.log_weight()[i : i + 1], atol=1e-10)
        (alone.recon + alone.kl).sum().backward()
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, batch_grads[name], atol=1e-10), name


@pytest.mark.parametrize("mode", ["fastest", 0])
def test_an_unknown_compile_mode_is_named(mode):
    with pytest.raises(ValueError, match="model.compile must be true, false or one of"):
        VRNN(Categorical(5), compile=mode)
