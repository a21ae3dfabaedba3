"""The trackers beside TensorBoard (`logger=csv|mlflow|wandb|many`): their run names, their checks before a run
folder is made, and the names a sweep's jobs share so a tracker's own UI compares them as one table.

A run is named after its folder (`2026-12-06_09-30-00`), a sweep's job after its sweep and number
(`2026-12-06_09-30-00/3`); a sweep's jobs share one MLflow experiment and one W&B group,
`<task_name> sweep <stamp>`, while single runs share the experiment `<task_name>`. The resolvers below are what
the logger configs interpolate (`${vrnn.run_name:...}`, `${vrnn.experiment:...}`).
"""

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.errors import ConfigError

log = logging.getLogger(__name__)

NEEDS = {  # a logger's class -> the library it needs, from the `trackers` extra
    "lightning.pytorch.loggers.MLFlowLogger": ("mlflow", "MLflow"),
    "lightning.pytorch.loggers.WandbLogger": ("wandb", "W&B (wandb)"),
}


def in_sweep(output_dir: str) -> bool:
    """A sweep's job folder is `<sweep folder>/<job number>`; a single run's, `.../runs/<stamp>`."""
    return Path(output_dir).name.isdigit()


def run_name(output_dir: str) -> str:
    folder = Path(output_dir)
    return f"{folder.parent.name}/{folder.name}" if in_sweep(output_dir) else folder.name


def experiment_name(output_dir: str, task_name: str) -> str:
    return f"{task_name} sweep {Path(output_dir).parent.name}" if in_sweep(output_dir) else task_name


def register_resolvers() -> None:
    from vrnn_lightning.objectives.base import judged_by

    resolvers = (("vrnn.run_name", run_name), ("vrnn.experiment", experiment_name), ("vrnn.judged_by", judged_by))
    for name, resolver in resolvers:
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def check_trackers(cfg: DictConfig) -> None:
    """Each chosen logger's library installed, and an MLflow store on this machine writable; one line each."""
    for name, node in (cfg.get("logger") or {}).items():
        if not OmegaConf.is_dict(node):
            continue
        target = node.get("_target_")
        if target in NEEDS and importlib.util.find_spec(NEEDS[target][0]) is None:
            raise ConfigError(
                f"logger={name} needs {NEEDS[target][1]}, which is not installed; "
                'pip install "vrnn-lightning[trackers]" (or choose logger=tensorboard or logger=csv)'
            )
        if target == "lightning.pytorch.loggers.MLFlowLogger":
            check_local_store(str(OmegaConf.select(node, "tracking_uri", default="") or ""))


def check_local_store(uri: str) -> None:
    """A tracking store on this machine (`sqlite:///<file>`, `file:<folder>` or a plain path) must lie where
    this process can create or write files."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).expanduser().parent
    elif "://" in uri and not uri.startswith("file:"):
        return  # a tracking server: MLflow reports what it says
    else:
        path = Path(uri.removeprefix("file://").removeprefix("file:")).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        where = "not a folder" if existing is not None and not existing.is_dir() else "not writable"
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri}: {existing} is {where}, so MLflow cannot keep its runs there; "
            "point logger.mlflow.tracking_uri at a writable place (sqlite:///<file>.db) or a tracking server"
        )


class Guarded(Logger):
    """A tracker whose failure mid-run (its server gone, its disk full) is one warning, after which it is left
    out: the run, its checkpoints and its TensorBoard logs go on. TensorBoard itself is not guarded (a run that
    cannot write its own folder should stop). `inner` is the tracker.

    A tracker that keeps its runs elsewhere (MLflow, W&B) is sent the figures as each checkpoint is written
    (`flush`, from `TrackerHistory`) and when the run ends, so that it holds what the checkpoints hold: a run
    killed and resumed from its last checkpoint logs each step there exactly once."""

    def __init__(self, inner: Logger) -> None:
        super().__init__()
        self.inner = inner
        self.failed = False
        self.buffered = type(inner).__name__ in ("MLFlowLogger", "WandbLogger")
        self.pending: list[tuple[dict[str, float], int | None]] = []

    @property
    def name(self) -> str | None:
        return self.inner.name

    @property
    def version(self) -> int | str | None:
        return self.inner.version

    @property
    def save_dir(self) -> str | None:
        return self.inner.save_dir

    @property
    def experiment(self) -> Any:
        return self.inner.experiment

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.failed:
            return
        try:
            getattr(self.inner, method)(*args, **kwargs)
        except Exception as err:
            self.failed = True
            log.warning(
                "logger %s failed (%s: %s); the run goes on without it, its checkpoints and TensorBoard logs intact",
                type(self.inner).__name__,
                type(err).__name__,
                (str(err).strip().splitlines() or [""])[0],
            )

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.buffered:
            self.pending.append(({k: float(v) for k, v in metrics.items()}, step))
        else:
            self.call("log_metrics", metrics, step)

    def flush(self) -> None:
        """Send the figures held back since the last checkpoint."""
        pending, self.pending = self.pending, []
        for metrics, step in pending:
            self.call("log_metrics", metrics, step)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.call("log_hyperparams", params, *args, **kwargs)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        self.call("log_graph", model, input_array)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self.call("after_save_checkpoint", checkpoint_callback)

    def save(self) -> None:
        self.call("save")

    def finalize(self, status: str) -> None:
        self.flush()
        self.call("finalize", status)


def guarded(logger: Logger) -> Logger:
    """Every tracker but TensorBoard wrapped in `Guarded`."""
    return logger if kind(logger) == "TensorBoardLogger" else Guarded(logger)


def kind(logger: Logger) -> str:
    """The class name of a logger, seen through `Guarded`."""
    return type(getattr(logger, "inner", logger)).__name__
