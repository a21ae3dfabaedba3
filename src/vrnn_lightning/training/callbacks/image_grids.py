"""Pictures after every validation, to every tracker that takes them: inputs over reconstructions, samples,
completions; piano rolls; for frames, the truth over predicted futures."""

from typing import Any

import lightning as L

from vrnn_lightning.data.images import picture_grids
from vrnn_lightning.data.piano_rolls import piano_roll_pictures
from vrnn_lightning.data.predictions import prediction_strip
from vrnn_lightning.training.callbacks.draws import own_random_stream
from vrnn_lightning.training.callbacks.media import any_takers, log_image


class FirstValidationBatch(L.Callback):
    """Keeps the first `count` sequences of each validation's first batch (`first_batch`: a `Batch`), for the
    pictures drawn when the validation ends."""

    def __init__(self, count: int) -> None:
        self.count = count
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
            self.first_batch = batch._replace(x=batch.x[: self.count], mask=batch.mask[: self.count])


class ImageGrids(FirstValidationBatch):
    """Pictures of the first `count` sequences of the first validation batch, drawn in the data's image layout."""

    def __init__(self, count: int = 8, max_steps: int = 96) -> None:
        super().__init__(count)
        self.max_steps = max_steps  # piano rolls: the first steps of each piece

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not any_takers(trainer):
            return
        with own_random_stream(pl_module, trainer.global_step):
            for name, picture in self.draw(pl_module).items():
                log_image(trainer, name, picture, trainer.global_step)

    def draw(self, pl_module: L.LightningModule) -> dict[str, Any]:
        """Name -> picture, (H, W) grey or (H, W, 3) colour in [0, 1]."""
        metadata = pl_module.hparams.data_metadata
        if metadata["image_layout"] == "frames":  # the truth over the best, a random and the worst future
            return {"images/futures": prediction_strip(pl_module.model, self.first_batch.x, metadata["seen"])}
        if metadata["image_layout"] == "piano_roll":  # pieces of their own lengths, octaves marked, real beside model
            batch = self.first_batch
            return piano_roll_pictures(
                pl_module.model, batch.x, batch.mask, metadata["lowest_midi"], max_steps=self.max_steps
            )
        return picture_grids(pl_module.model, self.first_batch.x, metadata["image_layout"])
