"""Moving MNIST, made on the fly from MNIST digits: Stochastic Moving MNIST as SVG defines it (Denton and Fergus
2018: a digit that reaches a wall is put back against it and takes a new random speed away from that wall and
a new random speed along the other axis), or, with `deterministic=true`, digits that bounce like billiard balls
(Srivastava et al. 2015). Frames are `frame_size` square, digits `digit_size` (MNIST's 28 pixels resized), and
speeds whole pixels per frame up to `max_speed`.

Training videos use training digits, validation videos validation digits, the fixed test set test digits
(MNIST's standard split, `MNISTDataModule`'s); on a machine with only MNIST's test file the digits are split by
index (its t10k_only split), and the run says so. Digits never cross splits.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vrnn_lightning.data.base import check_counts
from vrnn_lightning.data.frames import GeneratedFrames
from vrnn_lightning.data.mnist import MIRRORS, MNISTDataModule
from vrnn_lightning.errors import ConfigError


def trajectories(
    count: int, digits: int, steps: int, room: int, max_speed: int, deterministic: bool, generator: torch.Generator
) -> Tensor:
    """Top-left corners (count, digits, steps, 2) of `digits` digits per video, each in [0, room] on both axes."""
    position = torch.randint(0, room + 1, (count, digits, 2), generator=generator)
    velocity = torch.randint(-max_speed, max_speed + 1, (count, digits, 2), generator=generator)
    path = []
    for _ in range(steps):
        path.append(position)
        position = position + velocity
        # (count, digits, 2): the walls each axis reached or passed while moving into them
        low, high = (position <= 0) & (velocity < 0), (position >= room) & (velocity > 0)
        # drawn at every step, used or not, so that the stream of draws does not depend on where digits are
        away = torch.randint(1, max_speed + 1, velocity.shape, generator=generator)
        anywhere = torch.randint(-max_speed, max_speed + 1, velocity.shape, generator=generator)
        if deterministic:
            velocity = torch.where(low | high, -velocity, velocity)
        else:
            other_axis_hit = (low | high).flip(-1)
            velocity = torch.where(other_axis_hit & ~(low | high), anywhere, velocity)
            velocity = torch.where(low, away, torch.where(high, -away, velocity))
        position = position.clamp(0, room)
    return torch.stack(path, 2)


def render(images: Tensor, corners: Tensor, size: int) -> Tensor:
    """Digits (count, digits, d, d) at their corners (count, digits, steps, 2) -> frames (count, steps, 1,
    size, size): digits added where they overlap, clipped at 1, as SVG does."""
    count, digits, d, _ = images.shape
    steps = corners.shape[2]
    canvas = torch.zeros(count, steps, size, size)
    span = torch.arange(d)
    videos = torch.arange(count).view(-1, 1, 1, 1)
    times = torch.arange(steps).view(1, -1, 1, 1)
    for k in range(digits):
        rows = (corners[:, k, :, 0, None] + span)[..., :, None]  # (count, steps, d, 1)
        cols = (corners[:, k, :, 1, None] + span)[..., None, :]  # (count, steps, 1, d)
        pixels = images[:, k, None].expand(count, steps, d, d)
        canvas.index_put_((videos, times, rows, cols), pixels, accumulate=True)
    return canvas.clamp_(0, 1).unsqueeze(2)


class MovingMNISTDataModule(GeneratedFrames):
    """Videos (B, T, 1, frame_size, frame_size) of `digits` moving MNIST digits."""

    def __init__(
        self,
        root: str = "data/mnist",
        mirrors: list[str] | None = None,
        download: bool = True,
        checksums: dict[str, str] | None = None,
        frame_size: int = 32,
        digit_size: int = 14,
        digits: int = 1,
        max_speed: int = 2,
        deterministic: bool = False,
        seq_len: int = 15,
        seen: int = 5,
        predicted: int = 20,
        train_size: int = 10_000,
        val_size: int = 256,
        test_size: int = 1_000,
        binarize: bool = True,
        batch_size: int = 32,
        eval_batch_size: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__(
            seq_len, seen, predicted, train_size, val_size, test_size, batch_size, eval_batch_size, binarize, seed
        )
        self.save_hyperparameters()  # checkpoints carry them, so eval and sample can rebuild this module
        self.check_settings(dict(self.hparams))
        self.frame_size, self.digit_size, self.digits = frame_size, digit_size, digits
        self.max_speed, self.deterministic = max_speed, deterministic
        self.frame_shape = (1, frame_size, frame_size)
        self.mnist = MNISTDataModule(root, list(mirrors or MIRRORS), download, checksums, binarize=False, seed=seed)
        self.digit_images: dict[str, Tensor] = {}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        super().check_settings(settings)
        check_counts(settings, ("frame_size", "digit_size", "digits", "max_speed"))
        frame, digit = settings.get("frame_size", 32), settings.get("digit_size", 14)
        if digit > frame:
            raise ConfigError(
                f"data.digit_size={digit} does not fit in a frame of data.frame_size={frame} pixels; "
                "raise data.frame_size or lower data.digit_size"
            )
        if not isinstance(settings.get("deterministic", False), bool):
            raise ConfigError(f"data.deterministic={settings['deterministic']!r} must be true or false")

    def prepare_data(self) -> None:
        self.mnist.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if not self.digit_images:
            self.mnist.setup()
            if self.mnist.split == "t10k_only":
                self.note = "digits from MNIST's test file alone, split by index: not comparable with published figures"
            for split, images in self.mnist.images.items():
                images = images.float() / 255 if images.dtype == torch.uint8 else images  # (N, 28, 28) in [0, 1]
                if self.digit_size != images.shape[-1]:
                    images = F.adaptive_avg_pool2d(images.unsqueeze(1), self.digit_size).squeeze(1)
                self.digit_images[split] = images
        super().setup(stage)

    def make(self, count: int, steps: int, generator: torch.Generator, split: str) -> Tensor:
        pool = self.digit_images[split]
        chosen = torch.randint(len(pool), (count, self.digits), generator=generator)
        room = self.frame_size - self.digit_size
        corners = trajectories(count, self.digits, steps, room, self.max_speed, self.deterministic, generator)
        return render(pool[chosen], corners, self.frame_size)
