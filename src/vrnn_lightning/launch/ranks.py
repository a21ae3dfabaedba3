"""Where a training run lives among processes: DDP ranks, jobs of a multirun, requeued SLURM jobs.

Lightning + Hydra projects are known to break at these seams (ranks that start sweeps of their own, DDP state
leaking into the next job, logs lost to stderr); each function here closes one, so train.py stays a short main.
"""

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, read_write

log = logging.getLogger(__name__)


def first_process_on_node() -> bool:
    """Whether this process is the one that prepares data on its machine (Lightning prepares again, cheaply)."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))) == 0


def requeued_job_checkpoint(cfg: DictConfig) -> str | None:
    """The last.ckpt a job finds in its own run folder: the job was pre-empted or timed out and is being rerun
    (a requeued SLURM job; a single run never starts in a used folder, see run_folders.py)."""
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    log.info("resuming from %s: this job ran before in this folder", last)
    return str(last)


def relaunch_ddp_ranks_as_this_job() -> None:
    """Lightning's DDP launcher starts ranks above 0 by rerunning `sys.argv` as a single Hydra run in
    `hydra.run.dir`. In a multirun job that command line is the whole sweep, and that folder is not the job's:
    point both at this job, so its ranks join it instead of starting a sweep of their own."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hydra_cfg = HydraConfig.instance().cfg
    sys.argv = [sys.argv[0], *hydra_cfg.hydra.overrides.task]
    with read_write(hydra_cfg.hydra.run):
        hydra_cfg.hydra.run.dir = hydra_cfg.hydra.runtime.output_dir


@contextmanager
def fresh_ddp_state_afterwards() -> Iterator[None]:
    """Leave no DDP state to the next job of a multirun in this process: Lightning's launcher exports
    LOCAL_RANK, WORLD_SIZE and MASTER_* here (the next job would take its ranks to exist already) and keeps
    its process group."""
    environment = dict(os.environ)
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(environment)
