"""The notebook entry point: `model, data = vrnn_lightning.load(path)`.

A checkpoint alone (read as every command reads one: plain data only, the project's classes only) becomes the
trained model, in eval mode on `device`, and the data module it was trained with, set up, whose own
conversions are at hand: text's `data.encode(str) -> ids` and `data.decode(ids) -> str`, every module's
loaders of real sequences (`data.test_dataloader()`), `data.metadata` (units, figures, vocabulary). Examples
in docs/guide.md ("From Python"), run as they stand by tests/test_api.py.
"""

from pathlib import Path
from typing import Any

from vrnn_lightning.data.base import SequenceDataModule
from vrnn_lightning.models import SequenceModel
from vrnn_lightning.training.checkpoints import datamodule_from_checkpoint, load_module, read_checkpoint


def load(path: str | Path, device: str = "cpu", **data_settings: Any) -> tuple[SequenceModel, SequenceDataModule]:
    """(model, data module) of a training checkpoint; `data_settings` change the data module's own, e.g.
    `root=` where its files now live. A file that is not a checkpoint of this project: one ConfigError line."""
    checkpoint = read_checkpoint(str(path))
    model = load_module(checkpoint).model.to(device).eval()
    data = datamodule_from_checkpoint(checkpoint, **data_settings)
    data.setup("test")
    return model, data
