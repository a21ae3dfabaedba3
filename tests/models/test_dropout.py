"""Dropout on phi_x and the decoder's input: off by default, active in training only, absent from configs at 0."""

import pytest
import torch

from vrnn_lightning.models import RNN, VRNN, Bernoulli, build


def models(dropout: float) -> list:
    torch.manual_seed(0)
    return [
        VRNN(Bernoulli(6), h_dim=8, z_dim=2, x_feat_dim=8, z_feat_dim=8, hidden_dim=8, dropout=dropout),
        RNN(Bernoulli(6), h_dim=8, x_feat_dim=8, hidden_dim=8, dropout=dropout),
    ]


@pytest.mark.parametrize("index", [0, 1])
def test_dropout_acts_in_training_only_and_keeps_the_parameters(index):
    plain, dropped = models(0.0)[index], models(0.5)[index]
    assert "dropout" not in plain.config and dropped.config["dropout"] == 0.5
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # checkpoints load either way
    dropped.load_state_dict(plain.state_dict())
    x = torch.randint(0, 2, (3, 5, 6)).float()
    noise = torch.randn(3, 5, plain.latent_dim) if plain.latent_dim else None
    plain.eval(), dropped.eval()
    assert torch.allclose(plain(x, noise=noise).recon, dropped(x, noise=noise).recon)
    dropped.train()
    assert not torch.allclose(plain(x, noise=noise).recon, dropped(x, noise=noise).recon)
    assert build(dropped.config).config == dropped.config


def test_a_rate_of_one_is_refused():
    with pytest.raises(ValueError, match="model.dropout must be a number from 0 to below 1, got 1"):
        VRNN(Bernoulli(3), dropout=1)
