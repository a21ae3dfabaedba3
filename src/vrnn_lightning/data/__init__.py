"""LightningDataModules. They import no model: the vocabulary reaches the model through train.py."""

from vrnn_lightning.data.mnist import MNISTDataModule
from vrnn_lightning.data.shakespeare import CharDataModule, Vocabulary, load_corpus

__all__ = ["CharDataModule", "MNISTDataModule", "Vocabulary", "load_corpus"]
