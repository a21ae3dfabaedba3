"""Bouncing balls, the benchmark of the Kalman VAE (Fraccaro et al. 2017): `balls` balls of `radius` pixels move
in a square box at constant speed, bounce elastically off its walls and off one another (equal masses: the
velocities' components along the line of centres are exchanged, pair by pair: balls crowded into a small box can
overlap for a frame), and are drawn as discs, binary or with
anti-aliased grey edges. The physics is numpy's, in continuous positions; each video starts at random positions
with speeds drawn in [min_speed, max_speed] pixels per frame in random directions."""

from typing import Any

import numpy as np
import torch
from torch import Tensor

from vrnn_lightning.data.base import check_counts
from vrnn_lightning.data.frames import GeneratedFrames
from vrnn_lightning.errors import ConfigError


def simulate(
    count: int, balls: int, steps: int, size: int, radius: float, speeds: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Centres (count, steps, balls, 2) of balls bouncing in a box of `size` pixels."""
    low, high = radius, size - radius
    position = rng.uniform(low, high, (count, balls, 2))
    for _ in range(100):  # balls start apart: redraw the videos where two overlap
        gaps = np.linalg.norm(position[:, :, None] - position[:, None], axis=-1) + np.eye(balls) * size
        overlapping = (gaps < 2 * radius).any((1, 2))
        if not overlapping.any():
            break
        position[overlapping] = rng.uniform(low, high, (int(overlapping.sum()), balls, 2))
    angle = rng.uniform(0, 2 * np.pi, (count, balls))
    speed = rng.uniform(*speeds, (count, balls))
    velocity = np.stack([np.cos(angle), np.sin(angle)], -1) * speed[..., None]
    path = np.empty((count, steps, balls, 2))
    for t in range(steps):
        path[:, t] = position
        position = position + velocity
        below, above = position < low, position > high  # walls reflect the position and the velocity
        position = np.where(below, 2 * low - position, np.where(above, 2 * high - position, position))
        velocity = np.where(below | above, -velocity, velocity)
        for i in range(balls):  # balls that touch and approach exchange their velocities' normal components
            for j in range(i + 1, balls):
                apart = position[:, i] - position[:, j]  # (count, 2)
                distance = np.linalg.norm(apart, axis=-1, keepdims=True).clip(1e-9)
                normal = apart / distance
                closing = ((velocity[:, i] - velocity[:, j]) * normal).sum(-1, keepdims=True)
                touching = distance < 2 * radius
                exchange = np.where(touching & (closing < 0), closing * normal, 0.0)
                velocity[:, i] -= exchange
                velocity[:, j] += exchange
                push = np.where(touching, (2 * radius - distance) / 2 * normal, 0.0)  # to just touching
                position[:, i] += push
                position[:, j] -= push
        position = position.clip(low, high)
    return path


def draw(centres: np.ndarray, size: int, radius: float, grey: bool) -> Tensor:
    """Centres (count, steps, balls, 2) -> frames (count, steps, 1, size, size): a pixel is lit where its centre
    lies inside a ball (binary), or by how far inside, over one pixel of edge (grey)."""
    grid = np.arange(size, dtype=np.float32) + 0.5
    centres = centres.astype(np.float32)
    dy = grid[:, None] - centres[..., 0, None, None]  # (count, steps, balls, size, 1)
    dx = grid[None, :] - centres[..., 1, None, None]  # (count, steps, balls, 1, size)
    inside = radius - np.sqrt(dy**2 + dx**2)  # (count, steps, balls, size, size): > 0 inside
    lit = np.clip(inside + 0.5, 0, 1) if grey else (inside >= 0).astype(np.float64)
    return torch.from_numpy(lit.max(2)).float().unsqueeze(2)


class BouncingBallsDataModule(GeneratedFrames):
    """Videos (B, T, 1, frame_size, frame_size) of `balls` bouncing balls."""

    def __init__(
        self,
        frame_size: int = 32,
        balls: int = 1,
        radius: float = 3.0,
        min_speed: float = 1.0,
        max_speed: float = 2.0,
        seq_len: int = 20,
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
        self.frame_size, self.balls, self.radius = frame_size, balls, radius
        self.speeds = (min_speed, max_speed)
        self.frame_shape = (1, frame_size, frame_size)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        super().check_settings(settings)
        check_counts(settings, ("frame_size", "balls"))
        size, radius = settings.get("frame_size", 32), settings.get("radius", 3.0)
        if isinstance(radius, bool) or not isinstance(radius, int | float) or not 0.5 <= radius < size / 2:
            raise ConfigError(
                f"data.radius={radius!r} must be from 0.5 to below half of data.frame_size={size}, so a ball fits"
            )
        low, high = settings.get("min_speed", 1.0), settings.get("max_speed", 2.0)
        if not (isinstance(low, int | float) and isinstance(high, int | float) and 0 < low <= high < radius):
            raise ConfigError(
                f"data.min_speed={low!r} and data.max_speed={high!r} must satisfy 0 < min_speed <= max_speed < "
                f"data.radius={radius}, so that a ball never passes through another between frames"
            )

    def make(self, count: int, steps: int, generator: torch.Generator, split: str) -> Tensor:
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        centres = simulate(count, self.balls, steps, self.frame_size, self.radius, self.speeds, rng)
        return draw(centres, self.frame_size, self.radius, grey=not self.binarize)
