"""Bad user input: one exception type, and the mains' contract of one line on stderr and exit status 2.

Beside the mains rather than in `launch/`: data modules, models' callers and the mains all raise `ConfigError`,
so it is a leaf that imports nothing of the project (and Hydra only when a main reports an error).
"""

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # the packaged configs: in a wheel as in a clone


class ConfigError(ValueError):
    """Input the user can fix; the message names the problem and the fix."""


def user_message(err: Exception) -> str | None:
    """The message of a bad-input error: a ConfigError, or a ValueError a constructor raised on a config value."""
    from hydra.errors import InstantiationException

    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, InstantiationException) and isinstance(err.__cause__, ValueError):
        return str(err.__cause__)
    return None


def exit_with(message: str, status: int = 2) -> NoReturn:
    """The contract itself: `error: <message>` on stderr, exit status 2 (bad input) unless told otherwise."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def unexpected_message(err: Exception) -> str:
    """One line for an exception no check foresaw, naming the setting behind it where Hydra recorded it (the
    `full_key` of an object it failed to build)."""
    cause = err.__cause__ if err.__cause__ is not None else err
    text = str(cause).strip().splitlines()
    line = f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")
    full_key = next(
        (part.split(":", 1)[1].strip() for part in str(err).splitlines() if part.startswith("full_key:")), None
    )
    where = f"{full_key}: " if full_key else ""
    return f"{where}{line} (HYDRA_FULL_ERROR=1 shows the traceback)"


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Report bad input as `error: ...` and exit 2, a run stopped by a signal as `stopped: ...` with its own
    status, and anything else in one line too, exit 1; HYDRA_FULL_ERROR=1 shows the traceback instead."""
    try:
        yield
    except Exception as err:
        if isinstance(getattr(err, "exit_status", None), int):  # a run stopped on purpose (a signal), not an error
            print(f"stopped: {err}", file=sys.stderr)
            sys.exit(err.exit_status)
        message = user_message(err)
        if message is not None:  # bad input: the run folder it claimed, untouched, is given back
            from vrnn_lightning.launch.run_folders import release_untouched_run_folder

            release_untouched_run_folder()
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if message is None:
            exit_with(unexpected_message(err), status=1)
        exit_with(message)


def user_config_dirs(argv: Sequence[str]) -> list[Path]:
    """The folders of the user's own configs a command names, by Hydra's `--config-dir` (`-cd`) or by
    `hydra.searchpath=[...]` (plain or `file://` entries); each must exist."""
    folders: list[tuple[str, str]] = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            folders.append(("--config-dir", argv[i + 1]))
        elif arg.startswith("--config-dir="):
            folders.append(("--config-dir", arg.split("=", 1)[1]))
        elif arg.lstrip("+").startswith("hydra.searchpath="):
            entries = arg.split("=", 1)[1].strip("[]").split(",")
            folders += [("hydra.searchpath", e.strip().strip("'\"")) for e in entries if "pkg://" not in e]
    paths = []
    for option, folder in folders:
        path = Path(folder.removeprefix("file://")).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"{option}={folder} is not a folder (looked for {path.resolve()}); pass the folder that holds your "
                "config groups (experiment/, model/, data/, ...)"
            )
        paths.append(path)
    return paths


def check_user_configs(overrides: Sequence[str], config_dir: Path = CONFIG_DIR) -> None:
    """The user's own config files, before Hydra reads them: each must be YAML (a syntax error is one line naming
    the file and line, not Hydra's traceback), and each option its defaults list picks for a group
    (`- override /model: srnn`) must be a config of that group, here or in the packaged configs."""
    import yaml

    folders = user_config_dirs(overrides)
    for folder in folders:
        for path in sorted(folder.rglob("*.yaml")):
            try:
                content = yaml.safe_load(path.read_text())
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                raise ConfigError(f"{where} is not valid YAML: {problem}; fix the file") from None
            defaults = content.get("defaults") if isinstance(content, dict) else None
            for entry in defaults if isinstance(defaults, list) else []:
                if isinstance(entry, dict) and len(entry) == 1:
                    check_default(path, folder, *next(iter(entry.items())), [config_dir, *folders])


def check_default(path: Path, root: Path, key: str, option: object, folders: list[Path]) -> None:
    """One entry of a user config's defaults list, `[override ][/]group: option`."""
    group = key.removeprefix("override ").strip()
    if not isinstance(option, str) or option in ("_self_", "null") or "@" in group or "${" in option:
        return
    relative = group.lstrip("/") if group.startswith("/") else str(path.parent.relative_to(root) / group)
    groups = [folder / relative for folder in folders if (folder / relative).is_dir()]
    if not groups or relative.startswith("hydra"):  # a group that plugins provide, or none of ours
        return
    options = sorted({p.stem for g in groups for p in g.glob("*.yaml")})
    if option not in options:
        where = " and ".join(str(folder / relative) for folder in folders)
        raise ConfigError(
            f"{path} picks {relative}={option}, which is not a config of {relative}/ (looked in {where}); "
            f"choose one of: {', '.join(options)}"
        )


# Settings that moved to the objective's own config (conf/objective/): old spelling -> new
MOVED = {
    "module.objective": "objective=NAME",
    "module.train_samples": "objective.samples",
    "module.free_bits": "objective.free_bits",
    "module.kl_warmup_steps": "objective.kl_warmup_steps",
    "module.resample_threshold": "objective.resample_threshold",
    "module.resampling": "objective.resampling",
}


def moved_message(old: str) -> str:
    return f"{old} has moved: the objective's settings are its own now; use {MOVED[old]} (conf/objective/)"


def check_group_choices(overrides: Sequence[str], config_dir: Path = CONFIG_DIR) -> None:
    """Name an unknown option of a config group (`trainer=tpu`, `experiment=my_run`) in one line, before
    Hydra's many-line report, saying where it looked: the packaged configs and the user's own folders. Groups
    that plugins provide (hydra/launcher=..., hydra/sweeper=...) are left to Hydra."""
    for override in overrides:
        key = override.partition("=")[0].lstrip("+~")
        if key in MOVED:
            raise ConfigError(moved_message(key))
    check_user_configs(overrides, config_dir)
    folders = [config_dir, *user_config_dirs(overrides)]
    for override in overrides:
        key, sep, values = override.partition("=")
        key = key.lstrip("+~")
        groups = [folder / key for folder in folders if (folder / key).is_dir()]
        if not sep or key.startswith("hydra") or key.startswith("-") or "." in key or not groups:
            continue
        options = sorted({p.stem for group in groups for p in group.glob("*.yaml")})
        for value in values.split(","):  # a multirun sweeps several
            if value not in ("null", "") and value not in options:
                where = " and ".join(str(folder / key) for folder in folders)
                raise ConfigError(
                    f"{key}={value} is not a config of {key}/ (looked in {where}); choose one of: {', '.join(options)}"
                )


TRAINING_ONLY = ("model", "objective", "module", "trainer", "logger", "callbacks", "experiment", "hparams_search")
NOT_FOR = {  # main -> keys of the others' configs that do not apply to it, and where they do
    "eval": {
        **{key: "train" for key in TRAINING_ONLY},
        **{key: "sample" for key in ("prompt", "length", "num_samples", "temperature", "image_scale")},
    },
    "sample": {**{key: "train" for key in TRAINING_ONLY}, "eval": "eval", "split": "eval", "device": "eval"},
}


def check_command_line(argv: Sequence[str], main: str) -> None:
    """What Hydra would answer in its own words, in one line: an option that does not apply to this main (a model
    on eval, whose checkpoint names its model; eval's options on sample), an empty run folder, and a value with
    characters beyond ASCII that Hydra's grammar reads only when quoted."""
    for override in argv:
        key, sep, value = override.partition("=")
        bare = key.lstrip("+~")
        if not sep or bare.startswith("-"):
            continue
        head = bare.split(".")[0].split("/")[0]
        if head in NOT_FOR.get(main, {}):
            where = NOT_FOR[main][head]
            why = "the checkpoint's own settings are used" if where == "train" else f"it is an option of {where}"
            raise ConfigError(f"{bare}= does not apply to {main}: {why}; drop it")
        if bare in ("hydra.run.dir", "hydra.sweep.dir") and not value.strip("'\" "):
            raise ConfigError(f"{bare} is empty; give it a folder (or leave it out for a fresh one under outputs/)")
        if not value.isascii() and not (value[:1] in "'\"" and value[-1:] == value[:1]):
            raise ConfigError(f"{bare}={value} holds characters Hydra reads only in quotes; write {bare}='{value}'")


def run_cli(
    main: Callable[[], Any], rewrite: Callable[[list[str]], list[str]] | None = None, name: str = "train"
) -> None:
    """A main's command line (`vrnn-train`, `python -m vrnn_lightning.train`; eval and sample alike, `name`):
    the config groups, moved settings and options that do not apply checked in one line, the arguments rewritten
    where the main asks (`rewrite`: train's Trainer arguments), then Hydra's main."""
    with one_line_errors():
        check_command_line(sys.argv[1:], name)
        check_group_choices(sys.argv[1:])
        if name != "train":  # train composes every job of a sweep in its `rewrite` (check_sweep_jobs)
            from vrnn_lightning.launch.sweep_checks import check_single_run

            check_single_run(sys.argv[1:], name)
        if rewrite is not None:
            sys.argv[1:] = rewrite(sys.argv[1:])
    main()
