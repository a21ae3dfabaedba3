"""Frames through convolutions: every model of the family reads, scores, bounds and generates frames through the
frame head alone, and a padded batch of videos scores each video as it scores it alone."""

import inspect

import pytest
import torch

from vrnn_lightning.models import DMM, RNN, SRNN, STORN, VRNN, ConvFrames
from vrnn_lightning.objectives import FIVO, IWAE

FAMILY = [VRNN, SRNN, DMM, STORN, RNN]
SIZES = {"h_dim": 16, "z_dim": 4, "x_feat_dim": 16, "z_feat_dim": 8, "hidden_dim": 16}


def tiny(model_class, shape=(1, 8, 8), pixels="bernoulli"):
    settings = {k: v for k, v in SIZES.items() if k in inspect.signature(model_class).parameters}
    return model_class(ConvFrames(list(shape), pixels=pixels, channels=4, feat_dim=12), **settings)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 12), (1, 28, 28), (1, 4, 4)])
@pytest.mark.parametrize("pixels", ["bernoulli", "gaussian"])
def test_the_head_keeps_frame_shapes(shape, pixels):
    head = ConvFrames(list(shape), pixels=pixels, channels=4, feat_dim=12)
    x = torch.rand(2, 3, *shape).round()
    assert head.features(x, torch.float32).shape == (2, 3, 12)
    params = torch.randn(2, 3, 12)
    assert head.nll(params, x).shape == (2, 3)
    assert head.sample(params[:, 0]).shape == (2, *shape) and head.mean(params).shape == (2, 3, *shape)
    assert head.sample(params[:, 0], temperature=0).shape == (2, *shape)


@pytest.mark.parametrize("model_class", FAMILY)
def test_every_model_trains_bounds_and_generates_on_frames(model_class):
    torch.manual_seed(0)
    model = tiny(model_class)
    x = torch.rand(3, 6, 1, 8, 8).round()
    mask = torch.ones(3, 6)
    mask[0, 4:] = 0
    out = model(x, mask)
    (out.recon + out.kl).sum().backward()
    assert model.likelihood.encoder.out.weight.grad.abs().sum() > 0  # the conv encoder learns
    assert model.likelihood.decoder.inp[0].weight.grad.abs().sum() > 0  # and so does the decoder
    assert out.recon[0, 4:].abs().sum() == 0
    assert model.generate(3, prime=x[:, :2]).shape == (3, 3, 1, 8, 8)
    if model.latent_dim:
        elbo = -(out.recon + out.kl).sum(1)
        for objective in (IWAE(samples=3), FIVO(samples=3)):
            bound = objective.bound(model, x, mask)
            assert bound.shape == (3,) and torch.isfinite(bound).all()
        assert torch.isfinite(elbo).all()


@pytest.mark.parametrize("model_class", FAMILY)
def test_a_padded_batch_scores_each_video_as_alone(model_class):
    torch.manual_seed(0)
    model = tiny(model_class).eval()
    short, long = torch.rand(1, 3, 1, 8, 8).round(), torch.rand(1, 6, 1, 8, 8).round()
    padded = torch.zeros(2, 6, 1, 8, 8)
    padded[0, :3], padded[1] = short[0], long[0]
    mask = torch.tensor([[1.0] * 3 + [0.0] * 3, [1.0] * 6])
    noise = torch.randn(2, 6, model.latent_dim) if model.latent_dim else None
    together = model(padded, mask, noise=noise)
    alone = [
        model(short, noise=None if noise is None else noise[:1, :3]),
        model(long, noise=None if noise is None else noise[1:]),
    ]
    for row, out in enumerate(alone):
        scored = (together.recon + together.kl)[row].sum()
        assert torch.allclose(scored, (out.recon + out.kl).sum(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("setting", [{"pixels": "poisson"}, {"channels": 0}, {"x_dim": [8, 8]}, {"x_dim": 64}])
def test_bad_frame_settings_are_refused_in_one_line(setting):
    with pytest.raises(ValueError, match="model/likelihood=frames|model.likelihood"):
        ConvFrames(**{"x_dim": [1, 8, 8], **setting})
