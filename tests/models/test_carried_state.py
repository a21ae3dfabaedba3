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
