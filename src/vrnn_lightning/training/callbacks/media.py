"""Where the dashboards' pictures, texts and histograms go: through this one path, to every tracker of the run that
takes them. TensorBoard shows them in its IMAGES, TEXT and HISTOGRAMS tabs; MLflow keeps them as the run's
artifacts (`<name>/step_<step>.png`, `.txt`, `.json`); W&B as media of the run. CSV takes none. A tracker that
fails is left out with a warning, as for figures (`launch/trackers.Guarded`), and one that holds figures back
until a checkpoint holds these back with them, so a resumed run has each once."""

import io
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
from torch import Tensor

from vrnn_lightning.launch.trackers import kind

TAKERS = ("TensorBoardLogger", "MLFlowLogger", "WandbLogger")


def takers(trainer: L.Trainer) -> list[Any]:
    """The run's loggers that take pictures, on the process that writes them (none on other DDP ranks)."""
    if not trainer.is_global_zero:
        return []
    return [lg for lg in trainer.loggers if kind(lg) in TAKERS and not getattr(lg, "failed", False)]


def deliver(logger: Any, send: Callable[[Any], None]) -> None:
    """`send(tracker)` now, or through the tracker's guard (held back with its figures, failures caught)."""
    if hasattr(logger, "send"):
        logger.send(send)
    else:
        send(logger)


def as_array(image: Tensor | np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3), in [0, 1] or already uint8 -> uint8 pixels, as every tracker takes them."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return image
    pixels = image.detach().cpu().float().numpy() if isinstance(image, Tensor) else np.asarray(image, np.float32)
    return (pixels.clip(0, 1) * 255).round().astype(np.uint8)


def log_image(trainer: L.Trainer, name: str, image: Tensor | np.ndarray, step: int) -> None:
    """A picture (H, W) grey or (H, W, 3) colour, in [0, 1] or uint8, at `step`."""
    pixels = as_array(image)
    formats = "HW" if pixels.ndim == 2 else "HWC"

    def send(tracker: Any) -> None:
        if kind(tracker) == "TensorBoardLogger":
            tracker.experiment.add_image(name, pixels, step, dataformats=formats)
        elif kind(tracker) == "MLFlowLogger":
            tracker.experiment.log_image(tracker.run_id, pixels, artifact_file=f"{name}/step_{step:07d}.png")
        else:
            tracker.log_image(key=name, images=[pixels], step=step)

    for logger in takers(trainer):
        deliver(logger, send)


def log_text(trainer: L.Trainer, name: str, text: str, step: int) -> None:
    def send(tracker: Any) -> None:
        if kind(tracker) == "TensorBoardLogger":  # Markdown would eat the line breaks of verse: indent them
            tracker.experiment.add_text(name, "    " + text.replace("\n", "\n    "), step)
        elif kind(tracker) == "MLFlowLogger":
            tracker.experiment.log_text(tracker.run_id, text, f"{name}/step_{step:07d}.txt")
        else:
            tracker.log_text(key=name, columns=["text"], data=[[text]], step=step)

    for logger in takers(trainer):
        deliver(logger, send)


def log_histogram(trainer: L.Trainer, name: str, values: Tensor, step: int) -> None:
    """Values (one per latent dimension): a histogram in TensorBoard, the values themselves elsewhere."""
    listed = [float(v) for v in values.detach().cpu().flatten()]

    def send(tracker: Any) -> None:
        if kind(tracker) == "TensorBoardLogger":
            tracker.experiment.add_histogram(name, values.detach().cpu(), step)
        elif kind(tracker) == "MLFlowLogger":
            record = {"step": step, "values": listed}
            tracker.experiment.log_dict(tracker.run_id, record, f"{name}/step_{step:07d}.json")
        else:
            import wandb

            tracker.experiment.log({name: wandb.Histogram(listed), "trainer/global_step": step})

    for logger in takers(trainer):
        deliver(logger, send)


def log_figure(trainer: L.Trainer, name: str, figure: Any, step: int) -> None:
    """A matplotlib figure, drawn to a picture once and closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    import matplotlib.pyplot as plt
    from PIL import Image

    plt.close(figure)
    buffer.seek(0)
    with Image.open(buffer) as picture:
        pixels = np.asarray(picture.convert("RGB"), np.float32) / 255
    log_image(trainer, name, pixels, step)


def any_takers(trainer: L.Trainer) -> bool:
    return bool(takers(trainer))
