"""Batches of sequences of different lengths (music pieces, utterances): padded at the end with a mask, whole
for evaluation (sorted by length, so a batch holds similar lengths), random crops for training."""

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from vrnn_lightning.data.base import Batch
from vrnn_lightning.data.resumable import EpochDraws, ResumableLoader


def pad(pieces: list[Tensor]) -> Batch:
    """Pieces (T_i, ...) -> Batch(x (B, T_max, ...) zero-padded at the end, mask (B, T_max))."""
    longest = max(len(p) for p in pieces)
    x = pieces[0].new_zeros(len(pieces), longest, *pieces[0].shape[1:])
    mask = torch.zeros(len(pieces), longest)
    for i, piece in enumerate(pieces):
        x[i, : len(piece)] = piece
        mask[i, : len(piece)] = 1
    return Batch(x, mask)


def by_length(pieces: list[Tensor], batch_size: int) -> list[Batch]:
    """Every piece once, whole, in batches of similar lengths (sorted), so padding stays small."""
    ordered = sorted(pieces, key=len)
    return [pad(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]


class RandomCrops(EpochDraws):
    """Batches of random crops: pieces drawn at random, each cropped at a random offset to at most `max_len`."""

    def __init__(
        self,
        pieces: list[Tensor],
        max_len: int,
        batch_size: int,
        num_batches: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(seed, batch_size, rank, world_size)
        self.pieces, self.max_len, self.num_batches = pieces, max_len, num_batches
        self.lengths = torch.tensor([len(p) for p in pieces])

    def __len__(self) -> int:
        return self.num_batches

    def draws(self, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(self.num_batches):
            chosen = torch.randint(len(self.pieces), (self.global_batch,), generator=generator)
            lengths = self.lengths[chosen].clamp(max=self.max_len)
            room = self.lengths[chosen] - lengths + 1
            starts = (torch.rand(len(chosen), generator=generator) * room).long()
            crops = [
                self.pieces[i][s : s + n]
                for i, s, n in zip(chosen.tolist(), starts.tolist(), lengths.tolist(), strict=True)
            ]
            yield pad(crops[self.own])


class VariableLengthLoaders:
    """The loaders of a data module whose splits are lists of sequences of different lengths: random crops of
    at most `max_len` steps for training, every sequence whole, by length, for validation and test. Mixed in
    before `SequenceDataModule`; the module implements `split_sequences` and sets the sizes below."""

    max_len: int
    batch_size: int
    batches_per_epoch: int
    eval_batch_size: int
    seed: int
    trainer: Any

    def split_sequences(self, split: str) -> list[Tensor]:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        crops = RandomCrops(
            self.split_sequences("train"), self.max_len, self.batch_size, self.batches_per_epoch, self.seed, rank, world
        )
        return ResumableLoader(crops)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(by_length(self.split_sequences("val"), self.eval_batch_size), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(by_length(self.split_sequences("test"), self.eval_batch_size), batch_size=None)
