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

import logging
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

    device = pick_device(checked_device(device))
    checkpoint = read_checkpoint(str(path))
    model = load_module(checkpoint).model.to(device).eval()
    data = datamodule_from_checkpoint(checkpoint, **data_settings)
    data.setup("test")
    return model, data


def checked_device(device: Any) -> str:
    """`device` as torch names it (auto, cpu, cuda, cuda:<index>, ...), or one ConfigError line."""
    import torch

    from vrnn_lightning.errors import ConfigError

    if str(device) == "auto":
        return "auto"
    try:
        parsed = torch.device(str(device))
    except RuntimeError:
        raise ConfigError(f"device={device!r} is not a device torch knows; use cpu, cuda or cuda:<index>") from None
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device!r} asks for CUDA GPU {parsed.index}, and {torch.cuda.device_count()} are visible; "
            "use cuda or cpu"
        )
    return "cuda" if str(parsed) == "cuda" else str(parsed)


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
        try:
            train.main()
        except Exception as err:
            found = config_error_in(err)  # bad input found inside the run: its line, not Hydra's wrapping
            if found is None:
                raise
            raise found from None
    runs = [Run(folder, metrics) for folder, metrics in train.FINISHED[before:]]
    return runs if multirun else runs[-1]


def config_error_in(err: BaseException) -> BaseException | None:
    """The ConfigError that caused `err` (Hydra wraps one raised while it builds an object), if any."""
    from vrnn_lightning.errors import ConfigError

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


@contextmanager
def command_line(argv: list[str]):
    """`sys.argv` as Hydra's main reads it, and errors raised rather than reported in one line and exited; the
    process's environment and logging as they were afterwards, whatever the run set in them (HYDRA_FULL_ERROR, the swept
    settings, DDP's addresses). What torch and Lightning set once, when `fit` first imports them, stays:
    Lightning's PYTORCH_NVML_BASED_CUDA_CHECK keeps CUDA uninitialised, which a notebook's DDP needs."""
    saved_argv, saved_environ = sys.argv, dict(os.environ)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level  # Hydra points the root logger at the run's log
    sys.argv, os.environ["HYDRA_FULL_ERROR"] = argv, "1"
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in saved_handlers:  # the run's log file, closed: its folder may be gone (bad input)
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        sys.argv = saved_argv
        for name in set(os.environ) - set(saved_environ):
            del os.environ[name]
        for name, value in saved_environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
