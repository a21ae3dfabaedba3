"""LightningDataModules behind the data contract (`base.py`). They import no model and no training code: the
data reaches the model as tensors (`Batch(x, mask)`) and one metadata dict."""

from vrnn_lightning.data.arrays import ArraysDataModule
from vrnn_lightning.data.base import Batch, SampleRequest, SequenceDataModule
from vrnn_lightning.data.bouncing_balls import BouncingBallsDataModule
from vrnn_lightning.data.mnist import MNISTDataModule
from vrnn_lightning.data.moving_mnist import MovingMNISTDataModule
from vrnn_lightning.data.polyphonic import PolyphonicDataModule
from vrnn_lightning.data.text import CharDataModule, Vocabulary, load_corpus
from vrnn_lightning.data.uea import UEADataModule
from vrnn_lightning.data.video_files import FramesDataModule

__all__ = [
    "ArraysDataModule",
    "Batch",
    "BouncingBallsDataModule",
    "CharDataModule",
    "FramesDataModule",
    "MNISTDataModule",
    "MovingMNISTDataModule",
    "PolyphonicDataModule",
    "SampleRequest",
    "SequenceDataModule",
    "UEADataModule",
    "Vocabulary",
    "load_corpus",
]
