"""Progress and model summary as a step-based run wants them: steps out of `max_steps`, no empty FLOPs column."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary import get_human_readable_count


class StepProgressBar(RichProgressBar):
    """Lightning's rich bar, counting optimiser steps out of `trainer.max_steps` over the whole fit instead of
    batches of an epoch out of `max_epochs` (which reads "Epoch 3/-2" when only the steps are bounded)."""

    def _by_steps(self) -> bool:
        return self.trainer.max_steps > 0

    @property
    def total_train_batches(self) -> int | float:
        return self.trainer.max_steps if self._by_steps() else super().total_train_batches

    def _get_train_description(self, current_epoch: int) -> str:
        return "Step" if self._by_steps() else super()._get_train_description(current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._by_steps() and self.train_progress_bar_id is not None:
            return  # one bar for the whole fit: an epoch is no reason to start it again
        super().on_train_epoch_start(trainer, pl_module)
        if self._by_steps():
            self._update(self.train_progress_bar_id, trainer.global_step)  # a resumed run starts where it stopped

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._by_steps():
            self._update(self.train_progress_bar_id, trainer.global_step)


class ParameterSummary(ModelSummary):
    """The model's parts and their parameter counts. Lightning's summary adds a FLOPs column that stays 0
    without an example input, and the module has no single example: its batches' lengths vary."""

    def __init__(self, max_depth: int = 2) -> None:
        super().__init__(max_depth=max_depth)

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        **kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = dict(summary_data)
        table = Table(header_style="bold magenta")
        for name in ("Name", "Type", "Params"):
            table.add_column(name, justify="right" if name == "Params" else "left")
        for row in zip(columns["Name"], columns["Type"], columns["Params"], strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        console.print(
            f"[bold]Parameters[/]: {get_human_readable_count(int(total_parameters))} "
            f"({get_human_readable_count(int(trainable_parameters))} trainable), {model_size:.1f} MB"
        )
