"""Hydra callbacks: hooks that must run before Hydra writes into a run folder."""

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vrnn_lightning.errors import exit_with

LIGHTNING_CKPT_NAMES = ("last", "best", "hpc")  # resolved by Lightning inside the run's own folder


def make_folder(folder: Path, setting: str) -> None:
    """Create `folder` now, so an unwritable place is one line instead of a traceback from Hydra's logging."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError("not writable")
    except OSError as err:
        exit_with(
            f"cannot use {folder} as the output folder ({getattr(err, 'strerror', None) or err}); "
            f"set {setting} to a writable place"
        )


def resumes_own_run(config: DictConfig, run_dir: Path) -> bool:
    """A training run that resumes from a checkpoint of the run in `run_dir` may write into `run_dir`."""
    ckpt_path = config.get("ckpt_path")
    if config.hydra.job.config_name != "train" or ckpt_path is None:
        return False
    return ckpt_path in LIGHTNING_CKPT_NAMES or run_dir.resolve() in Path(ckpt_path).resolve().parents


class RefuseUsedRunFolder(Callback):
    """Stop before Hydra writes .hydra/ and logs into a folder an earlier run already filled, or into a folder
    that cannot be written.

    A training run resuming its own checkpoint (`ckpt_path=last`, or a path inside the folder) may reuse its
    folder, and so may the processes Lightning's DDP launcher starts for ranks above 0 (they are told rank 0's
    folder and write no .hydra/ of their own).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        ddp_child = os.environ.get("LOCAL_RANK", "0") != "0"
        if not (resumes_own_run(config, run_dir) or ddp_child) and run_dir.is_dir() and any(run_dir.iterdir()):
            exit_with(
                f"run folder {run_dir} already holds an earlier run; choose a new hydra.run.dir "
                "(or resume that run with ckpt_path=last)"
            )
        make_folder(run_dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir() and any(sweep_dir.iterdir()):
            exit_with(f"sweep folder {sweep_dir} already holds an earlier sweep; choose a new hydra.sweep.dir")
        make_folder(sweep_dir, "hydra.sweep.dir")
