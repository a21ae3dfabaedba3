"""Hydra callbacks: hooks that must run before Hydra writes into a run folder."""

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class RefuseUsedRunFolder(Callback):
    """Stop before Hydra writes .hydra/ and logs into a folder an earlier run already filled.

    A resumed training run (`ckpt_path=` set) may reuse its own folder, and so may the processes Lightning's
    DDP launcher starts for ranks above 0 (they are told rank 0's folder and write no .hydra/ of their own).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        resuming = config.hydra.job.config_name == "train" and config.get("ckpt_path") is not None
        ddp_child = os.environ.get("LOCAL_RANK", "0") != "0"
        if not (resuming or ddp_child) and run_dir.is_dir() and any(run_dir.iterdir()):
            print(f"error: run folder {run_dir} already holds an earlier run; choose a new hydra.run.dir "
                  "(or resume that run with ckpt_path=)", file=sys.stderr)
            sys.exit(2)
