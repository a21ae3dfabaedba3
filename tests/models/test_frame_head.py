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


def test_skips_read_each_steps_anchor_and_no_later_frame():
    """a(t) = min(t, seen) - 1: flipping frame j changes the scores of step j itself, and of the steps whose
    anchor it is (j + 1 while j < seen - 1; every later step for the last seen frame), no other."""
    torch.manual_seed(0)
    head, seen, steps = ConvFrames([1, 8, 8], channels=4, feat_dim=12, skips=True, seen=3), 3, 6
    x, params = torch.rand(2, steps, 1, 8, 8).round(), torch.randn(2, steps, 12)
    scored = head.nll(params, x)
    for j in range(steps):
        flipped = x.clone()
        flipped[:, j] = 1 - flipped[:, j]
        changed = (head.nll(params, flipped) - scored).abs().sum(0) > 0
        readers = {j} | ({j + 1} if j < seen - 1 else set(range(seen, steps)) if j == seen - 1 else set())
        assert changed.tolist() == [t in readers for t in range(steps)], j


@pytest.mark.parametrize("steps", [2, 4, 7])
def test_the_anchors_maps_are_those_of_each_steps_anchor_frame(steps):
    """Encoding only the distinct anchors gives, step by step, the maps of x_{min(t, seen) - 1} (a blank frame at
    t = 0), for videos shorter than, as long as and longer than the seen frames and one more."""
    torch.manual_seed(0)
    head, seen = ConvFrames([1, 16, 16], channels=4, feat_dim=12, skips=True, seen=3), 3
    x = torch.rand(2, steps, 1, 16, 16).round()
    frames = torch.cat([torch.zeros_like(x[:, :1]), x], 1)[:, [min(t, seen) for t in range(steps)]]
    expected = head.encoder.maps(frames.flatten(0, 1))
    got = head.anchor_maps(x, torch.float32)
    assert len(got) == len(expected) == 2  # 16 -> 8 -> 4 pixels: two sizes
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert torch.allclose(g, e, atol=1e-6)


@pytest.mark.parametrize("primed", [1, 3, 4])
def test_generation_with_skips_reads_the_anchors_that_scoring_reads(primed):
    """The frames a head with skips predicts inside `generating` are decoded from the same anchors as `nll` reads
    in the video made of the prime and those frames: the last primed frame, or the frames drawn while t < seen."""
    torch.manual_seed(0)
    head, steps = ConvFrames([1, 8, 8], channels=4, feat_dim=12, skips=True, seen=3).eval(), 6
    prime, params = torch.rand(2, primed, 1, 8, 8).round(), torch.randn(2, steps, 12)
    with head.generating(prime, batch_size=2):
        drawn = [head.sample(params[:, t], temperature=0) for t in range(primed, steps)]
    video = torch.cat([prime, torch.stack(drawn, 1)], 1)  # (2, steps, 1, 8, 8)
    expected = head.pixels.mean(head.decoded(params, head.anchor_maps(video, params.dtype))).view(video.shape)
    assert torch.allclose(video[:, primed:], expected[:, primed:], atol=1e-6)
    with pytest.raises(RuntimeError, match="reads the last seen frame"):
        head.mean(params)  # outside generation there is no anchor to read


@pytest.mark.parametrize("model_class", FAMILY)
def test_every_model_trains_bounds_and_generates_with_skips(model_class):
    torch.manual_seed(0)
    settings = {k: v for k, v in SIZES.items() if k in inspect.signature(model_class).parameters}
    head = ConvFrames([1, 8, 8], channels=4, feat_dim=12, skips=True, seen=2)
    model = model_class(head, **settings)
    x = torch.rand(3, 5, 1, 8, 8).round()
    out = model(x)
    (out.recon + out.kl).sum().backward()
    assert model.likelihood.decoder.convs[0].in_channels == 2 * 4  # each conv reads its skip as well
    assert model.generate(3, prime=x[:, :2]).shape == (3, 3, 1, 8, 8)
    assert model.generate(4, batch_size=2).shape == (2, 4, 1, 8, 8)
    assert model.likelihood.anchor is None  # nothing kept after generating
    if model.latent_dim:
        assert torch.isfinite(IWAE(samples=2).bound(model, x, torch.ones(3, 5))).all()
        with pytest.raises(ValueError, match="objective=fivo steps the model one frame at a time"):
            FIVO(samples=2).check_model(model)


def test_a_head_without_skips_keeps_the_config_of_earlier_checkpoints():
    config = ConvFrames([1, 8, 8], channels=4, feat_dim=12, seen=5).config
    assert "skips" not in config and "seen" not in config
    with pytest.raises(ValueError, match="model.likelihood.seen must be a whole number >= 1"):
        ConvFrames([1, 8, 8], skips=True)
