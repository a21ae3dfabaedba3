"""A resumed run keeps every tracker's history whole. Lightning's CSVLogger deletes the run's metrics.csv when it
starts again in the same folder, and MLflow would open a second run; here each checkpoint records where each
tracker stood (the rows of metrics.csv written so far, flushed first; the MLflow run's id; MLflow and W&B are
sent what they were held back, `trackers.Guarded`; the W&B run's id), and a run resumed from it continues the
same file, cut back to those rows (what was logged after the checkpoint is logged again), the same MLflow run and
the same W&B run."""

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

KEY = "tracker_history"  # where a checkpoint keeps it


class ContinuedWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is continued (its columns read back), not
    deleted."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class ContinuedCSVLogger(CSVLogger):
    """`logger=csv`: every logged figure as rows of <run folder>/csv/metrics.csv, continued by a resumed run."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedWriter(log_dir=self.log_dir)
        return self._experiment


def inner(logger: Any) -> Any:
    return getattr(logger, "inner", logger)  # seen through `Guarded`


def rows_written(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open(newline="") as file:
        return max(0, sum(1 for _ in csv.reader(file)) - 1)


def keep_rows(path: Path, count: int) -> None:
    """metrics.csv cut back to its header and first `count` rows, written to a temporary file and renamed."""
    if not path.is_file():
        return
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    partial = path.with_suffix(".csv.partial")
    with partial.open("w", newline="") as file:
        csv.writer(file).writerows(rows[: count + 1])
    partial.replace(path)


class TrackerHistory(L.Callback):
    """Records in each checkpoint where the trackers stood, and on resume puts them back there; a resumed run
    also logs at the steps an unbroken run does."""

    def __init__(self) -> None:
        self.resumed = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        history: dict[str, Any] = {}
        for logger in trainer.loggers:
            if hasattr(logger, "flush"):
                logger.flush()  # a tracker that holds figures back gets them as the checkpoint records them
        for logger in map(inner, trainer.loggers):
            if isinstance(logger, ContinuedCSVLogger) and trainer.is_global_zero:
                logger.save()  # what was logged so far reaches the file before it is counted
                history["csv_rows"] = rows_written(Path(logger.experiment.metrics_file_path))
            elif type(logger).__name__ == "MLFlowLogger" and logger.run_id:
                history["mlflow_run_id"] = logger.run_id
            elif type(logger).__name__ == "WandbLogger" and trainer.is_global_zero:
                history["wandb_run_id"] = logger.version
        checkpoint[KEY] = history

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self.resumed = True
        history = checkpoint.get(KEY) or {}
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            tracker = inner(logger)
            if isinstance(tracker, ContinuedCSVLogger) and "csv_rows" in history:
                writer = tracker.experiment
                writer.metrics = []  # nothing logged in this process before the resume point is kept twice
                keep_rows(Path(writer.metrics_file_path), history["csv_rows"])
            elif type(tracker).__name__ == "MLFlowLogger":
                # A run killed after sending a checkpoint's figures but before its file was written resumes from
                # the checkpoint before; the steps it sent beyond that are recomputed to the same values and
                # must not be sent twice
                logger.sent_before = mlflow_points(tracker)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, index: int) -> None:
        if self.resumed:
            # Lightning's restart adds one to the step its loggers use, assuming the checkpoint was written
            # before that count went up; a checkpoint written by the validation at an epoch's end was written
            # after, so every figure of the resumed run would be logged one step late. With one optimizer and
            # no skipped steps the count is the optimizer's step count, as in an unbroken run.
            trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
            self.resumed = False


def mlflow_points(logger: Any) -> set[tuple[str, int]]:
    """The (metric, step) points the MLflow run of `logger` holds already."""
    client, run_id = logger.experiment, logger.run_id
    keys = client.get_run(run_id).data.metrics
    return {(key, point.step) for key in keys for point in client.get_metric_history(run_id, key)}


def runs_to_continue(checkpoint: dict | None) -> dict[str, str]:
    """The tracker runs a resumed run logs to, those its checkpoint was written under: tracker -> run id."""
    history = (checkpoint or {}).get(KEY) or {}
    return {name: history[f"{name}_run_id"] for name in ("mlflow", "wandb") if history.get(f"{name}_run_id")}


def continue_run(node: Any, runs: dict[str, str]) -> dict[str, str]:
    """The arguments that make the tracker logger of config `node` continue its run of `runs`: MLflow's run id,
    W&B's id with resume allowed (offline, a second run folder of the same id, which `wandb sync` joins)."""
    target = str(node.get("_target_", ""))
    if target.endswith("MLFlowLogger") and "mlflow" in runs:
        return {"run_id": runs["mlflow"]}
    if target.endswith("WandbLogger") and "wandb" in runs:
        return {"id": runs["wandb"], "resume": "allow"}
    return {}
