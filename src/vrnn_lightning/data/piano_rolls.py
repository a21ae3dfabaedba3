"""Piano rolls a musician can read: time left to right, one row per key with the octaves marked at each C, the
real piece and the model's side by side, and nothing drawn past a piece's end.

`piano_roll_pictures` draws, for a batch of pieces and any model of the contract: each piece beside its
reconstruction (the head's mean: each key's probability at each step given the past and the sampled latents),
pieces sampled from the model, and each piece's opening continued by the model (a line where the model takes
over). Each picture is an (H, W, 3) RGB array (matplotlib, Agg): for TensorBoard (`dataformats="HWC"`) and PNG.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

KEYS = 88
PANEL_INCHES = 2.2  # per piece: 88 keys at 2.5 pixels each at DPI
STEP_INCHES = 0.05  # per time step: 5 pixels at DPI, so a single sixteenth shows
DPI = 100
MIN_WIDTH_INCHES = 8.0  # at least 800 pixels wide, so the key names and the time axis stay legible


def note_name(midi: int) -> str:
    return f"C{midi // 12 - 1}"


def crop(rolls: Tensor, lengths: Tensor) -> list[Tensor]:
    """(B, T, 88) padded rolls -> each piece's own (T_i, 88) steps: what lies past its end is never drawn."""
    return [roll[: int(length)] for roll, length in zip(rolls, lengths.tolist(), strict=True)]


def draw(rows: list[list[tuple[str, Tensor]]], lowest_midi: int, marks: list[int | None] | None = None) -> np.ndarray:
    """A grid of piano rolls, one row per piece and one column per version of it (`(title, (T_i, 88) roll)`);
    `marks[r]` draws a vertical line at that step of row r (where a continuation starts)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: the user's backend stays theirs
    from matplotlib.figure import Figure

    columns = max(len(row) for row in rows)
    longest = max(len(roll) for row in rows for _, roll in row)
    width = max(MIN_WIDTH_INCHES, max(3.0, 0.8 + STEP_INCHES * longest) * columns)
    figure = Figure(figsize=(width, PANEL_INCHES * len(rows) + 0.4), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    octaves = [k for k in range(KEYS) if (k + lowest_midi) % 12 == 0]  # the C keys
    for r, row in enumerate(rows):
        for c, (title, roll) in enumerate(row):
            axes = figure.add_subplot(len(rows), columns, r * columns + c + 1)
            steps = max(len(roll), 1)
            image = roll.detach().float().cpu().clamp(0, 1).T.numpy() if len(roll) else np.zeros((KEYS, 1))
            axes.imshow(image, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
            axes.set_xlim(-0.5, steps - 0.5)  # the piece's own length: nothing past its end
            for key in octaves:
                axes.axhline(key - 0.5, color="tab:blue", linewidth=0.3, alpha=0.5)
            axes.set_yticks(octaves, [note_name(k + lowest_midi) for k in octaves], fontsize=7)
            axes.tick_params(axis="x", labelsize=7)
            if r == len(rows) - 1:
                axes.set_xlabel("time step", fontsize=7)
            if marks and marks[r] is not None:
                axes.axvline(marks[r] - 0.5, color="tab:red", linewidth=0.8)
            axes.set_title(title, fontsize=8)
    figure.tight_layout(pad=0.3)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


@torch.no_grad()
def piano_roll_pictures(
    model: Any, x: Tensor, mask: Tensor, lowest_midi: int, seed: int = 0, max_steps: int | None = None
) -> dict[str, np.ndarray]:
    """Pictures of pieces x (B, T, 88) with their mask (B, T) and `model`: real beside reconstructed, sampled,
    and continued openings (the first half of the shortest piece read, the rest generated). `max_steps` keeps
    the first that many steps of each piece (what TensorBoard shows after every validation: drawing and an
    autoregressive head's sampling grow with the length)."""
    if max_steps is not None:
        x, mask = x[:, :max_steps], mask[:, :max_steps]
    was_training = model.training
    model.eval()
    x, mask = x.to(model.device), mask.to(model.device)
    lengths = mask.sum(1).long().cpu()
    generator = torch.Generator(model.device).manual_seed(seed)
    reconstructions = model.likelihood.mean(model(x, mask).x_params)
    samples = model.generate(int(lengths.max()), batch_size=len(x), generator=generator)
    half = max(1, int(lengths.min()) // 2)
    continued = torch.cat([x[:, :half], model.generate(x.shape[1] - half, prime=x[:, :half], generator=generator)], 1)
    model.train(was_training)
    real = crop(x, lengths)
    pairs = lambda other, title: [
        [(f"piece {i}", piece), (title, version)] for i, (piece, version) in enumerate(zip(real, other, strict=True))
    ]
    return {
        "images/reconstructions": draw(pairs(crop(reconstructions, lengths), "model"), lowest_midi),
        "images/samples": draw([[(f"sample {i}", s)] for i, s in enumerate(samples)], lowest_midi),
        "images/completions": draw(
            pairs(crop(continued, lengths), "model continues"), lowest_midi, marks=[half] * len(real)
        ),
    }


def write_rgb_png(path: str | Path, image: np.ndarray) -> Path:
    import matplotlib.image

    matplotlib.image.imsave(path, image)
    return Path(path)
