"""The trackers beside TensorBoard, read back with each one's own reader: the CSV files, MLflow's client, W&B's
offline run file (its protobuf records); for a single run and for a 2-job sweep, which each tracker shows as one
experiment or group of runs named after their folders. No network: MLflow keeps a local store, W&B runs
offline."""

import csv
import importlib.util
import os
import signal
from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import TINY, run_main
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.launch.trackers import check_trackers, experiment_name, run_name

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points


def mlflow_runs(store) -> dict[str, list]:
    """Experiment name -> its runs, read by MLflow's client."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    return {e.name: client.search_runs([e.experiment_id]) for e in experiments}


def wandb_run(folder) -> dict:
    """The run name, group, config and logged keys of the one W&B offline run under `folder`."""
    from tests.helpers.wandb_records import records

    (path,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    found = {"config": {}, "logged": set()}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["name"], found["group"] = record.run.display_name, record.run.run_group
        elif kind == "config":
            found["config"].update({item.key: item.value_json for item in record.config.update})
        elif kind in ("history", "summary"):
            items = record.history.item if kind == "history" else record.summary.update
            found["logged"] |= {"/".join(item.nested_key) or item.key for item in items}
    return found


def test_one_run_reaches_tensorboard_csv_and_mlflow_at_once(tmp_path):
    run = tmp_path / "outputs" / "train" / "runs" / "mine"
    result = run_main("train", *TINY, "logger=many", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    with open(run / "csv" / "metrics.csv") as rows:
        table = list(csv.DictReader(rows))
    assert {"train/loss", "val/loss", "val/kl", "hparams/test/loss"} <= set(table[0])
    assert any(row["val/loss"] for row in table) and any(row["hparams/test/loss"] for row in table)
    assert yaml.safe_load((run / "csv" / "hparams.yaml").read_text())["model.z_dim"] == 4
    experiments = mlflow_runs(tmp_path / "outputs" / "mlflow.db")
    (only,) = experiments["train"]
    assert only.info.run_name == "mine" and only.info.status == "FINISHED"
    assert only.data.params["model.z_dim"] == "4" and only.data.params["choice/model"] == "vrnn"
    assert {"val/loss", "train/kl", "hparams/test/loss", "hparams/best_val_loss"} <= set(only.data.metrics)


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_sweep_is_one_experiment_of_runs_named_by_their_swept_values_and_tagged(tracker, tmp_path):
    sweep = tmp_path / "outputs" / "sweep"
    result = run_main(
        "train", "-m", *TINY, f"logger={tracker}", "model.z_dim=4,6", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if tracker == "mlflow":
        experiments = mlflow_runs(tmp_path / "outputs" / "mlflow.db")
        runs = experiments["train sweep sweep"]
        (summary,) = [r for r in runs if r.info.run_name == "sweep summary"]  # the sweep's table and plot
        import mlflow

        client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
        listed = client.list_artifacts(summary.info.run_id)
        assert {"summary.csv", "summary.md", "summary.png"} <= {a.path for a in listed}
        runs = [r for r in runs if r is not summary]
        assert sorted(r.info.run_name for r in runs) == ["model.z_dim=4", "model.z_dim=6"]
        assert sorted(r.data.params["model.z_dim"] for r in runs) == ["4", "6"]
        assert all("hparams/test/loss" in r.data.metrics for r in runs)
        tags = runs[0].data.tags
        named = (tags["model"], tags["data"], tags["objective"], tags["sweep"])
        assert named == ("vrnn", "shakespeare", "elbo", "sweep")
        assert len(tags["git_commit"]) == 40 or tags["git_commit"] == "unknown"
        params = runs[0].data.params
        assert "batch_size" not in params and not any(p.startswith("data_metadata") for p in params)  # once each
    else:
        jobs = [wandb_run(sweep / str(job)) for job in (0, 1)]
        assert [j["name"] for j in jobs] == ["model.z_dim=4", "model.z_dim=6"]
        assert {j["group"] for j in jobs} == {"train sweep sweep"}
        assert [j["config"]["model.z_dim"] for j in jobs] == ["4", "6"]
        assert all({"val/loss", "hparams/test/loss"} <= j["logged"] for j in jobs)
        summary = wandb_run(sweep)  # the sweep's table and plot, a run of the jobs' group
        assert summary["name"] == "sweep summary" and summary["group"] == "train sweep sweep"
        assert {"sweep/summary/_type", "sweep/table/_type"} <= summary["logged"]  # an image and a table
        (files,) = sweep.glob("wandb/offline-run-*/files")
        assert {"summary.csv", "summary.md", "summary.png"} <= {p.name for p in files.iterdir()}


def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    """W&B offline: the resumed run writes a second run folder under the first one's id, which `wandb sync`
    joins into one run, with the steps after the checkpoint."""
    from tests.helpers.wandb_records import records

    run_dir = tmp_path / "run"
    first = run_main("train", *TINY, "logger=wandb", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_main(
        "train", *TINY, "logger=wandb", "trainer.max_steps=9", "ckpt_path=last", f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ids, steps = [], []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        found = records(path)
        ids += [r.run.run_id for r in found if r.WhichOneof("record_type") == "run"]
        history = [i for r in found if r.WhichOneof("record_type") == "history" for i in r.history.item]
        steps.append(
            sorted({int(float(i.value_json)) for i in history if "/".join(i.nested_key) == "trainer/global_step"})
        )
    assert len(ids) == 2 and ids[0] == ids[1], ids
    assert steps[0][-1] == 6 and steps[1][-1] == 9 and min(steps[1]) >= 6, steps  # 6 steps, then on to 9


def test_run_names_and_the_missing_extra_are_said_in_one_line(monkeypatch):
    monkeypatch.delenv("VRNN_SWEPT", raising=False)
    assert run_name("outputs/train/runs/2026-12-06_09-00-00") == "2026-12-06_09-00-00"
    assert run_name("outputs/train/multiruns/2026-12-06_09-00-00/3") == "2026-12-06_09-00-00/3"
    assert experiment_name("outputs/train/multiruns/x/3", "train") == "train sweep x"
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "wandb" else found(name))
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"logger": {"wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger"}}})
    with pytest.raises(ConfigError, match=r"logger=wandb needs W&B \(wandb\), which is not installed; pip install"):
        check_trackers(cfg)


def test_a_tracker_that_fails_mid_run_loses_nothing_else(tmp_path):
    run = tmp_path / "run"
    broken = ["+logger.broken._target_=tests.helpers.broken_logger.BrokenLogger", f"+logger.broken.save_dir={run}"]
    result = run_main("train", *TINY, *broken, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file() and list((run / "tensorboard").glob("events.out.*"))
    said = (run / "train.log").read_text()
    assert said.count("logger BrokenLogger failed (ConnectionError: the tracking server went away)") == 1


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rest(port: int, endpoint: str, body: dict | None = None, query: str = "") -> dict:
    import json
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    address = f"http://127.0.0.1:{port}/api/2.0/mlflow/{endpoint}{query}"
    request = urllib.request.Request(address, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_mlflow_server_shows_a_runs_params_metrics_and_pictures(tmp_path):
    """What a lab does first: start `mlflow server` on the run's store and read the run back through its REST API,
    with the text samples and the KL-per-dimension values among its artifacts."""
    import shutil
    import subprocess
    import sys
    import time
    import urllib.error

    run = tmp_path / "outputs" / "train" / "runs" / "mine"
    result = run_main("train", *TINY, "logger=mlflow", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "mlruns").exists() or not any((tmp_path / "mlruns").rglob("*.png"))
    port, store = free_port(), tmp_path / "outputs" / "mlflow.db"
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    server = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{store}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                experiments = rest(port, "experiments/search", {"max_results": 10})["experiments"]
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        (experiment,) = [e for e in experiments if e["name"] == "train"]
        (found,) = rest(port, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        assert found["info"]["run_name"] == "mine" and found["info"]["status"] == "FINISHED"
        params = {p["key"]: p["value"] for p in found["data"]["params"]}
        assert params["model.z_dim"] == "4" and params["choice/objective"] == "elbo"
        metrics = {m["key"] for m in found["data"]["metrics"]}
        assert {"val/loss", "train/kl", "hparams/test/loss"} <= metrics
        run_id = found["info"]["run_id"]
        listed = rest(port, "artifacts/list", query=f"?run_id={run_id}")
        folders = {f["path"] for f in listed.get("files", [])}
        assert {"samples", "val"} <= folders, folders
        assert found["info"]["artifact_uri"].startswith(str(tmp_path / "outputs" / "mlartifacts"))
    finally:  # the server and the gunicorn workers it starts: its whole process group
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
