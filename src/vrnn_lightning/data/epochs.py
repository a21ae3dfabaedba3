"""Training batches that a resumed run draws exactly as the uninterrupted run would have."""

from typing import Any


class ResumableEpochs:
    """Mixin for data modules whose training dataset draws each epoch from a generator seeded by (seed, epoch).

    The dataset counts the epochs it has drawn in `.epoch`; that count rides in every checkpoint (Lightning
    saves a data module's `state_dict`), and a resumed run's new dataset starts from it instead of epoch 0.
    """

    epochs_drawn: int = 0
    train_batches: Any = None  # the dataset behind the current train_dataloader

    def resume_epochs(self, dataset: Any) -> Any:
        """Start `dataset` at the restored epoch count and remember it, for train_dataloader."""
        dataset.epoch = self.epochs_drawn
        self.train_batches = dataset
        return dataset

    def state_dict(self) -> dict[str, Any]:
        drawn = self.train_batches.epoch if self.train_batches is not None else self.epochs_drawn
        return {"train_epochs_drawn": drawn}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs_drawn = int(state_dict.get("train_epochs_drawn", 0))
