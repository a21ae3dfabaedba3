"""Train a VRNN: python -m vrnn_lightning.train [model=vrnn] [data=shakespeare] [trainer=gpu] [key=value ...]

Seeds, builds data, network, module, loggers, callbacks and trainer from conf/, fits, tests the best
checkpoint and prints the final metrics and the run folder.
"""

import json
import logging
import math
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from vrnn_lightning.errors import ConfigError, check_group_choices, one_line_errors
from vrnn_lightning.launching import (
    first_process_on_node,
    fresh_ddp_state_afterwards,
    relaunch_ddp_ranks_as_this_job,
    requeued_job_checkpoint,
    route_lightning_logs_to_hydra,
)

log = logging.getLogger(__name__)


def check_accelerator(accelerator: str) -> None:
    """Fail early, in one line, where the config asks for a GPU the machine does not have."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer=gpu asks for a CUDA GPU but none is visible; use trainer=cpu (or trainer=default)")


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
