"""Every value checked before a run starts: types, ranges and choices of the composed config, for training,
eval and sample alike, so that a value a library would reject late (after the run folder exists, from deep
inside torch or Lightning) or silently ignore or misread is refused in one line before anything is written.

The mains call `check_config`, and so does the Hydra callback `CheckConfig`, which runs before Hydra writes
into the run folder. Keys a composed config does not have (model=rnn has no z_dim) are skipped. The models'
and data modules' constructors keep their own checks, for use without Hydra.
"""

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.errors import CONFIG_DIR, MOVED, ConfigError, exit_with, moved_message
from vrnn_lightning.launch.trackers import check_trackers

Check = tuple[Callable[[Any], bool], str]  # (accepts the value, what it must be)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v  # not NaN


POSITIVE_INT: Check = (lambda v: is_int(v) and v >= 1, "a whole number >= 1")
COUNT: Check = (lambda v: is_int(v) and v >= 0, "a whole number >= 0")
POSITIVE: Check = (lambda v: is_number(v) and v > 0, "a number > 0")
NON_NEGATIVE: Check = (lambda v: is_number(v) and v >= 0, "a number >= 0")
FRACTION: Check = (lambda v: is_number(v) and 0 <= v <= 1, "a number from 0 to 1")
INTEGER: Check = (is_int, "a whole number")
TEXT: Check = (lambda v: isinstance(v, str), "text (quote it)")
BOOLEAN: Check = (lambda v: isinstance(v, bool), "true or false")


def optional(check: Check) -> Check:
    return (lambda v: v is None or check[0](v), f"null or {check[1]}")


def one_of(*choices: Any) -> Check:
    return (lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


def either(*checks: Check) -> Check:
    return (lambda v: any(c[0](v) for c in checks), " or ".join(c[1] for c in checks))


BATCH_LIMIT = optional(either(COUNT, (lambda v: isinstance(v, float) and 0 <= v <= 1, "a fraction 0..1")))
PRECISIONS = (
    "32-true",
    "32",
    32,
    "16-mixed",
    "16",
    16,
    "bf16-mixed",
    "bf16",
    "16-true",
    "bf16-true",
    "64-true",
    "64",
    64,
)

TRAIN: dict[str, Check] = {
    "seed": INTEGER,
    "ckpt_path": optional(TEXT),
    "test": (lambda v: isinstance(v, bool), "true or false"),
    "module.optimizer.lr": POSITIVE,
    "module.optimizer.weight_decay": NON_NEGATIVE,
    "module.lr_schedule": one_of("constant", "cosine"),
    "module.warmup_steps": COUNT,
    "module.min_lr_ratio": FRACTION,
    "module.auxiliary_weight": NON_NEGATIVE,
    "module.cuda_graphs": one_of("auto", True, False),
    "data.max_len": (lambda v: is_int(v) and v >= 2, "a whole number >= 2"),
    "data.seq_len": POSITIVE_INT,
    "data.batch_size": POSITIVE_INT,
    "data.eval_batch_size": optional(POSITIVE_INT),
    "data.batches_per_epoch": POSITIVE_INT,
    "trainer.max_steps": either(POSITIVE_INT, (lambda v: v == -1, "-1 (no limit)")),
    "trainer.max_epochs": optional(either(POSITIVE_INT, (lambda v: v == -1, "-1 (no limit)"))),
    "trainer.devices": either(POSITIVE_INT, one_of(-1, "auto"), (lambda v: OmegaConf.is_list(v), "a list of ids")),
    "trainer.num_nodes": POSITIVE_INT,
    "trainer.precision": one_of(*PRECISIONS),
    "trainer.gradient_clip_val": optional(NON_NEGATIVE),
    "trainer.log_every_n_steps": POSITIVE_INT,
    "trainer.check_val_every_n_epoch": optional(POSITIVE_INT),
    "trainer.limit_train_batches": BATCH_LIMIT,
    "trainer.limit_val_batches": BATCH_LIMIT,
    "trainer.limit_test_batches": BATCH_LIMIT,
    "callbacks.text_samples.length": POSITIVE_INT,
    "callbacks.text_samples.temperature": NON_NEGATIVE,
    "callbacks.text_samples.prompt": TEXT,
    "callbacks.image_grids.count": POSITIVE_INT,
    "callbacks.last_checkpoint.every_n_train_steps": optional(POSITIVE_INT),
}
EVAL: dict[str, Check] = {
    "seed": INTEGER,
    "split": one_of("test", "val", "heldout"),
    "device": one_of("auto", "cpu", "cuda"),
    "eval.iw_samples": optional(POSITIVE_INT),
    "eval.stateful": BOOLEAN,
    "eval.streams": POSITIVE_INT,
    "eval.iw_chunk": POSITIVE_INT,
    "eval.fivo_samples": optional(POSITIVE_INT),
    "eval.resample_threshold": FRACTION,
    "eval.resampling": one_of("multinomial", "systematic"),
    "eval.futures": COUNT,
    "eval.predicted": optional(POSITIVE_INT),
    "ckpt_path": TEXT,
}
SAMPLE: dict[str, Check] = {
    "seed": INTEGER,
    "num_samples": POSITIVE_INT,
    "length": POSITIVE_INT,
    "temperature": NON_NEGATIVE,
    "prompt": TEXT,
    "image_scale": POSITIVE_INT,
    "futures": POSITIVE_INT,
    "predicted": optional(POSITIVE_INT),
    "ckpt_path": TEXT,
}
CHECKS = {"train": TRAIN, "eval": EVAL, "sample": SAMPLE}


def check_config(cfg: DictConfig, main: str) -> None:
    """Raise one ConfigError naming the first setting of `cfg` whose value the `main` cannot use: its own
    value, then (training) the data module's settings and the pairing of the likelihood head with the data."""
    check_values(cfg, main)
    if main == "eval":
        check_eval_sizes(cfg)
    if main == "train":
        check_moved_settings(cfg)
        check_model(cfg)
        check_objective(cfg)
        check_data_and_head(cfg)
        check_trackers(cfg)


def check_values(cfg: DictConfig, main: str) -> None:
    for key, (accepts, wanted) in CHECKS[main].items():
        parent, _, leaf = key.rpartition(".")
        holder = OmegaConf.select(cfg, parent) if parent else cfg
        if not OmegaConf.is_dict(holder) or leaf not in holder:
            continue
        if OmegaConf.is_missing(holder, leaf):
            raise ConfigError(f"{key} is not set; pass {key}=<value>")
        node = holder[leaf]
        value = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
        if not accepts(node):
            raise ConfigError(f"{key}={value!r} is not valid: it must be {wanted}")


def check_eval_sizes(cfg: DictConfig) -> None:
    """Each step of a sequence needs its K trajectories (IW) or particles (FIVO) at once: K beyond
    `eval.iw_chunk` sequence-steps could not fit where the chunk was meant to, and would take days besides."""
    chunk = OmegaConf.select(cfg, "eval.iw_chunk")
    for key in ("eval.iw_samples", "eval.fivo_samples"):
        samples = OmegaConf.select(cfg, key)
        if samples and chunk and samples > chunk:
            raise ConfigError(
                f"{key}={samples} is more than eval.iw_chunk={chunk} sequence-steps hold at once (about 40 KB "
                f"each); lower {key} or raise eval.iw_chunk"
            )


def settings_of(node: Any) -> dict[str, Any]:
    """A composed config node's values, interpolations resolved where they can be (`${hydra:...}` cannot be
    before the run starts: such a key is left out), `_target_` dropped."""
    settings = {}
    for key in node:
        if key == "_target_":
            continue
        try:
            value = node[key]
        except Exception:  # an interpolation that resolves only once the run has started
            continue
        settings[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return settings


def contract_target(node: Any, base: type) -> type | None:
    """The class a composed config node's `_target_` names, where it is a subclass of `base`; None where it
    names something else (the user's own configs are free; `instantiate` reports what cannot be built)."""
    from hydra.utils import get_class

    if not OmegaConf.is_dict(node) or not isinstance(node.get("_target_"), str):
        return None
    try:
        found = get_class(node._target_)
    except Exception:
        return None
    return found if issubclass(found, base) else None


def heads_that_fit(values: str) -> list[str]:
    """The options of the model/likelihood group whose head scores `values`."""
    from hydra.utils import get_class

    fitting = []
    for path in sorted((CONFIG_DIR / "model" / "likelihood").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        if target and values in getattr(get_class(target), "fits", ()):
            fitting.append(path.stem)
    return fitting


def check_model(cfg: DictConfig) -> None:
    """The model's and its likelihood head's own checks of their settings (their `check_settings`)."""
    from vrnn_lightning.models.base import SequenceModel
    from vrnn_lightning.models.likelihoods import Likelihood

    model = cfg.get("model")
    if OmegaConf.is_dict(model):
        check_own_settings(model, SequenceModel, "model", given=("likelihood",))
        check_own_settings(model.get("likelihood"), Likelihood, "model.likelihood", given=("x_dim",))


def check_moved_settings(cfg: DictConfig) -> None:
    """A composed config (a user's experiment file) that still sets a setting by its old name."""
    for old in MOVED:
        parent, _, leaf = old.rpartition(".")
        holder = OmegaConf.select(cfg, parent)
        if OmegaConf.is_dict(holder) and leaf in holder:
            raise ConfigError(moved_message(old))


def check_objective(cfg: DictConfig) -> None:
    """The objective's own checks of its settings, then whether it can train the model on the data: one that
    weighs latents needs a model with some, and only one that carries the state trains on streams."""
    from vrnn_lightning.models.base import SequenceModel
    from vrnn_lightning.objectives import Objective
    from vrnn_lightning.objectives.base import skips_message

    node = cfg.get("objective")
    objective_class = contract_target(node, Objective)
    if objective_class is None:
        return
    check_own_settings(node, Objective, "objective", given=())
    choice = (OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}).get("objective")
    name = choice or objective_class.__name__.lower()
    model_class = contract_target(cfg.get("model"), SequenceModel)
    if objective_class.needs_latents and getattr(model_class, "latent_dim", None) == 0:
        raise ConfigError(
            f"objective={name} cannot train {model_class.__name__}: it has no latent variables "
            "(objective=elbo is its exact likelihood)"
        )
    if objective_class.steps_alone and OmegaConf.select(cfg, "model.likelihood.skips", default=None) is True:
        raise ConfigError(skips_message(f"objective={name}"))
    if OmegaConf.select(cfg, "data.stateful") is True and not objective_class.carries_state:
        raise ConfigError(
            f"objective={name} draws K trajectories per window and cannot carry one state between windows; "
            "use objective=elbo with data.stateful=true"
        )


def check_own_settings(node: Any, base: type, prefix: str, given: tuple[str, ...]) -> None:
    """Every setting of `node` one its class takes (a sweep across the family may set one only another model
    has), then the class's own `check_settings`; `given` are the arguments the run fills in itself."""
    target = contract_target(node, base)
    if target is None:
        return
    settings = {k: v for k, v in settings_of(node).items() if k not in given}
    accepted = [name for name in inspect.signature(target).parameters if name not in given]
    unknown = [name for name in settings if name not in accepted]
    if unknown:
        raise ConfigError(
            f"{prefix}.{unknown[0]} is not a setting of {target.__name__}; its settings are {', '.join(accepted)} "
            f"(drop it with ~{prefix}.{unknown[0]})"
        )
    try:
        target.check_settings(settings)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def check_data_and_head(cfg: DictConfig) -> None:
    """The data module's own checks of its settings (`check_settings`), then whether the likelihood head scores
    the kind of values the data serves (a Likelihood's `fits` against the data's `values_for`)."""
    from vrnn_lightning.data.base import SequenceDataModule
    from vrnn_lightning.models.frames import ConvFrames
    from vrnn_lightning.models.likelihoods import Gaussian, Likelihood

    data_class = contract_target(cfg.get("data"), SequenceDataModule)
    if data_class is None:
        return
    settings = settings_of(cfg.data)
    data_class.check_settings(settings)
    model = cfg.get("model")
    head = contract_target(model.get("likelihood") if OmegaConf.is_dict(model) else None, Likelihood)
    if head is None:
        return
    values = data_class.values_for(settings)
    choice = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
    data_name = choice.get("data", data_class.__name__)
    head_name = choice.get("model/likelihood", head.__name__)
    if values not in head.fits:
        raise ConfigError(
            f"model/likelihood={head_name} scores {' or '.join(head.fits)} values, but data={data_name} serves "
            f"{values} values; use model/likelihood={' or '.join(heads_that_fit(values))}"
        )
    if issubclass(head, Gaussian) and values == "real" and OmegaConf.select(cfg, "model.likelihood.bounded") is True:
        raise ConfigError(
            f"model.likelihood.bounded=true is for intensities in [0, 1], but data={data_name} serves real values; "
            "use model.likelihood.bounded=false"
        )
    pixels = OmegaConf.select(cfg, "model.likelihood.pixels", default="bernoulli")
    if issubclass(head, ConvFrames) and values == "unit_interval_frames" and pixels == "bernoulli":
        raise ConfigError(
            f"model.likelihood.pixels=bernoulli scores binary pixels, but data={data_name} serves grey frames; "
            "use model.likelihood.pixels=gaussian, or data.binarize=true"
        )


def check_against_checkpoint(cfg: DictConfig, main: str, checkpoint: dict[str, Any]) -> None:
    """The options of eval and sample that depend on the checkpoint's data: the split, carried state, a prompt,
    and `data.*` settings its data module has."""
    from vrnn_lightning.objectives.base import skips_message
    from vrnn_lightning.training.checkpoints import check_data_overrides, datamodule_class

    data_class = datamodule_class(checkpoint)
    name = data_class.__name__
    if main == "eval":
        split = cfg.get("split")
        if split not in data_class.eval_splits:
            raise ConfigError(
                f"split={split} is not a split of this checkpoint's data ({name}); "
                f"choose one of {', '.join(data_class.eval_splits)}"
            )
        if OmegaConf.select(cfg, "eval.stateful") and not data_class.has_streams:
            raise ConfigError(
                f"eval.stateful=true carries the state along one long sequence, which this checkpoint's data "
                f"({name}) is not; drop it (it applies to text, data=shakespeare)"
            )
        head = (checkpoint.get("model_config") or {}).get("likelihood") or {}
        if OmegaConf.select(cfg, "eval.fivo_samples") and head.get("skips") is True:
            raise ConfigError(skips_message("eval.fivo_samples (the FIVO bound)"))
    if main == "sample" and cfg.get("prompt") and not data_class.takes_prompt:
        raise ConfigError(f"prompt= continues a text, and this checkpoint's data ({name}) is not text; drop prompt=")
    overrides = {k: v for k, v in settings_of(cfg.get("data") or {}).items() if v is not None}
    check_data_overrides(data_class, overrides)


def check_checkpoint(cfg: DictConfig, main: str) -> None:
    """Read the checkpoint a command names (safely: plain data, contract classes only) and check the options
    that depend on it, before a run folder is claimed; for a training run resuming with ckpt_path=last, its
    folder's last.ckpt. Lightning's own reads go through the same safe loader besides."""
    from vrnn_lightning.launch.run_folders import LIGHTNING_CKPT_NAMES
    from vrnn_lightning.training.checkpoints import read_checkpoint

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last" and OmegaConf.select(cfg, "hydra.run.dir"):  # the file Lightning would resume from
        ckpt_path = Path(cfg.hydra.run.dir) / "checkpoints" / "last.ckpt"
        if not ckpt_path.is_file():
            return
    if not ckpt_path or ckpt_path in LIGHTNING_CKPT_NAMES:
        return
    checkpoint = read_checkpoint(str(ckpt_path))
    if main in ("eval", "sample"):
        check_against_checkpoint(cfg, main, checkpoint)


class CheckConfig(Callback):
    """Runs `check_config` before Hydra writes anything into a run folder, for a run or each job of a sweep."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)  # the sweep's common settings; each job's swept values are checked by its main

    @staticmethod
    def _check(config: DictConfig) -> None:
        main = config.hydra.job.config_name
        if main in CHECKS:
            try:
                check_config(config, main)
                check_checkpoint(config, main)
            except ConfigError as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                exit_with(str(err))
