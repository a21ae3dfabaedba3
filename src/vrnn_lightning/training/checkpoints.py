"""Reading training checkpoints: clear errors for bad files, the model and the data module they were made with."""

import inspect
from pathlib import Path
from typing import Any

import torch

from vrnn_lightning.data.base import SequenceDataModule
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import SequenceModel, build
from vrnn_lightning.models.base import locate
from vrnn_lightning.training.module import SequenceModule


def read_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint; a missing, unreadable, foreign or outdated file raises one clear ConfigError."""
    if not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path!r} is not a file; pass a .ckpt from a run folder's checkpoints/")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # a damaged file can raise many types
        raise ConfigError(
            f"ckpt_path={path!r} cannot be read ({type(err).__name__}); it is damaged or not a checkpoint"
        ) from None
    if isinstance(checkpoint, dict) and "net_config" in checkpoint:
        raise ConfigError(
            f"ckpt_path={path!r} was written by vrnn-lightning before its model contract (0.1); "
            "this version cannot load it: train it again"
        )
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={path!r} is not a vrnn-lightning checkpoint; pass one written by vrnn_lightning.train"
        )
    return checkpoint


def with_bounded_gaussian(model_config: dict[str, Any]) -> dict[str, Any]:
    """A Gaussian head saved before `bounded` existed was the bounded one (sigmoid mean, for intensities)."""
    likelihood = model_config.get("likelihood", {})
    if likelihood.get("_target_", "").endswith("likelihoods.Gaussian") and "bounded" not in likelihood:
        return {**model_config, "likelihood": {**likelihood, "bounded": True}}
    return model_config


def load_module(checkpoint: dict[str, Any]) -> SequenceModule:
    """The trained module of a checkpoint read by `read_checkpoint`; no config files needed."""
    model: SequenceModel = build(with_bounded_gaussian(checkpoint["model_config"]))
    module = SequenceModule(model=model, optimizer=torch.optim.AdamW, **checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    return module


def datamodule_class(checkpoint: dict[str, Any]) -> type[SequenceDataModule]:
    if "datamodule_class" not in checkpoint:
        raise ConfigError("this checkpoint records no data module; it was not written by vrnn_lightning.train")
    return locate(checkpoint["datamodule_class"])


def accepted_options(data_class: type) -> list[str]:
    """A data module's settings: its constructor's named arguments, and its bases' where it passes **options on."""
    accepted: list[str] = []
    for cls in data_class.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(cls.__init__).parameters.values()
        accepted += [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return accepted


def datamodule_from_checkpoint(checkpoint: dict[str, Any], **overrides: Any) -> SequenceDataModule:
    """The data module the checkpoint was trained with, its settings updated by `overrides` (e.g. root=...)."""
    data_class = datamodule_class(checkpoint)
    accepted = accepted_options(data_class)
    foreign = sorted(set(overrides) - set(accepted))
    if foreign:
        raise ConfigError(
            f"data.{foreign[0]} does not apply to this checkpoint's data ({data_class.__name__}); "
            f"its settings are {', '.join(accepted)}"
        )
    return data_class(**{**checkpoint.get("datamodule_hyper_parameters", {}), **overrides})
