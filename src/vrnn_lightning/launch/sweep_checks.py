"""A sweep checked before its first job: each job's composed config goes through the same checks a single run's
does (`check_config`), so a bad combination (`-m model=vrnn,storn model.posterior=smoothing`) is refused in one
line naming the job and its swept values, before any job trains or any sweep folder holds a run. A setting that
no config has (`model.z_dimm=8`), single run or sweep, is named in one line with the nearest that exist."""

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import OmegaConf

from vrnn_lightning.errors import CONFIG_DIR, ConfigError, user_config_dirs

FLAGS_WITH_VALUES = ("--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp")


def sweep_overrides(argv: Sequence[str]) -> list[str] | None:
    """The overrides of a multirun command line (`-m` / `--multirun`); None for a single run."""
    if "-m" not in argv and "--multirun" not in argv:
        return None
    overrides, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in FLAGS_WITH_VALUES:
            skip = True
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides


def unknown_setting_line(err: Exception, compose_without: Callable[[str], Any]) -> str | None:
    """Hydra's several lines for an override of a key the config lacks, as one line with the nearest keys."""
    text = str(err) + " " + str(err.__cause__ or "")
    found = re.search(r"full_key: (\S+)", text)
    if "not in struct" not in text or found is None:
        return None
    full_key = found.group(1)
    parent, _, leaf = full_key.rpartition(".")
    try:
        node = compose_without(full_key)
        siblings = [str(k) for k in (OmegaConf.select(node, parent) if parent else node)]
    except Exception:
        siblings = []
    nearest = difflib.get_close_matches(leaf, siblings, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(f'{parent}.{n}' if parent else n for n in nearest)}? " if nearest else ""
    return f"{full_key} is not a setting of this config; {hint}(+{full_key}=... adds a new one)"


def check_single_run(argv: Sequence[str], config_name: str = "train") -> None:
    """A single run's overrides composed once before Hydra's main (of `config_name`: train, eval or sample), so a
    key no config has is one line."""
    from hydra import compose, initialize_config_dir

    overrides = [a for a in sweep_overrides([*argv, "-m"]) or [] if not a.lstrip("+~").startswith("hydra")]
    folders = user_config_dirs(argv)
    searchpath = [f"hydra.searchpath=[{','.join(f'file://{f.resolve()}' for f in folders)}]"] if folders else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        try:
            compose(config_name, overrides=[*overrides, *searchpath])
        except Exception as err:

            def without(key: str) -> Any:
                kept = [o for o in overrides if o.lstrip("+~").split("=")[0] != key]
                return compose(config_name, overrides=[*kept, *searchpath])

            line = unknown_setting_line(err, without)
            if line is not None:
                raise ConfigError(line) from None


def check_sweep_jobs(argv: Sequence[str]) -> list[str]:
    """Compose every job of a basic sweep and check its config; the first bad one raises a ConfigError naming the
    job's number and swept values. Returns the swept settings (what tells the jobs apart; the trackers name runs
    by them). Searches (Optuna) choose their jobs as they go and are checked job by job."""
    overrides = sweep_overrides(argv)
    if overrides is None:
        check_single_run(argv)
        return []
    if not overrides or any(o.lstrip("+~").split("=")[0] in ("hparams_search", "hydra/sweeper") for o in overrides):
        return []
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vrnn_lightning.launch.config_checks import check_config

    parsed = OverridesParser.create().parse_overrides(overrides)
    swept = [p.key_or_group for p in parsed if p.is_sweep_override()]
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    folders = user_config_dirs(argv)
    searchpath = [f"hydra.searchpath=[{','.join(f'file://{f.resolve()}' for f in folders)}]"] if folders else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for number, job in enumerate(jobs):
            values = " ".join(o for o in job if o.lstrip("+~").split("=")[0] in swept) or " ".join(job)
            try:
                cfg = compose("train", overrides=[*job, *searchpath], return_hydra_config=True)
            except Exception as err:  # a setting this job's config lacks (one model's, swept across the family)

                def without(key: str, job: list[str] = job) -> Any:
                    kept = [o for o in job if o.lstrip("+~").split("=")[0] != key]
                    return compose("train", overrides=[*kept, *searchpath])

                line = unknown_setting_line(err, without)
                if line is None:  # anything else Hydra reports itself, as for a single run
                    return swept
                raise ConfigError(f"sweep job {number} of {len(jobs)} ({values}): {line}") from None
            if cfg.hydra.runtime.choices.get("hydra/sweeper") not in (None, "basic"):
                return []
            try:
                check_config(cfg, "train")
            except ConfigError as err:
                raise ConfigError(f"sweep job {number} of {len(jobs)} ({values}): {err}") from None
    return swept
