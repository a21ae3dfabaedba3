import pytest
import torch

from vrnn_lightning.models import RNN, Categorical, build

SMALL = dict(h_dim=16, x_feat_dim=8, hidden_dim=12, mlp_layers=2)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_rnn_baseline_has_zero_kl_and_an_exact_nll(rnn):
    torch.manual_seed(0)
    model = RNN(Categorical(7), rnn=rnn, **SMALL)
    x = torch.randint(0, 7, (3, 5))
    out = model(x)
    assert out.recon.shape == out.kl.shape == (3, 5) and torch.equal(out.kl, torch.zeros(3, 5))
    assert out.posterior is None and torch.allclose(out.log_weight(), -out.recon.sum(1))
    out.recon.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_rnn_step_t_reads_only_earlier_inputs():
    torch.manual_seed(0)
    model = RNN(Categorical(7), **SMALL)
    x = torch.randint(0, 7, (2, 6))
    changed = x.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 7
    a, b = model(x).recon, model(changed).recon
    assert torch.equal(a[:, :3], b[:, :3]) and not torch.equal(a[:, 4], b[:, 4])


def test_rnn_generation_is_seeded_and_its_config_rebuilds_it():
    torch.manual_seed(0)
    model = RNN(Categorical(7), **SMALL).eval()
    prime = torch.randint(0, 7, (2, 3))
    a = model.generate(12, prime=prime, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 12) and torch.equal(
        a, model.generate(12, prime=prime, generator=torch.Generator().manual_seed(1))
    )
    clone = build(model.config)
    clone.load_state_dict(model.state_dict())


def test_rnn_invalid_size_is_one_line():
    with pytest.raises(ValueError, match="model.h_dim must be a whole number >= 1, got 0"):
        RNN(Categorical(7), **{**SMALL, "h_dim": 0})
