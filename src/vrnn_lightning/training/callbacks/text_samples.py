"""A generated text after every validation: TensorBoard's TEXT tab, MLflow's artifacts, W&B's media."""

import lightning as L

from vrnn_lightning.data.text import Vocabulary, sample_text
from vrnn_lightning.training.callbacks.draws import own_random_stream
from vrnn_lightning.training.callbacks.media import any_takers, log_text


class TextSamples(L.Callback):
    """`length` characters continuing `prompt`, decoded with the vocabulary of the data's metadata."""

    def __init__(self, length: int = 300, prompt: str = "", temperature: float = 1.0) -> None:
        if length < 1:
            raise ValueError(
                f"callbacks.text_samples.length must be >= 1 (null the callback to switch it off), got {length}"
            )
        self.length, self.prompt, self.temperature = length, prompt, temperature

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not any_takers(trainer):
            return
        vocab = Vocabulary(pl_module.hparams.data_metadata["vocab"])
        with own_random_stream(pl_module, trainer.global_step):
            text = sample_text(pl_module.model, vocab, self.prompt, self.length, self.temperature)
        log_text(trainer, "samples", text, trainer.global_step)
