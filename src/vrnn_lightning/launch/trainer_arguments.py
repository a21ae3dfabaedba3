"""Every argument of Lightning's Trainer settable as `trainer.<name>=<value>`, without Hydra's `+` for those the
trainer config does not list, and a misspelt one named in one line with the nearest valid names."""

import difflib
import inspect
from collections.abc import Sequence

from vrnn_lightning.errors import ConfigError

PASSED_BY_TRAIN = ("logger", "callbacks")  # train.py builds these from the logger= and callbacks groups


def trainer_argument_names() -> list[str]:
    from lightning import Trainer

    return [name for name in inspect.signature(Trainer).parameters if name not in PASSED_BY_TRAIN]


def with_trainer_arguments(overrides: Sequence[str]) -> list[str]:
    """`overrides` with each `trainer.<name>=<value>` (and `+trainer.<name>=...`) of a Trainer argument written
    as Hydra's `++trainer.<name>=<value>`, which sets it whether or not the chosen trainer config lists it."""
    names = None
    rewritten = []
    for override in overrides:
        key, sep, value = override.partition("=")
        bare = key.lstrip("+")
        if not sep or key.startswith("~") or not bare.startswith("trainer.") or bare.count(".") != 1:
            rewritten.append(override)
            continue
        names = names or trainer_argument_names()
        name = bare.removeprefix("trainer.")
        if name in PASSED_BY_TRAIN:
            raise ConfigError(f"trainer.{name} is set by the {name} config group; use {name.rstrip('s')}=... instead")
        if name not in names:
            nearest = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(f'trainer.{n}' for n in nearest)}?" if nearest else "see its docs"
            raise ConfigError(f"trainer.{name} is not an argument of Lightning's Trainer; {hint}")
        rewritten.append(f"++{bare}={value}")
    return rewritten
