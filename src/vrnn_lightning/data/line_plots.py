"""Line plots of real-valued sequences: a few dims of real, reconstructed and sampled sequences over time."""

from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def line_plot_figure(panels: dict[str, Tensor], dims: int = 3, masks: dict[str, Tensor] | None = None) -> Any:
    """A matplotlib figure: one row per panel (name -> (N, T, D) sequences), one column per dim (the first
    `dims`), every sequence a line; steps where `masks[name]` is 0 (padding) are not drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: the user's backend stays theirs
    from matplotlib.figure import Figure

    dims = min(dims, next(iter(panels.values())).shape[-1])
    figure = Figure(figsize=(3.2 * dims, 2.2 * len(panels)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), dims, squeeze=False)
    for row, (name, sequences) in enumerate(panels.items()):
        mask = (masks or {}).get(name)
        for col in range(dims):
            axis = axes[row][col]
            for i, sequence in enumerate(sequences.float().cpu()):
                length = int(mask[i].sum()) if mask is not None else len(sequence)
                axis.plot(sequence[:length, col].numpy(), linewidth=1)
            axis.set_title(f"{name}, dim {col}", fontsize=9)
            axis.tick_params(labelsize=7)
    figure.tight_layout()
    return figure


def write_line_plots(path: str | Path, panels: dict[str, Tensor], dims: int = 3) -> Path:
    line_plot_figure(panels, dims).savefig(path, dpi=100)
    return Path(path)


@torch.no_grad()
def line_plot_panels(model: Any, x: Tensor, mask: Tensor, seed: int = 0) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Real sequences x (B, T, D), their reconstructions (decoder means given posterior samples) and as many
    samples from the model of the same length; normalised units. Returns the panels and their masks."""
    was_training = model.training
    model.eval()
    x, mask = x.to(model.device), mask.to(model.device)
    generator = torch.Generator(model.device).manual_seed(seed)
    reconstructions = model.likelihood.mean(model(x, mask).x_params)
    samples = model.generate(x.shape[1], batch_size=len(x), generator=generator)
    model.train(was_training)
    return {"real": x, "reconstructed": reconstructions, "sampled": samples}, {"real": mask, "reconstructed": mask}
