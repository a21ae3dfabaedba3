"""What a user sees on the console: Lightning's log lines through Hydra's handlers, and no library warning
that does not apply to this project's runs."""

import logging
import warnings

# (message pattern, why it does not apply here)
NOT_APPLICABLE = [
    (
        r".*`isinstance\(treespec, LeafSpec\)` is deprecated",
        "Lightning's own pytree helper against a newer torch; nothing a user can change",
    ),
    (
        r".*Your `IterableDataset` has `__len__` defined",
        "the training datasets are read in the main process (num_workers=0), where their __len__ is exact",
    ),
]


ADVERTS = ("💡 Tip:", "Skipping setting a default `ModelSummary`")  # Lightning's info lines about itself


def quiet_library_noise() -> None:
    for pattern, _why in NOT_APPLICABLE:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not any(advert in record.getMessage() for advert in ADVERTS)
    )


def route_lightning_logs_to_hydra() -> None:
    """Lightning gives its loggers a handler of their own on stderr when imported before logging is set up;
    hand their lines to Hydra's handlers instead (the console on stdout and the run's log file), so stderr
    keeps warnings and errors only."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
