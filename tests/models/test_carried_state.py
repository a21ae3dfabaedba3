"""A stream read in windows with the state carried equals the stream read whole (VRNN and RNN, GRU and LSTM)."""

import pytest
import torch

from vrnn_lightning.models import RNN, VRNN, Categorical


def make(kind: str, rnn: str):
    torch.manual_seed(0)
    sizes = dict(h_dim=12, x_feat_dim=8, hidden_dim=10, mlp_layers=1, rnn=rnn)
    if kind == "vrnn":
        return VRNN(Categorical(5), z_dim=3, z_feat_dim=6, **sizes).double()
    return RNN(Categorical(5), **sizes).double()


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("kind", ["vrnn", "rnn"])
def test_windows_with_carried_state_equal_the_whole_stream(kind, rnn):
    model = make(kind, rnn)
    x = torch.randint(0, 5, (3, 20))
    noise = torch.randn(3, 20, 3, dtype=torch.float64)
    whole = model(x, noise=noise)
    first = model(x[:, :8], noise=noise[:, :8])
    second = model(x[:, 8:], noise=noise[:, 8:], state=first.state)
    assert torch.allclose(torch.cat([first.recon, second.recon], 1), whole.recon, atol=1e-10)
    assert torch.allclose(torch.cat([first.kl, second.kl], 1), whole.kl, atol=1e-10)
    final, expected = second.state, whole.state
    for got, want in zip(
        final if isinstance(final, tuple) else (final,),
        expected if isinstance(expected, tuple) else (expected,),
        strict=True,
    ):
        assert got.shape == (3, 12) and torch.allclose(got, want, atol=1e-10)
    fresh = model(x[:, 8:], noise=noise[:, 8:])
    assert not torch.allclose(fresh.recon, second.recon)  # the carried state matters


def test_future_prediction_costs_z_and_leaves_the_backward_state_alone():
    torch.manual_seed(0)
    model = VRNN(
        Categorical(5),
        h_dim=12,
        z_dim=3,
        x_feat_dim=8,
        z_feat_dim=6,
        hidden_dim=10,
        mlp_layers=1,
        posterior="smoothing",
        future_prediction=True,
    )
    x, mask = torch.randint(0, 5, (2, 9)), torch.ones(2, 9)
    mask[1, 6:] = 0
    out = model(x, mask)
    assert out.auxiliary.shape == (2, 9) and (out.auxiliary[1, 6:] == 0).all() and (out.auxiliary[0] > 0).all()
    out.auxiliary.sum().backward()
    assert model.posterior.out.weight.grad.abs().sum() > 0  # z_t learns to predict, through its posterior
    target = torch.randn(2, 9, 12, requires_grad=True)
    model.future_predictor(torch.randn(2, 9, 3), target).sum().backward()
    assert target.grad is None  # b_t as the target gets no gradient: it cannot shrink to make the task easy
    with pytest.raises(ValueError, match="set model.posterior=smoothing too"):
        VRNN(Categorical(5), future_prediction=True)
    assert VRNN(Categorical(5), h_dim=8, z_dim=2, x_feat_dim=4, z_feat_dim=4, hidden_dim=4)(x).auxiliary is None
