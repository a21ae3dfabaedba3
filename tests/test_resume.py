"""Kill a real training run with SIGKILL, resume it in its own folder, and finish where an unbroken run does."""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.runs import TINY, run_main

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

# Validation, and so a checkpoint, every 3 steps; long enough that the kill lands mid-run.
KILLABLE = [*TINY, "trainer.max_steps=120", "callbacks.progress_bar=null", "callbacks.text_samples=null"]


def wait_for_checkpoint(process: subprocess.Popen, checkpoint: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.02)


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def mlflow_history(store: Path, key: str) -> tuple[int, list[int]]:
    """The number of runs in the store and the steps at which `key` was logged, over all of them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    steps = sorted(m.step for r in runs for m in client.get_metric_history(r.info.run_id, key))
    return len(runs), steps


def test_sigkill_then_resume_ends_as_the_unbroken_run_with_every_trackers_history_whole(tmp_path):
    """Under logger=many (TensorBoard, CSV and MLflow): the resumed run's final figures equal the unbroken run's
    to the last digit, and each tracker holds every logged step exactly once, in one run."""
    many = [*KILLABLE, "logger=many", "trainer.log_every_n_steps=1"]
    stores = {name: tmp_path / f"{name}.db" for name in ("unbroken", "killed")}
    unbroken = run_main(
        "train", *many, f"logger.mlflow.tracking_uri=sqlite:///{stores['unbroken']}",
        f"hydra.run.dir={tmp_path / 'unbroken'}", cwd=tmp_path,
    )  # fmt: skip
    assert unbroken.returncode == 0, unbroken.stderr[-3000:]

    run_dir = tmp_path / "killed"
    killed = [*many, f"logger.mlflow.tracking_uri=sqlite:///{stores['killed']}", f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "vrnn_lightning.train", *killed],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_checkpoint(process, run_dir / "checkpoints" / "last.ckpt")
        time.sleep(1.0)  # a few steps past the checkpoint: logged, then to be logged again after the resume
        process.kill()
    finally:
        process.wait()
    assert process.returncode == -9, "the run finished before it could be killed"
    last = run_dir / "checkpoints" / "last.ckpt"
    saved_step = torch.load(last, weights_only=False)["global_step"]
    assert 3 <= saved_step < 120 and not (run_dir / "metrics.json").exists()
    resumed = run_main("train", *killed, "ckpt_path=last", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restored all states from the checkpoint at {last}" in resumed.stdout + resumed.stderr
    assert torch.load(last, weights_only=False)["global_step"] == 120
    final = json.loads((tmp_path / "unbroken" / "metrics.json").read_text())
    got = json.loads((run_dir / "metrics.json").read_text())
    for name in ["val/loss", "test/loss", "test/kl", "test/recon", "best_val_loss"]:
        assert got[name] == final[name], (name, saved_step)  # exact: same seed, same windows, same noise on CPU

    expected, got = csv_rows(tmp_path / "unbroken"), csv_rows(run_dir)
    assert len(got) == len(expected)  # every row once: none lost before the kill, none twice after it
    assert [row["step"] for row in got] == [row["step"] for row in expected]
    assert [row.get("train/loss") for row in got] == [row.get("train/loss") for row in expected]
    runs, steps = mlflow_history(stores["killed"], "train/loss")
    assert runs == 1  # the resumed run continued the killed one's MLflow run
    assert steps == mlflow_history(stores["unbroken"], "train/loss")[1]  # each step once


def test_a_resumed_mlflow_run_skips_the_points_it_holds_already(tmp_path):
    """The race the SIGKILL test can only hit by chance: figures sent as a checkpoint is written, the process
    killed before the file is, the run resumed from the checkpoint before. The points the MLflow run holds are
    read back, and the resumed run's figures at those (metric, step) points are not sent again."""
    from lightning.pytorch.loggers import MLFlowLogger

    from vrnn_lightning.launch.tracker_history import mlflow_points
    from vrnn_lightning.launch.trackers import Guarded

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = Guarded(MLFlowLogger(experiment_name="train", tracking_uri=uri))
    for step in range(4):  # steps 0..3 reached MLflow before the kill; the checkpoint on disk is step 1's
        killed.log_metrics({"train/loss": 1.0 / (step + 1)}, step)
    killed.flush()
    run_id = killed.inner.run_id

    resumed = Guarded(MLFlowLogger(experiment_name="train", tracking_uri=uri, run_id=run_id))
    resumed.sent_before = mlflow_points(resumed.inner)
    assert resumed.sent_before == {("train/loss", step) for step in range(4)}
    for step in range(2, 6):  # what the resumed run logs after the checkpoint of step 1
        resumed.log_metrics({"train/loss": 1.0 / (step + 1), "val/loss": 0.5}, step)
    resumed.flush()
    history = resumed.inner.experiment.get_metric_history(run_id, "train/loss")
    assert sorted(point.step for point in history) == [0, 1, 2, 3, 4, 5]  # each step once
    assert len(resumed.inner.experiment.get_metric_history(run_id, "val/loss")) == 4
