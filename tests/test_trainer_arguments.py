"""Every argument of Lightning's Trainer is settable as trainer.<name>=<value>; a misspelt one is named in one
line with the nearest valid names."""

import pytest

from vrnn_lightning.errors import ConfigError
from vrnn_lightning.launch.trainer_arguments import trainer_argument_names, with_trainer_arguments


def test_trainer_arguments_are_set_whether_or_not_the_config_lists_them():
    given = ["model=srnn", "trainer.val_check_interval=20", "+trainer.max_time=00:00:05:00", "trainer=cpu", "-m"]
    assert with_trainer_arguments(given) == [
        "model=srnn",
        "++trainer.val_check_interval=20",
        "++trainer.max_time=00:00:05:00",
        "trainer=cpu",
        "-m",
    ]
    assert with_trainer_arguments(["~trainer.plugins"]) == ["~trainer.plugins"]  # deletions are Hydra's


def test_every_trainer_argument_but_those_the_groups_set_is_known():
    names = trainer_argument_names()
    assert {"val_check_interval", "accumulate_grad_batches", "max_time", "overfit_batches"} <= set(names)
    assert "logger" not in names and "callbacks" not in names


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("trainer.max_step=5", "is not an argument of Lightning's Trainer; did you mean trainer.max_steps"),
        ("trainer.val_check_intervall=5", "did you mean trainer.val_check_interval"),
        ("trainer.callbacks=null", "trainer.callbacks is set by the callbacks config group"),
    ],
)
def test_a_misspelt_trainer_argument_is_named_with_the_nearest(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("?", r"\?")):
        with_trainer_arguments([override])
