"""Reading training checkpoints: clear errors for bad files, and the data module a checkpoint was trained on."""

import importlib
import inspect
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.errors import ConfigError


def read_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint; a missing, unreadable or foreign file raises one clear ConfigError."""
    if not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path!r} is not a file; pass a .ckpt from a run folder's checkpoints/")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # a damaged file can raise many types
        raise ConfigError(f"ckpt_path={path!r} cannot be read ({type(err).__name__}); it is damaged or not a checkpoint") from None
    if not isinstance(checkpoint, dict) or "net_config" not in checkpoint:
        raise ConfigError(f"ckpt_path={path!r} is not a vrnn-lightning checkpoint; pass one written by vrnn_lightning.train")
    return checkpoint


def data_overrides(cfg: DictConfig) -> dict[str, Any]:
    """The `data.*` settings given on the command line of eval or sample; null means keep the checkpoint's."""
    return {k: v for k, v in OmegaConf.to_container(cfg.get("data") or {}).items() if v is not None}


def import_by_name(qualified_name: str) -> Any:
    """The class a checkpoint names as `package.module.Class`."""
    module_name, _, name = qualified_name.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def datamodule_from_checkpoint(checkpoint: dict[str, Any], **overrides: Any) -> L.LightningDataModule:
    """The data module the checkpoint was trained with, its settings updated by `overrides` (e.g. root=...)."""
    if "datamodule_class" not in checkpoint:
        raise ConfigError("this checkpoint records no data module; it was not written by vrnn_lightning.train")
    datamodule_class = import_by_name(checkpoint["datamodule_class"])
    accepted = inspect.signature(datamodule_class).parameters
    foreign = sorted(set(overrides) - set(accepted))
    if foreign:
        raise ConfigError(f"data.{foreign[0]} does not apply to this checkpoint's data ({datamodule_class.__name__}); "
                          f"its settings are {', '.join(accepted)}")
    return datamodule_class(**{**checkpoint.get("datamodule_hyper_parameters", {}), **overrides})
