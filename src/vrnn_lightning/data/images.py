"""Pictures of image sequences: grids of inputs, reconstructions, samples and completions, and PNG files."""

from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def sequences_to_images(x: Tensor, layout: str) -> Tensor:
    """(N, T, D) sequences -> (N, H, W) images: rows are time steps ("rows"), or columns are ("columns"), or a
    piano roll ("piano_roll": time left to right, the lowest key at the bottom)."""
    if layout == "rows":
        return x
    return x.transpose(1, 2) if layout == "columns" else x.transpose(1, 2).flip(1)


def image_grid(images: Tensor, ncol: int, pad: int = 1) -> Tensor:
    """(N, H, W) images in [0, 1] -> one (H', W') grid, `ncol` per row, `pad` pixels of white between them."""
    n, h, w = images.shape
    nrow = -(-n // ncol)
    grid = torch.ones(nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i, image in enumerate(images.float().clamp(0, 1)):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = image
    return grid


@torch.no_grad()
def picture_grids(model: Any, x: Tensor, layout: str, seed: int = 0) -> dict[str, Tensor]:
    """Grids of a batch of image sequences x (B, T, D) for `model` (any model of the contract): inputs over
    their reconstructions (decoder means given posterior samples), samples from the prior, and the inputs'
    top halves over their completions."""
    was_training = model.training
    model.eval()
    x = x.to(model.device)
    generator = torch.Generator(model.device).manual_seed(seed)
    steps, half, count = x.shape[1], x.shape[1] // 2, len(x)
    reconstructions = model.likelihood.mean(model(x).x_params)
    samples = model.generate(steps, batch_size=2 * count, generator=generator)
    completions = model.generate(steps - half, prime=x[:, :half], generator=generator)
    model.train(was_training)

    def grid(sequences: Tensor) -> Tensor:
        return image_grid(sequences_to_images(sequences.float().cpu(), layout), count)

    return {
        "images/reconstructions": grid(torch.cat([x, reconstructions])),
        "images/samples": grid(samples),
        "images/completions": grid(torch.cat([x, torch.cat([x[:, :half], completions], 1)])),
    }


def write_png(path: str | Path, image: Tensor, scale: int = 1) -> Path:
    """Write an (H, W) image in [0, 1] as a greyscale PNG, each pixel a `scale` x `scale` block."""
    import matplotlib.image  # here: only writing a picture needs it

    pixels = image.repeat_interleave(scale, 0).repeat_interleave(scale, 1).clamp(0, 1).numpy()
    matplotlib.image.imsave(path, pixels, cmap="gray", vmin=0.0, vmax=1.0)
    return Path(path)
