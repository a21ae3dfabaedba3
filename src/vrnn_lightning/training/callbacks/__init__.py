"""Lightning callbacks, one job each, each with its own config in conf/callbacks/: dashboards (text samples,
image grids, line plots, latent usage), the NaN guard, saving on Ctrl-C and SIGTERM, and the random state a resumed run
continues from."""

from vrnn_lightning.training.callbacks.image_grids import ImageGrids
from vrnn_lightning.training.callbacks.interrupts import RunInterrupted, SaveOnInterrupt
from vrnn_lightning.training.callbacks.latent_usage import LatentUsageMonitor
from vrnn_lightning.training.callbacks.line_plots import LinePlots
from vrnn_lightning.training.callbacks.nonfinite import StopOnNonFinite
from vrnn_lightning.training.callbacks.progress import ParameterSummary, StepProgressBar
from vrnn_lightning.training.callbacks.random_state import RandomState
from vrnn_lightning.training.callbacks.text_samples import TextSamples

__all__ = [
    "ImageGrids",
    "LatentUsageMonitor",
    "LinePlots",
    "ParameterSummary",
    "RandomState",
    "RunInterrupted",
    "SaveOnInterrupt",
    "StepProgressBar",
    "StopOnNonFinite",
    "TextSamples",
]
