"""Each run's settings beside its final figures, for TensorBoard's HPARAMS tab (and as params and final metrics
for the other trackers): the jobs of a sweep become the
rows of one table (`tensorboard --logdir <sweep folder>`), a column per setting and one per figure.

Lightning's `default_hp_metric` is off in conf/logger/tensorboard.yaml (its placeholder -1 would stand in the
table as if it were a figure); instead, when a run ends, `record_hparams` logs the composed config, flattened,
with the figures it reached under `hparams/<figure>`, a tag of their own, so they do not add a point to the
training curves of the same names.
"""

from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.launch.trackers import kind

GROUPS = ("model", "data", "objective", "module")
TRAINER_KEYS = ("max_steps", "precision", "gradient_clip_val", "accumulate_grad_batches")
NOT_SETTINGS = ("mirrors", "checksums", "_partial_")  # how files are fetched, not what is trained


def flat(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in NOT_SETTINGS:
                out.update(flat(value, f"{prefix}.{key}"))
        return out
    if node is None or isinstance(node, list):
        return {prefix: str(node)}
    return {prefix: node}


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """The settings that tell runs apart, flat (`model.z_dim`, `model.likelihood._target_`, `module.optimizer.lr`,
    `data.seq_len`, `seed`, ...), with the config options chosen (`choice/model`, `choice/experiment`)."""
    settings: dict[str, Any] = {"seed": cfg.get("seed")}
    for group in GROUPS:
        if cfg.get(group) is not None:
            settings.update(flat(OmegaConf.to_container(cfg[group], resolve=True), group))
    for key in TRAINER_KEYS:
        if key in (cfg.get("trainer") or {}):
            settings[f"trainer.{key}"] = flat(cfg.trainer[key], "")[""]
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    for group, option in choices.items():
        if not str(group).startswith("hydra") and option is not None:
            settings[f"choice/{group}"] = str(option)
    return settings


def final_figures(metrics: dict[str, float]) -> dict[str, float]:
    """What a run reached: the best validation figures, the test figures, latent use, wall time."""
    kept = {k: v for k, v in metrics.items() if k.startswith(("best_val", "test/")) or k in ("wall_s",)}
    for usage in ("val/active_units", "val/units_off_prior"):
        if usage in metrics:
            kept[usage] = metrics[usage]
    return {f"hparams/{k}": float(v) for k, v in kept.items()}


def announce_settings(loggers: list[Any], cfg: DictConfig) -> None:
    """The run's settings, as it starts, to the trackers that show them while it runs (CSV's hparams.yaml,
    MLflow's params, W&B's config); TensorBoard takes them with the final figures (`record_hparams`)."""
    for logger in loggers:
        if kind(logger) != "TensorBoardLogger":
            logger.log_hyperparams(run_settings(cfg))


def record_hparams(loggers: list[Any], cfg: DictConfig, metrics: dict[str, float]) -> None:
    """The run's final figures to every logger: beside its settings in TensorBoard's HPARAMS table, as the last
    metrics (`hparams/...`) elsewhere; then each logger is closed (a sweep's next job starts a new run)."""
    figures = final_figures(metrics)
    for logger in loggers:
        if not figures:
            continue
        if kind(logger) == "TensorBoardLogger":
            logger.log_hyperparams(run_settings(cfg), figures)
        else:
            logger.log_metrics(figures)
        logger.finalize("success")  # testing closed the writers: flush what this added
        if kind(logger) == "WandbLogger" and not getattr(logger, "failed", False):
            logger.experiment.finish()
