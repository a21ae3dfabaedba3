"""A generated text in TensorBoard's TEXT tab after every validation."""

import lightning as L

from vrnn_lightning.data.text import Vocabulary, sample_text
from vrnn_lightning.training.callbacks.draws import own_random_stream
from vrnn_lightning.training.callbacks.tensorboard import tensorboard_of


class TextSamples(L.Callback):
    """`length` characters continuing `prompt`, decoded with the vocabulary of the data's metadata."""

    def __init__(self, length: int = 300, prompt: str = "", temperature: float = 1.0) -> None:
        if length < 1:
            raise ValueError(
                f"callbacks.text_samples.length must be >= 1 (null the callback to switch it off), got {length}"
            )
        self.length, self.prompt, self.temperature = length, prompt, temperature

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        experiment = tensorboard_of(trainer)
        if trainer.sanity_checking or not trainer.is_global_zero or not hasattr(experiment, "add_text"):
            return
        vocab = Vocabulary(pl_module.hparams.data_metadata["vocab"])
        with own_random_stream(pl_module, trainer.global_step):
            text = sample_text(pl_module.model, vocab, self.prompt, self.length, self.temperature)
        # Markdown would eat the line breaks of verse; an indented block keeps them.
        experiment.add_text("samples", "    " + text.replace("\n", "\n    "), trainer.global_step)
