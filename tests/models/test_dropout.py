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


def dropout_masks(model) -> list[tuple[torch.Tensor, int]]:
    """Every dropout layer's kept-feature pattern (rows, ...) as the pass runs, with the rows it saw."""
    seen = []

    def record(layer, inputs, output):
        seen.append((torch.stack([output != 0, inputs[0] != 0]), output.shape[0]))  # kept, and readable there

    for layer in model.modules():
        if isinstance(layer, torch.nn.Dropout):
            layer.register_forward_hook(record)
    return seen


def assert_shared_within_sequences(seen, sequences: int, k: int) -> None:
    grouped = [record for record, rows in seen if rows == sequences * k]
    assert grouped, "no layer saw K rows per sequence"
    differ = False
    for kept, nonzero in grouped:
        kept, nonzero = (t.view(sequences, k, *t.shape[1:]) for t in (kept, nonzero))
        readable = nonzero.all(1, keepdim=True).expand_as(kept)  # a zero input hides whether it was dropped
        assert readable.any()
        assert (kept == kept[:, :1])[readable].all()  # the K samples of a sequence: one mask
        differ |= bool((kept[:1] != kept[1:2])[readable[:1] & readable[1:2]].any())
    assert differ  # and still dropout: the sequences' masks differ


@pytest.mark.parametrize("name", ["vrnn", "srnn", "dmm", "storn"])
def test_particles_and_trajectories_of_one_sequence_share_its_dropout_masks_in_training(name):
    from vrnn_lightning.models import DMM, SRNN, STORN
    from vrnn_lightning.objectives import FIVO, IWAE

    torch.manual_seed(0)
    sizes = dict(h_dim=8, z_dim=2, x_feat_dim=8, hidden_dim=8, dropout=0.5)
    model = {
        "vrnn": lambda: VRNN(Bernoulli(6), z_feat_dim=8, **sizes),
        "srnn": lambda: SRNN(Bernoulli(6), **sizes),
        "dmm": lambda: DMM(Bernoulli(6), **sizes),
        "storn": lambda: STORN(Bernoulli(6), z_feat_dim=8, **sizes),
    }[name]().train()
    x, mask = torch.randint(0, 2, (3, 7, 6)).float(), torch.ones(3, 7)
    for objective in (FIVO(samples=4), IWAE(samples=4)):
        seen = dropout_masks(model)
        bound = objective.bound(model, x, mask)
        assert bound.shape == (3,) and torch.isfinite(bound).all()
        assert_shared_within_sequences(seen, sequences=3, k=4)
        for layer in model.modules():
            layer._forward_hooks.clear()
