"""Line plots in TensorBoard after every validation: real, reconstructed and sampled real-valued sequences."""

from typing import Any

import lightning as L

from vrnn_lightning.data.line_plots import line_plot_figure, line_plot_panels
from vrnn_lightning.data.real_valued import denormalize


class LinePlots(L.Callback):
    """The first `count` sequences of the first validation batch, their reconstructions and as many samples,
    `dims` dims each, in the data's own units."""

    def __init__(self, count: int = 4, dims: int = 3) -> None:
        self.count, self.dims = count, dims
        self.first_batch: Any = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0:
            self.first_batch = (batch.x[: self.count], batch.mask[: self.count])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        experiment = getattr(trainer.logger, "experiment", None)
        if trainer.sanity_checking or not trainer.is_global_zero or not hasattr(experiment, "add_figure"):
            return
        panels, masks = line_plot_panels(pl_module.model, *self.first_batch)
        normalization = pl_module.hparams.data_metadata["normalization"]
        panels = {name: denormalize(x, normalization) for name, x in panels.items()}
        experiment.add_figure("sequences", line_plot_figure(panels, self.dims, masks), trainer.global_step)
