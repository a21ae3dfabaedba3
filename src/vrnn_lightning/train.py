"""Train a VRNN: python -m vrnn_lightning.train [model=vrnn] [data=shakespeare] [trainer=gpu] [key=value ...]

Seeds, builds data, model (its likelihood sized by the data), module, loggers, callbacks and trainer from
conf/, fits, tests the best checkpoint and prints the final metrics and the run folder.
"""

import json
import logging
import os
import shlex
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from omegaconf import DictConfig

from vrnn_lightning.data.base import figure_value
from vrnn_lightning.errors import ConfigError, one_line_errors, run_cli
from vrnn_lightning.launch.config_checks import check_config
from vrnn_lightning.launch.console import quiet_library_noise, route_lightning_logs_to_hydra
from vrnn_lightning.launch.hparams import announce_settings, record_hparams
from vrnn_lightning.launch.ranks import (
    first_process_on_node,
    fresh_ddp_state_afterwards,
    relaunch_ddp_ranks_as_this_job,
    requeued_job_checkpoint,
)
from vrnn_lightning.launch.sweep_checks import check_sweep_jobs
from vrnn_lightning.launch.tracker_history import continue_run, runs_to_continue
from vrnn_lightning.launch.trackers import SWEPT, guarded, make_local_stores, register_resolvers
from vrnn_lightning.launch.trainer_arguments import with_trainer_arguments
from vrnn_lightning.training.callbacks import RunInterrupted
from vrnn_lightning.training.checkpoints import read_checkpoint

log = logging.getLogger(__name__)
register_resolvers()  # the logger configs' run names, before Hydra composes them
FINISHED: list[tuple[Path, dict[str, float]]] = []  # (run folder, final figures) of the runs this process finished


CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that capture CUDA graphs


def check_accelerator(accelerator: str, compile_mode: object, cuda_graphs: object = "auto") -> None:
    """Fail early, in one line, where the config asks for a GPU the machine does not have, or for CUDA graphs
    on the CPU (where torch.compile would quietly leave them out: refused, so no run claims them falsely)."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer=gpu asks for a CUDA GPU but none is visible; use trainer=cpu (or trainer=default)")
    on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
    if cuda_graphs is True and on_cpu:
        raise ConfigError(
            "module.cuda_graphs=true replays the model as CUDA graphs, which need a GPU; use module.cuda_graphs=auto "
            "(eager on the CPU) or false"
        )
    if compile_mode in CUDA_GRAPH_MODES and on_cpu:
        raise ConfigError(
            f"model.compile={compile_mode} captures CUDA graphs, which need a GPU; use model.compile=true on the CPU"
        )


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test as `cfg` says; returns the final metrics, on rank 0 only (empty on other DDP ranks).
    Callable without Hydra's main (tests do)."""
    check_config(cfg, "train")
    check_accelerator(
        str(cfg.trainer.get("accelerator", "auto")), cfg.model.get("compile"), cfg.module.get("cuda_graphs", "auto")
    )
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = instantiate(cfg.data, _convert_="all")  # plain containers: checkpoints load with weights_only
    if first_process_on_node():
        datamodule.prepare_data()  # download and checksum now: a bad file is one line, before the trainer's logs
    model = instantiate(cfg.model, likelihood={"x_dim": datamodule.x_dim})
    objective = instantiate(cfg.objective, _convert_="all")
    module = instantiate(
        cfg.module, model=model, objective=objective, data_metadata=datamodule.metadata, _convert_="all"
    )
    # `callbacks.progress_bar=null` switches one callback off, `~logger` every logger.
    # A tracker that fails mid-run is left out with a warning (launch/trackers.py); TensorBoard is not guarded
    resume_from = cfg.get("ckpt_path") or requeued_job_checkpoint(cfg)
    continued = runs_to_continue(resumed_checkpoint(cfg, resume_from))  # a resumed run keeps its tracker runs
    make_local_stores(cfg)
    loggers = [guarded(instantiate(c, **continue_run(c, continued))) for c in (cfg.get("logger") or {}).values() if c]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if not loggers:  # `~logger`: Lightning refuses a learning-rate monitor with nothing to write to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    # Without a progress-bar callback (callbacks.progress_bar=null) there is none: Lightning would add its own.
    progress = any(isinstance(c, ProgressBar) for c in callbacks)
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=loggers or False, callbacks=callbacks, enable_progress_bar=progress
    )
    log.info(
        "model: %s parameters; objective: %s", f"{sum(p.numel() for p in model.parameters()):,}", objective.describe()
    )
    if trainer.is_global_zero:
        announce_settings(trainer.loggers, cfg)

    start = time.perf_counter()
    # Plain data only, whatever the trainer's checkpoint IO: a checkpoint file must not run code
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    checkpoint_callback = trainer.checkpoint_callback
    if checkpoint_callback is not None and checkpoint_callback.best_model_score is not None:
        # best_val_loss (the ELBO), best_val_iw_bound or best_val_fivo_bound: what the checkpoint was chosen by
        best = f"best_{checkpoint_callback.monitor.replace('/', '_')}"
        metrics[best] = float(checkpoint_callback.best_model_score)
        for name, figure in datamodule.metadata["figures"].items():  # e.g. best_val_bpc, an Optuna objective
            if figure["per"] == "step" and best == "best_val_loss":
                metrics[f"best_val_{name}"] = figure_value(figure, metrics[best], None, None)
    if cfg.get("test"):
        best = checkpoint_callback.best_model_path if checkpoint_callback else ""
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    metrics["wall_s"] = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}
    (Path(cfg.paths.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    FINISHED.append((Path(cfg.paths.output_dir).resolve(), metrics))  # what vrnn_lightning.fit returns
    record_hparams(trainer.loggers, cfg, metrics)  # a row of TensorBoard's HPARAMS table
    return metrics


def resume_command(cfg: DictConfig) -> str:
    """The command that continues this run in its own folder from its last.ckpt."""
    kept = [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+~") != "ckpt_path"]
    words = ["python", "-m", "vrnn_lightning.train", *kept, f"hydra.run.dir={cfg.paths.output_dir}", "ckpt_path=last"]
    return " ".join(shlex.quote(w) for w in words)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns `optimized_metric` (set by hparams_search configs) for Hydra's sweepers."""
    route_lightning_logs_to_hydra()
    quiet_library_noise()
    relaunch_ddp_ranks_as_this_job()
    with one_line_errors(), fresh_ddp_state_afterwards():
        try:
            metrics = train(cfg)
        except RunInterrupted as stop:
            stop.resume_command = resume_command(cfg)
            raise
    if not metrics:  # a DDP rank above 0: rank 0 reports
        return None
    for name in sorted(metrics):
        print(f"{name:>24}: {metrics[name]:.4f}")
    print(f"run folder: {cfg.paths.output_dir}")
    objective = cfg.get("optimized_metric")
    return metrics.get(objective) if objective else None


def resumed_checkpoint(cfg: DictConfig, resume_from: str | None) -> dict | None:
    """The checkpoint a run resumes from, read as plain data (`ckpt_path=last`: its own folder's last.ckpt)."""
    if not resume_from:
        return None
    path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt" if resume_from == "last" else Path(resume_from)
    return read_checkpoint(str(path)) if path.is_file() else None


def prepared_command_line(argv: list[str]) -> list[str]:
    """The command line Hydra reads: Trainer arguments settable without `+`, and a sweep's every job checked
    before the first starts."""
    argv = with_trainer_arguments(argv)
    swept = check_sweep_jobs(argv)
    if swept:  # the trackers name each job's run by its values of these (launch/trackers.py)
        os.environ[SWEPT] = ",".join(swept)
    return argv


def cli() -> None:
    """`vrnn-train`, and `python -m vrnn_lightning.train`."""
    run_cli(main, rewrite=prepared_command_line)


if __name__ == "__main__":
    cli()
