"""Train a VRNN: python -m vrnn_lightning.train [model=vrnn] [data=shakespeare] [trainer=gpu] [key=value ...]

Seeds, builds data, network, module, loggers, callbacks and trainer from conf/, fits, tests the best
checkpoint and prints the final metrics and the run folder.
"""

import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, read_write

from vrnn_lightning.errors import ConfigError, check_group_choices, one_line_errors

log = logging.getLogger(__name__)


def check_accelerator(accelerator: str) -> None:
    """Fail early, in one line, where the config asks for a GPU the machine does not have."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer=gpu asks for a CUDA GPU but none is visible; use trainer=cpu (or trainer=default)")


def first_process_on_node() -> bool:
    """Whether this process is the one that prepares data on its machine (Lightning prepares again, cheaply)."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))) == 0


def route_lightning_logs_to_hydra() -> None:
    """Lightning gives its loggers a handler of their own on stderr when imported before logging is set up;
    hand their lines to Hydra's handlers instead (the console on stdout and the run's log file), so stderr
    keeps warnings and errors only."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def requeued_job_checkpoint(cfg: DictConfig) -> str | None:
    """The last.ckpt a job finds in its own run folder: the job was pre-empted or timed out and is being rerun
    (a requeued SLURM job; a single run never starts in a used folder, see hydra_callbacks.py)."""
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


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test as `cfg` says; returns the final metrics, on rank 0 only (empty on other DDP ranks).
    Callable without Hydra's main (tests do)."""
    check_accelerator(str(cfg.trainer.get("accelerator", "auto")))
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = instantiate(cfg.data, _convert_="all")  # plain containers: checkpoints load with weights_only
    if first_process_on_node():
        datamodule.prepare_data()  # download and checksum now: a bad file is one line, before the trainer's logs
    net = instantiate(cfg.model, x_dim=datamodule.x_dim)
    module = instantiate(cfg.module, net=net, **datamodule.metadata)
    # `callbacks.progress_bar=null` (or `logger=null`) switches one off.
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    log.info("network: %s parameters", f"{sum(p.numel() for p in net.parameters()):,}")

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path") or requeued_job_checkpoint(cfg))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    checkpoint_callback = trainer.checkpoint_callback
    if checkpoint_callback is not None and checkpoint_callback.best_model_score is not None:
        metrics["best_val_loss"] = float(checkpoint_callback.best_model_score)
        if "val/bpc" in metrics:
            metrics["best_val_bpc"] = metrics["best_val_loss"] / math.log(2)
    if cfg.get("test"):
        best = checkpoint_callback.best_model_path if checkpoint_callback else ""
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    metrics["wall_s"] = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}
    (Path(cfg.paths.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns `optimized_metric` (set by hparams_search configs) for Hydra's sweepers."""
    route_lightning_logs_to_hydra()
    relaunch_ddp_ranks_as_this_job()
    with one_line_errors(), fresh_ddp_state_afterwards():
        metrics = train(cfg)
    if not metrics:  # a DDP rank above 0: rank 0 reports
        return None
    for name in sorted(metrics):
        print(f"{name:>12}: {metrics[name]:.4f}")
    print(f"run folder: {cfg.paths.output_dir}")
    objective = cfg.get("optimized_metric")
    return metrics.get(objective) if objective else None


if __name__ == "__main__":
    with one_line_errors():
        check_group_choices(sys.argv[1:])
    main()
