"""The trackers beside TensorBoard (`logger=csv|mlflow|wandb|many`): their run names, their checks before a run
folder is made, and the names a sweep's jobs share so a tracker's own UI compares them as one table.

A run is named after its folder (`2026-12-06_09-30-00`), a sweep's job after the values it sweeps
(`model.z_dim=16 model.rnn=lstm`; after its sweep and number, `2026-12-06_09-30-00/3`, where they are not known);
a sweep's jobs share one MLflow experiment and one W&B group, `<task_name> sweep <stamp>`, while single runs
share the experiment `<task_name>`; tags name the model, data, objective, sweep and git commit. The resolvers
below are what the logger configs interpolate (`${vrnn.run_name:...}`, `${vrnn.experiment:...}`, ...).
"""

import importlib.util
import logging
import os
import socket
import subprocess
import urllib.parse
from collections.abc import Callable
from functools import cache
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


SWEPT = "VRNN_SWEPT"  # the settings a sweep varies, comma-separated, set by train's command line for its jobs


def swept_values() -> str:
    """This sweep job's overrides of the swept settings (`model.z_dim=16`), or "" where they are not known."""
    from hydra.core.hydra_config import HydraConfig

    swept = [key for key in os.environ.get(SWEPT, "").split(",") if key]
    if not swept or not HydraConfig.initialized():
        return ""
    overrides = [o.lstrip("+") for o in HydraConfig.get().overrides.task]
    return " ".join(o for o in overrides if o.split("=")[0] in swept)


def run_name(output_dir: str) -> str:
    folder = Path(output_dir)
    if not in_sweep(output_dir):
        return folder.name
    return swept_values() or f"{folder.parent.name}/{folder.name}"


def sweep_name(output_dir: str) -> str:
    return Path(output_dir).parent.name if in_sweep(output_dir) else "none"


@cache
def git_commit() -> str:
    """The commit of the code that runs, where it runs from a git checkout; "unknown" otherwise (a wheel)."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def mlflow_artifacts(tracking_uri: str) -> str | None:
    """Where MLflow keeps a run's files: beside a local sqlite store (`outputs/mlartifacts`), not in `./mlruns` of
    whatever folder the run started from; a file store or a server decides for itself (None)."""
    if tracking_uri.startswith("sqlite:///"):
        return str(Path(tracking_uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "mlartifacts")
    return None


def experiment_name(output_dir: str, task_name: str) -> str:
    return f"{task_name} sweep {Path(output_dir).parent.name}" if in_sweep(output_dir) else task_name


def register_resolvers() -> None:
    from vrnn_lightning.objectives.base import judged_by

    resolvers = (
        ("vrnn.run_name", run_name),
        ("vrnn.experiment", experiment_name),
        ("vrnn.judged_by", judged_by),
        ("vrnn.sweep", sweep_name),
        ("vrnn.git_commit", git_commit),
        ("vrnn.mlflow_artifacts", mlflow_artifacts),
    )
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
            uri = str(OmegaConf.select(node, "tracking_uri", default="") or "")
            check_local_store(uri)
            check_server(uri)
        if target == "lightning.pytorch.loggers.WandbLogger":
            mode = OmegaConf.select(node, "mode", default=None)
            if mode is not None and mode not in WANDB_MODES:
                raise ConfigError(
                    f"logger.wandb.mode={mode!r} (WANDB_MODE) is not a W&B mode; use one of {', '.join(WANDB_MODES)}"
                )


WANDB_MODES = ("offline", "online", "disabled", "shared")


def check_server(uri: str, timeout: float = 5.0) -> None:
    """An MLflow tracking server (`http(s)://host[:port]`) that answers a connection: one that does not would
    hold the run for minutes in MLflow's retries, after its folder was made."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme not in ("http", "https"):
        return
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        if not parsed.hostname:
            raise ValueError("no host")
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err) or type(err).__name__
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri} (MLFLOW_TRACKING_URI) cannot be reached ({reason}); start the "
            "server, or point it at a store on this machine (sqlite:///<file>.db)"
        ) from None


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
        self.pending: list[Callable[[Logger], Any]] = []
        self.sent_before: set[tuple[str, int]] = set()  # (metric, step) the tracker holds from before a resume

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

    def attempt(self, action: Callable[[Logger], Any]) -> None:
        """`action(tracker)`, unless the tracker failed before; its failure is one warning and leaves it out."""
        if self.failed:
            return
        try:
            action(self.inner)
        except Exception as err:
            self.failed = True
            log.warning(
                "logger %s failed (%s: %s); the run goes on without it, its checkpoints and TensorBoard logs intact",
                type(self.inner).__name__,
                type(err).__name__,
                (str(err).strip().splitlines() or [""])[0],
            )

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.attempt(lambda tracker: getattr(tracker, method)(*args, **kwargs))

    def send(self, action: Callable[[Logger], Any]) -> None:
        """What the tracker is to be sent (figures, pictures): held back until the next checkpoint where the
        tracker holds its figures back, so that they keep their order."""
        if self.buffered:
            self.pending.append(action)
        else:
            self.attempt(action)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        values = {k: float(v) for k, v in metrics.items() if (k, step) not in self.sent_before}
        if values:
            self.send(lambda tracker: tracker.log_metrics(values, step))

    def flush(self) -> None:
        """Send what was held back since the last checkpoint."""
        pending, self.pending = self.pending, []
        for action in pending:
            self.attempt(action)

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


def make_local_stores(cfg: DictConfig) -> None:
    """The folder of each local MLflow store (`sqlite:///<file>`), before its logger opens it: MLflow 2 does not
    make it. Its place was checked before the run began (`check_local_store`)."""
    for node in (cfg.get("logger") or {}).values():
        if OmegaConf.is_dict(node) and node.get("_target_") == "lightning.pytorch.loggers.MLFlowLogger":
            uri = str(node.get("tracking_uri") or "")
            if uri.startswith("sqlite:///"):
                Path(uri.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)


def guarded(logger: Logger) -> Logger:
    """Every tracker but TensorBoard wrapped in `Guarded`."""
    return logger if kind(logger) == "TensorBoardLogger" else Guarded(logger)


def kind(logger: Logger) -> str:
    """The class name of a logger, seen through `Guarded`."""
    return type(getattr(logger, "inner", logger)).__name__
