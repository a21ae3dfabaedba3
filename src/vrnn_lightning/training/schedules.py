"""Learning-rate and KL-weight schedules, as functions of the optimiser step."""

import math
from collections.abc import Callable
from typing import Any

import torch


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up, then cosine decay to `min_ratio`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def kl_weight(step: int, warmup_steps: int) -> float:
    """beta: ramps linearly 0 -> 1 over `warmup_steps` optimiser steps (1 when off)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def with_lr_schedule(
    optimizer: torch.optim.Optimizer, schedule: str, warmup_steps: int, total_steps: int, min_ratio: float
) -> dict[str, Any]:
    """Lightning's `configure_optimizers` answer: the optimiser, and a per-step schedule where there is one
    (`constant` with warm-up, or `cosine`: warm-up, then decay to `min_ratio` by `total_steps`)."""
    if schedule == "constant" and warmup_steps <= 0:
        return {"optimizer": optimizer}
    factor = warmup_cosine(max(1, warmup_steps), total_steps, 1.0 if schedule == "constant" else min_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
