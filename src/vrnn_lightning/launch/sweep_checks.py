"""A sweep checked before its first job: each job's composed config goes through the same checks a single run's
does (`check_config`), so a bad combination (`-m model=vrnn,storn model.posterior=smoothing`) is refused in one
line naming the job and its swept values, before any job trains or any sweep folder holds a run."""

from collections.abc import Sequence

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


def check_sweep_jobs(argv: Sequence[str]) -> list[str]:
    """Compose every job of a basic sweep and check its config; the first bad one raises a ConfigError naming the
    job's number and swept values. Returns the swept settings (what tells the jobs apart; the trackers name runs
    by them). Searches (Optuna) choose their jobs as they go and are checked job by job."""
    overrides = sweep_overrides(argv)
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
            try:
                cfg = compose("train", overrides=[*job, *searchpath], return_hydra_config=True)
            except Exception:  # what cannot be composed Hydra reports itself, as for a single run
                return swept
            if cfg.hydra.runtime.choices.get("hydra/sweeper") not in (None, "basic"):
                return []
            try:
                check_config(cfg, "train")
            except ConfigError as err:
                values = " ".join(o for o in job if o.lstrip("+~").split("=")[0] in swept) or " ".join(job)
                raise ConfigError(f"sweep job {number} of {len(jobs)} ({values}): {err}") from None
    return swept
