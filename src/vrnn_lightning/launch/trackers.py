"""The trackers beside TensorBoard (`logger=csv|mlflow|wandb|many`): their run names, their checks before a run
folder is made, and the names a sweep's jobs share so a tracker's own UI compares them as one table.

A run is named after its folder (`2026-12-06_09-30-00`), a sweep's job after its sweep and number
(`2026-12-06_09-30-00/3`); a sweep's jobs share one MLflow experiment and one W&B group,
`<task_name> sweep <stamp>`, while single runs share the experiment `<task_name>`. The resolvers below are what
the logger configs interpolate (`${vrnn.run_name:...}`, `${vrnn.experiment:...}`).
"""

import importlib.util
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.errors import ConfigError

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
    for name, resolver in (("vrnn.run_name", run_name), ("vrnn.experiment", experiment_name)):
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
