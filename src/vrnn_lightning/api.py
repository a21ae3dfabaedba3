"""The notebook entry points: `run = vrnn_lightning.fit("data.seq_len=64", ...)` trains, and
`model, data = vrnn_lightning.load(path)` reads what a run left.

`fit` runs the console command's own code path in this process: Hydra's main with the given overrides, so the
packaged configs compose with them exactly as on the command line (checks before any folder, run-folder claims,
sweeps and launchers, `--config-dir` for a user's own configs), and returns what the run reached and where it
lives, so a notebook never shells out. Errors are raised as exceptions with their tracebacks (as with
HYDRA_FULL_ERROR=1), not printed and exited.

A checkpoint alone (read as every command reads one: plain data only, the project's classes only) becomes the
trained model, in eval mode on `device`, and the data module it was trained with, set up, whose own
conversions are at hand: text's `data.encode(str) -> ids` and `data.decode(ids) -> str`, every module's
loaders of real sequences (`data.test_dataloader()`), `data.metadata` (units, figures, vocabulary). Examples
in docs/guide.md ("From Python"), run as they stand by tests/test_api.py.
"""

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrnn_lightning.data.base import SequenceDataModule
from vrnn_lightning.models import SequenceModel
from vrnn_lightning.training.checkpoints import datamodule_from_checkpoint, load_module, read_checkpoint


def load(path: str | Path, device: str = "cpu", **data_settings: Any) -> tuple[SequenceModel, SequenceDataModule]:
    """(model, data module) of a training checkpoint; `data_settings` change the data module's own, e.g.
    `root=` where its files now live. A file that is not a checkpoint of this project: one ConfigError line."""
    from vrnn_lightning.eval import pick_device

    device = pick_device(str(device)) if str(device) in ("auto", "cpu", "cuda") else device
    checkpoint = read_checkpoint(str(path))
    model = load_module(checkpoint).model.to(device).eval()
    data = datamodule_from_checkpoint(checkpoint, **data_settings)
    data.setup("test")
    return model, data


@dataclass
class Run:
    """A finished training run: its folder (checkpoints/, metrics.json, tensorboard/) and its final figures."""

    folder: Path
    metrics: dict[str, float]

    @property
    def checkpoint(self) -> Path:
        """The best checkpoint by the validation bound (the last one where none was chosen)."""
        best = sorted((self.folder / "checkpoints").glob("best-*.ckpt"))
        return best[-1] if best else self.folder / "checkpoints" / "last.ckpt"


def fit(*overrides: str, config_dir: str | Path | None = None, multirun: bool = False) -> Run | list[Run]:
    """Train as `vrnn-train [--config-dir DIR] [-m] OVERRIDES...` does, in this process; the finished run, or
    with `multirun=True` the sweep's runs in job order (the sweep folder is their `folder.parent`)."""
    from vrnn_lightning import train
    from vrnn_lightning.errors import check_command_line, check_group_choices

    argv = [*(["--config-dir", str(config_dir)] if config_dir is not None else []), *(["-m"] if multirun else [])]
    argv += list(overrides)
    before = len(train.FINISHED)
    with command_line(["vrnn-train", *argv]):
        check_command_line(argv, "train")
        check_group_choices(argv)
        sys.argv = ["vrnn-train", *train.prepared_command_line(argv)]
        train.main()
    runs = [Run(folder, metrics) for folder, metrics in train.FINISHED[before:]]
    return runs if multirun else runs[-1]


@contextmanager
def command_line(argv: list[str]):
    """`sys.argv` as Hydra's main reads it, and errors raised rather than reported in one line and exited."""
    from vrnn_lightning.launch.trackers import SWEPT

    saved_argv, saved = sys.argv, {name: os.environ.get(name) for name in ("HYDRA_FULL_ERROR", SWEPT)}
    sys.argv, os.environ["HYDRA_FULL_ERROR"] = argv, "1"
    try:
        yield
    finally:  # the process's environment as it was
        sys.argv = saved_argv
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
