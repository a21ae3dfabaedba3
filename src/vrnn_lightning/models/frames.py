"""Frames through convolutions: a likelihood head for image sequences, x_t a frame (C, H, W), that any model of
the family uses unchanged.

The head is the seam the family already shares: `features` turns frames into vectors for phi_x (a frame
encoder, stride-2 convolutions, as SVG's DCGAN encoder does), and the model's emission network outputs a vector
that the frame decoder (transposed convolutions) turns into per-pixel parameters:
    p(x_t | emission output e_t) = prod_pixels p_pixel(x_tchw; Decoder(e_t)_chw)
with Bernoulli pixels (binary frames) or Gaussian ones (grey or colour frames in [0, 1]; a fixed std is the
mean-squared error of image reconstruction up to scale and a constant).

With `skips`, SVG's skip connections: the decoder also reads the encoder's feature maps of the step's anchor, the
last frame seen before it (x_{t-1} while t <= seen, then x_{seen-1}, the last conditioning frame; a blank frame
at t = 0), so that what stays put in a video need not pass through the recurrent state:
    p(x_t | e_t, x_{a(t)}),  a(t) = min(t, seen) - 1
The anchor is a past frame, so the product over t is still a likelihood of the whole video; the head reads it
from x when it scores a video from its first frame, and keeps it itself while the family generates.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import Tensor, nn

from vrnn_lightning.models.likelihoods import Bernoulli, Gaussian, Likelihood

PIXELS = ("bernoulli", "gaussian")


def halvings(height: int, width: int) -> int:
    """How many stride-2 layers take a frame down to at most 4 pixels a side, halving exactly each time."""
    count = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > 4:
        height, width, count = height // 2, width // 2, count + 1
    return count


def widths(channels: int, layers: int) -> list[int]:
    """The channels after each conv layer: doubling per halving from `channels`, at most 8 x `channels`."""
    return [channels * min(2**i, 8) for i in range(layers)]


def normalised(width: int) -> nn.Module:
    """Group normalisation: per frame, so that K trajectories or particles of one sequence never see one another
    (batch normalisation would couple the rows of a bound's batch)."""
    return nn.GroupNorm(math.gcd(8, width), width)


class FrameEncoder(nn.Module):
    """A frame (C, H, W) -> features (feat_dim,): stride-2 convolutions down to at most 4 x 4 pixels (one
    stride-1 convolution for a frame already that small), then a linear layer."""

    def __init__(self, shape: tuple[int, int, int], channels: int, feat_dim: int) -> None:
        super().__init__()
        c, h, w = shape
        down = halvings(h, w)
        layers: list[nn.Module] = []
        for width in widths(channels, max(down, 1)):
            stride_two = down > 0
            layers += [nn.Conv2d(c, width, 4 if stride_two else 3, 2 if stride_two else 1, 1), normalised(width)]
            layers.append(nn.LeakyReLU(0.2))
            c = width
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(c * (h >> down) * (w >> down), feat_dim)

    def forward(self, frames: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, feat_dim)."""
        return self.out(self.convs(frames).flatten(1))

    def maps(self, frames: Tensor) -> list[Tensor]:
        """(N, C, H, W) -> each conv block's output (N, C_k, H_k, W_k), the finest first: what skips carry."""
        maps, h = [], frames
        for layer in self.convs:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                maps.append(h)
        return maps


class FrameDecoder(nn.Module):
    """Features (feat_dim,) -> per-pixel parameters (out_channels, H, W): a linear layer to the smallest grid,
    then transposed convolutions doubling it back to the frame's size, the mirror of `FrameEncoder`."""

    def __init__(
        self, shape: tuple[int, int, int], channels: int, feat_dim: int, out_channels: int, skips: bool = False
    ) -> None:
        super().__init__()
        _, h, w = shape
        grow = 2 if skips else 1  # with skips each conv also reads the encoder's map of its input's size
        down = halvings(h, w)
        inner = widths(channels, max(down, 1))[::-1]  # widest first
        self.grid = (inner[0], h >> down, w >> down)
        self.inp = nn.Sequential(nn.Linear(feat_dim, math.prod(self.grid)), nn.LeakyReLU(0.2))
        layers: list[nn.Module] = []
        for i, width in enumerate(inner):
            last = i == len(inner) - 1
            out = out_channels if last else inner[i + 1]
            if down > 0:
                layers.append(nn.ConvTranspose2d(grow * width, out, 4, 2, 1))
            else:
                layers.append(nn.Conv2d(grow * width, out, 3, 1, 1))
            if not last:
                layers += [normalised(out), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)

    def forward(self, features: Tensor, maps: list[Tensor] | None = None) -> Tensor:
        """(N, feat_dim), and with skips the encoder's `maps` of each row's anchor -> (N, out_channels, H, W)."""
        h = self.inp(features).view(-1, *self.grid)  # (N, C_0, H_0, W_0): the coarsest grid
        level = 0
        for layer in self.convs:
            if maps is not None and isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                h = torch.cat([h, maps[-1 - level]], 1)  # the encoder's map of this size, coarsest first
                level += 1
            h = layer(h)
        return h


class ConvFrames(Likelihood):
    """Frames (C, H, W) through a conv encoder and decoder, scored pixel by pixel by `pixels`: "bernoulli" (binary
    frames; the decoder gives logits) or "gaussian" (intensities in [0, 1]: a sigmoid mean and samples clamped to
    [0, 1]; `std` fixes the std, the MSE case, or null learns one per pixel). `x_dim` is the frame's shape, from
    the data; `channels` the first conv layer's width; `feat_dim` the width of the features going in (to phi_x)
    and of the emission's output coming out; `skips` adds SVG's skip connections from the step's anchor frame,
    `seen` frames being those a prediction conditions on (the data's `seen`)."""

    fits: ClassVar[tuple[str, ...]] = ("binary_frames", "unit_interval_frames")

    def __init__(
        self,
        x_dim: list[int],
        pixels: str = "bernoulli",
        std: float | None = None,
        min_std: float = 1e-3,
        channels: int = 32,
        feat_dim: int = 128,
        skips: bool = False,
        seen: int | None = None,
    ) -> None:
        super().__init__()
        shape = check_frame_shape(x_dim)
        if pixels not in PIXELS:
            raise ValueError(f"model.likelihood.pixels must be 'bernoulli' or 'gaussian', got {pixels!r}")
        for name, value in (("channels", channels), ("feat_dim", feat_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.likelihood.{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(skips, bool):
            raise ValueError(f"model.likelihood.skips must be true or false, got {skips!r}")
        if skips and (isinstance(seen, bool) or not isinstance(seen, int) or seen < 1):
            raise ValueError(
                f"model.likelihood.skips=true reads the last seen frame, so model.likelihood.seen must be a whole "
                f"number >= 1 (the data's seen frames), got {seen!r}"
            )
        with_skips = {"skips": True, "seen": seen} if skips else {}  # configs without them stay as they were
        self.remember_config(x_dim=list(shape), pixels=pixels, std=std, min_std=min_std, channels=channels,
                             feat_dim=feat_dim, **with_skips)  # fmt: skip
        c, h, w = shape
        self.shape, self.x_dim, self.in_dim, self.param_dim = shape, list(shape), feat_dim, feat_dim
        # The per-pixel head over the flattened frame: its parameters are the decoder's channels, flattened.
        self.pixels = Bernoulli(c * h * w) if pixels == "bernoulli" else Gaussian(c * h * w, std, min_std, bounded=True)
        self.encoder = FrameEncoder(shape, channels, feat_dim)
        self.decoder = FrameDecoder(shape, channels, feat_dim, self.pixels.param_dim // (h * w), skips)
        self.skips, self.seen = skips, seen
        self.anchor: Tensor | None = None  # while generating: (B, C, H, W), the frame the next step's skips read
        self.step = 0  # while generating: the index of the next frame

    @property
    def reads_past_frames(self) -> bool:
        return self.skips

    @classmethod
    def check_settings(cls, settings: dict) -> None:
        cls(**{**settings, "x_dim": [1, 8, 8]})

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """(B, T, C, H, W) frames -> (B, T, feat_dim)."""
        frames = x.to(dtype).flatten(0, 1)  # (B * T, C, H, W)
        return self.encoder(frames).view(*x.shape[:2], -1)

    def decoded(self, params: Tensor, maps: list[Tensor] | None = None) -> Tensor:
        """(..., feat_dim) emission outputs, with skips the encoder's maps of their anchor frames (each
        (N, C_k, H_k, W_k), N rows as in params) -> the pixel head's parameters (..., C' * H * W), flattened."""
        lead = params.shape[:-1]
        return self.decoder(params.reshape(-1, params.shape[-1]), maps).view(*lead, -1)

    def anchor_maps(self, x: Tensor, dtype: torch.dtype) -> list[Tensor]:
        """(B, T, C, H, W) frames from a video's first -> the encoder's maps of each step's anchor
        x_{min(t, seen) - 1}, a blank frame at t = 0, each (B * T, C_k, H_k, W_k). Only the distinct anchors (the
        blank and the first `seen` frames) pass through the encoder: after the seen frames every step shares one."""
        steps = torch.arange(x.shape[1], device=x.device).clamp(max=self.seen)  # (T,): index into [blank, x]
        last = min(x.shape[1] - 1, self.seen)
        distinct = torch.cat([torch.zeros_like(x[:, :1]), x[:, :last]], 1).to(dtype)  # (B, last + 1, C, H, W)
        maps = self.encoder.maps(distinct.flatten(0, 1))
        return [m.view(*distinct.shape[:2], *m.shape[1:])[:, steps].flatten(0, 1) for m in maps]

    def generated_maps(self, dtype: torch.dtype) -> list[Tensor] | None:
        """While generating with skips, the encoder's maps of the next step's anchor; None without skips."""
        if not self.skips:
            return None
        if self.anchor is None:
            raise RuntimeError(
                "a frame head with skips reads the last seen frame: score a video from its first frame with "
                "nll, or predict within the model's generate"
            )
        return self.encoder.maps(self.anchor.to(dtype))

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        """(B, T, feat_dim), (B, T, C, H, W) -> -log p(x_t) (B, T), summed over the frame's pixels; with skips x
        starts at the video's first frame."""
        maps = self.anchor_maps(x, params.dtype) if self.skips else None
        return self.pixels.nll(self.decoded(params, maps), x.flatten(2))

    @contextmanager
    def generating(self, prime: Tensor | None, batch_size: int) -> Iterator[None]:
        """Within, `sample` draws the frames after `prime` (B, P, C, H, W), or a video's first frames without
        one, each reading its anchor: the last primed frame, or the frames drawn while t <= seen."""
        if not self.skips:
            yield
            return
        start = 0 if prime is None else prime.shape[1]
        if start:
            self.anchor = prime[:, min(start, self.seen) - 1]
        else:
            self.anchor = torch.zeros(batch_size, *self.shape, device=self.encoder.out.weight.device)
        self.step = start
        try:
            yield
        finally:
            self.anchor, self.step = None, 0

    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """(B, feat_dim) -> frames (B, C, H, W); temperature 0 gives the expected frame (each pixel's mean), the
        frame SVG's decoder hands back to its encoder, which PSNR and SSIM score."""
        pixel_params = self.decoded(params, self.generated_maps(params.dtype))
        if temperature <= 0:
            frames = self.pixels.mean(pixel_params).view(*params.shape[:-1], *self.shape)
        else:
            frames = self.pixels.sample(pixel_params, temperature, generator).view(*params.shape[:-1], *self.shape)
        if self.anchor is not None:
            if self.step < self.seen:  # the next step's anchor is this frame until the seen frames are over
                self.anchor = frames
            self.step += 1
        return frames

    def mean(self, params: Tensor) -> Tensor:
        """(..., feat_dim) -> the frames' expected pixels (..., C, H, W)."""
        pixel_params = self.decoded(params, self.generated_maps(params.dtype))
        return self.pixels.mean(pixel_params).view(*params.shape[:-1], *self.shape)


def check_frame_shape(x_dim: object) -> tuple[int, int, int]:
    """The data's frame shape as (C, H, W); one line for anything else (a vector head's width: vector data)."""
    shape = () if isinstance(x_dim, str | int | float) else tuple(x_dim)  # a list, or Hydra's ListConfig
    if len(shape) != 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
        raise ValueError(
            f"model/likelihood=frames reads frames (C, H, W), but the data's steps are {x_dim!r}; "
            "use it with frame data (data=moving_mnist, bouncing_balls or frames)"
        )
    return shape  # type: ignore[return-value]
