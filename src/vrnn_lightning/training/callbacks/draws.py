"""Draws a dashboard makes (text samples, pictures, line plots) come from a random stream of their own, so that
a run's figures do not depend on what watches it: the run's torch streams (CPU and the model's GPU) are put back
as they were once the drawing ends, whichever loggers and callbacks are on."""

from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch


@contextmanager
def own_random_stream(pl_module: L.LightningModule, seed: int) -> Iterator[None]:
    """Inside, torch's global streams start from `seed` (the trainer's global step: a new sample each validation,
    the same one for the same step of any run); after, they are the run's again, as if nothing had drawn."""
    device = pl_module.device
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
