"""Line plots after every validation, to every tracker that takes pictures: real, reconstructed and sampled
real-valued sequences."""

import lightning as L

from vrnn_lightning.data.line_plots import line_plot_figure, line_plot_panels
from vrnn_lightning.data.real_valued import denormalize
from vrnn_lightning.training.callbacks.draws import own_random_stream
from vrnn_lightning.training.callbacks.image_grids import FirstValidationBatch
from vrnn_lightning.training.callbacks.media import any_takers, log_figure


class LinePlots(FirstValidationBatch):
    """The first `count` sequences of the first validation batch, their reconstructions and as many samples,
    `dims` dims each, in the data's own units."""

    def __init__(self, count: int = 4, dims: int = 3) -> None:
        super().__init__(count)
        self.dims = dims

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not any_takers(trainer):
            return
        with own_random_stream(pl_module, trainer.global_step):
            panels, masks = line_plot_panels(pl_module.model, self.first_batch.x, self.first_batch.mask)
        normalization = pl_module.hparams.data_metadata["normalization"]
        panels = {name: denormalize(x, normalization) for name, x in panels.items()}
        log_figure(trainer, "sequences", line_plot_figure(panels, self.dims, masks), trainer.global_step)
