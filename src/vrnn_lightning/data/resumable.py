"""Training batches that a resumed run draws exactly as the uninterrupted run would have, saved and restored
through the `state_dict` / `load_state_dict` interface Lightning checks on a training DataLoader."""

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from vrnn_lightning.data.base import Batch


class EpochDraws(IterableDataset):
    """A training set drawn anew each epoch, epoch e from a generator seeded by `seed + e`.

    Its position is (the epoch, the batches drawn from it). Lightning reads a loader of known length without
    prefetching, so the batches drawn are the batches trained on when a checkpoint is written, and a resumed
    set draws its epoch again from the start, discarding the batches already trained on, so that the random
    stream goes on exactly as it did. Subclasses implement `draws` and `__len__`.

    Under DDP every rank draws the same global batch of `world_size * batch_size` examples and keeps its own
    slice (`own`), so a DDP run sees the data of one process with the global batch.
    """

    def __init__(self, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        self.seed, self.batch_size, self.rank, self.world_size = seed, batch_size, rank, world_size
        self.epoch, self.next_epoch, self.drawn, self.skip = -1, 0, 0, 0

    @property
    def global_batch(self) -> int:
        return self.world_size * self.batch_size

    @property
    def own(self) -> slice:
        """This rank's part of a global batch."""
        return slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)

    def draws(self, generator: torch.Generator) -> Iterator[Batch]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        self.epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        skip, self.skip, self.drawn = self.skip, 0, 0
        for i, batch in enumerate(self.draws(torch.Generator().manual_seed(self.seed + self.epoch))):
            self.drawn = i + 1
            if i >= skip:
                yield batch

    def position(self) -> dict[str, int]:
        """Where the next batch comes from: an epoch and how many of its batches were already trained on."""
        if self.epoch < 0 or self.drawn >= len(self):
            return {"epoch": self.next_epoch, "drawn": 0}
        return {"epoch": self.epoch, "drawn": self.drawn}

    def seek(self, position: dict[str, int]) -> None:
        self.next_epoch, self.skip = int(position["epoch"]), int(position["drawn"])


class ResumableLoader(DataLoader):
    """A DataLoader (main process, one batch per item) over `EpochDraws`, whose position rides in every
    checkpoint: Lightning saves `state_dict()` and hands it back to `load_state_dict` on resume."""

    def __init__(self, dataset: EpochDraws, pin_memory: bool = False) -> None:
        super().__init__(dataset, batch_size=None, pin_memory=pin_memory)

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.position()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.dataset.seek(state_dict)
