"""Where the dashboards' pictures go: TensorBoard's writer, whichever place TensorBoard has among the run's
loggers (`logger=many` puts CSV and MLflow beside it); None without TensorBoard (the callbacks then skip)."""

from typing import Any

import lightning as L


def tensorboard_of(trainer: L.Trainer) -> Any:
    """The SummaryWriter of the run's TensorBoard logger, or None."""
    logger = next((lg for lg in trainer.loggers if type(lg).__name__ == "TensorBoardLogger"), None)
    return None if logger is None else logger.experiment
