"""Reading training checkpoints safely: clear errors for bad files, the model and the data module they were made with.

A checkpoint is someone else's file as often as one's own (a paper's release, a colleague's run), so reading one
must never run code:
- it is unpickled with `torch.load(weights_only=True)`: tensors, numbers, strings and plain containers only. The
  project and Lightning store nothing else (the module's and data module's hyperparameters are plain dicts,
  the data's metadata is plain by the data contract, Lightning's loop, optimiser, scheduler and callback states
  are dicts of numbers and tensors, the random state a tensor), so no type is added to torch's allow-list; a
  file that holds anything else is refused, naming the type, and `python -m vrnn_lightning.convert_checkpoint`
  turns a trusted one into plain data;
- the classes it names (the model's and its likelihood's `_target_`, the `datamodule_class`) must be the
  project's contracts, `SequenceModel`, `Likelihood` and `SequenceDataModule` subclasses, from a module of this
  package or one already imported, before anything is imported or called. Configs that Hydra composes from the
  user's own files keep their freedom; the restriction is on what a file names.
"""

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import torch

from vrnn_lightning.data.base import SequenceDataModule
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import Likelihood, SequenceModel, build
from vrnn_lightning.objectives import ELBO, FIVO, IWAE, Objective
from vrnn_lightning.training.checkpoint_io import load_plain
from vrnn_lightning.training.module import SequenceModule

PACKAGE = "vrnn_lightning"


def read_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint; a missing, unreadable, unsafe, foreign or outdated file raises one ConfigError."""
    if not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path!r} is not a file; pass a .ckpt from a run folder's checkpoints/")
    try:
        checkpoint = load_plain(path, map_location)
    except ConfigError:
        raise
    except Exception as err:  # a damaged file can raise many types
        raise ConfigError(
            f"ckpt_path={path!r} cannot be read ({type(err).__name__}); it is damaged or not a checkpoint"
        ) from None
    if isinstance(checkpoint, dict) and "net_config" in checkpoint:
        raise ConfigError(
            f"ckpt_path={path!r} was written by vrnn-lightning before its model contract (0.1); "
            "this version cannot load it: train it again"
        )
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_config"), dict):
        raise ConfigError(
            f"ckpt_path={path!r} is not a vrnn-lightning checkpoint; pass one written by vrnn_lightning.train"
        )
    check_named_classes(checkpoint)
    return checkpoint


def contract_class(key: str, name: Any, bases: tuple[type, ...]) -> type:
    """The class `name` (`package.module.Class`) that a checkpoint names at `key`, if it is a subclass of one of
    `bases` from this package or a module already imported; else one ConfigError. Nothing outside those modules
    is imported and nothing is called."""
    wanted = " or ".join(b.__name__ for b in bases)
    refusal = (
        f"{key}={name!r} is not a {wanted} of vrnn_lightning; a checkpoint may only name the project's model, "
        "likelihood and data classes, so it was not loaded"
    )
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name):
        raise ConfigError(refusal)
    module_name, _, class_name = name.rpartition(".")
    if module_name in sys.modules:
        module = sys.modules[module_name]
    elif module_name == PACKAGE or module_name.startswith(PACKAGE + "."):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ConfigError(f"{key}={name!r} names a module this version lacks; it needs a newer one") from None
    else:
        raise ConfigError(refusal)
    found = inspect.getattr_static(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, bases)):
        raise ConfigError(refusal)
    return found


def check_model_config(config: Any, key: str = "model_config", bases: tuple[type, ...] = (SequenceModel,)) -> None:
    """Every `_target_` in a model config: the model a SequenceModel, what it nests (its likelihood) a
    Likelihood or SequenceModel; checked before `build` imports or calls anything."""
    if isinstance(config, dict):
        if "_target_" in config:
            contract_class(f"{key}._target_", config["_target_"], bases)
        for name, value in config.items():
            if name != "_target_":
                check_model_config(value, f"{key}.{name}", (Likelihood, SequenceModel))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            check_model_config(value, f"{key}[{i}]", (Likelihood, SequenceModel))


# The module's settings that named the objective before it was a component (conf/objective/)
OLD_OBJECTIVE_SETTINGS = {
    "train_samples": "samples",
    "free_bits": "free_bits",
    "kl_warmup_steps": "kl_warmup_steps",
    "resample_threshold": "resample_threshold",
    "resampling": "resampling",
}
OLD_OBJECTIVES = {"elbo": ELBO, "iwae": IWAE, "fivo": FIVO}


def with_objective_config(hyper_parameters: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint written before the objective was a component names it as `objective: elbo | iwae | fivo`
    beside its settings; the same objective as a config (`{"_target_": ..., settings}`), the rest unchanged."""
    name = hyper_parameters.get("objective", "elbo")
    if isinstance(name, dict) or name not in OLD_OBJECTIVES:
        return hyper_parameters
    kept = {k: v for k, v in hyper_parameters.items() if k != "objective" and k not in OLD_OBJECTIVE_SETTINGS}
    settings = {OLD_OBJECTIVE_SETTINGS[k]: v for k, v in hyper_parameters.items() if k in OLD_OBJECTIVE_SETTINGS}
    objective = OLD_OBJECTIVES[name]
    settings = {k: v for k, v in settings.items() if k in inspect.signature(objective).parameters}
    target = f"vrnn_lightning.objectives.{objective.__name__}"
    return {**kept, "objective": {"_target_": target, **settings}}


def check_named_classes(checkpoint: dict[str, Any]) -> None:
    check_model_config(checkpoint["model_config"])
    if "datamodule_class" in checkpoint:
        contract_class("datamodule_class", checkpoint["datamodule_class"], (SequenceDataModule,))
    hyper_parameters = with_objective_config(checkpoint.get("hyper_parameters", {}))
    objective = hyper_parameters.get("objective", {})
    if not isinstance(objective, dict) or "_target_" not in objective:
        raise ConfigError(
            "hyper_parameters.objective is not an objective's config; the checkpoint was written by "
            "another version or program"
        )
    contract_class("hyper_parameters.objective._target_", objective["_target_"], (Objective,))
    module_options = set(inspect.signature(SequenceModule).parameters) - {"model", "optimizer"}
    foreign = sorted(set(hyper_parameters) - module_options)
    if foreign:
        raise ConfigError(
            f"hyper_parameters.{foreign[0]} is not a setting of this version's SequenceModule; "
            "the checkpoint was written by another version or program"
        )


def with_bounded_gaussian(model_config: dict[str, Any]) -> dict[str, Any]:
    """The behaviour a model config saved before an option existed was trained with: a Gaussian head saved
    before `bounded` was the bounded one (sigmoid mean, for intensities); a DMM saved before `initial_prior`
    started from the transition of z_0 = 0."""
    likelihood = model_config.get("likelihood", {})
    if likelihood.get("_target_", "").endswith("likelihoods.Gaussian") and "bounded" not in likelihood:
        model_config = {**model_config, "likelihood": {**likelihood, "bounded": True}}
    if model_config.get("_target_", "").endswith("dmm.DMM") and "initial_prior" not in model_config:
        model_config = {**model_config, "initial_prior": "transition"}
    return model_config


def load_module(checkpoint: dict[str, Any]) -> SequenceModule:
    """The trained module of a checkpoint read by `read_checkpoint`; no config files needed."""
    check_named_classes(checkpoint)  # again: a dict built by hand did not pass through read_checkpoint
    model: SequenceModel = build(with_bounded_gaussian(checkpoint["model_config"]))
    hyper_parameters = with_objective_config(checkpoint["hyper_parameters"])
    objective = build(hyper_parameters.pop("objective"))
    module = SequenceModule(model=model, optimizer=torch.optim.AdamW, objective=objective, **hyper_parameters)
    module.load_state_dict(checkpoint["state_dict"])
    return module


def datamodule_class(checkpoint: dict[str, Any]) -> type[SequenceDataModule]:
    if "datamodule_class" not in checkpoint:
        raise ConfigError("this checkpoint records no data module; it was not written by vrnn_lightning.train")
    return contract_class("datamodule_class", checkpoint["datamodule_class"], (SequenceDataModule,))


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


def check_data_overrides(data_class: type, overrides: dict[str, Any], saved: bool = False) -> None:
    """Every key a setting of `data_class`'s constructor: the user's `data.*` overrides, or (`saved`) the
    settings a checkpoint stores, which are passed to it as named arguments and nothing more."""
    accepted = accepted_options(data_class)
    foreign = sorted(set(overrides) - set(accepted))
    if foreign and saved:
        raise ConfigError(
            f"datamodule_hyper_parameters.{foreign[0]} is not a setting of {data_class.__name__}; the checkpoint "
            "was written by another version or program"
        )
    if foreign:
        raise ConfigError(
            f"data.{foreign[0]} does not apply to this checkpoint's data ({data_class.__name__}); "
            f"its settings are {', '.join(accepted)}"
        )


def datamodule_from_checkpoint(checkpoint: dict[str, Any], **overrides: Any) -> SequenceDataModule:
    """The data module the checkpoint was trained with, its settings updated by `overrides` (e.g. root=...)."""
    data_class = datamodule_class(checkpoint)
    check_data_overrides(data_class, overrides)
    settings = checkpoint.get("datamodule_hyper_parameters", {})
    check_data_overrides(data_class, settings, saved=True)
    return data_class(**{**settings, **overrides})


def check_weights_fit(own: dict[str, Any], state_dict: dict[str, Any], strict: bool = True) -> None:
    """One ConfigError where a checkpoint's tensors do not fit the model built from its settings: the first key
    that is missing, unexpected or of another shape, with both shapes."""
    mismatch = next(
        (
            f"{key} is {tuple(value.shape)} in the checkpoint and {tuple(own[key].shape)} in the model"
            for key, value in state_dict.items()
            if key in own and hasattr(value, "shape") and value.shape != own[key].shape
        ),
        None,
    )
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    if mismatch is None and strict and (missing or unexpected):
        mismatch = f"{missing[0]} is missing from the checkpoint" if missing else f"{unexpected[0]} is not a model key"
    if mismatch is not None:
        raise ConfigError(
            f"the checkpoint's weights do not fit the model built from its settings: {mismatch}; resume or "
            "evaluate with the model settings it was trained with (its .hydra/config.yaml)"
        )


def record_contract(checkpoint: dict[str, Any], model: SequenceModel, datamodule: Any) -> None:
    """What a checkpoint needs to rebuild the model, and the data module, from the file alone."""
    checkpoint["model_config"] = model.config
    if datamodule is not None:
        checkpoint["datamodule_class"] = f"{type(datamodule).__module__}.{type(datamodule).__qualname__}"
