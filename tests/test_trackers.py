"""The trackers beside TensorBoard, read back with each one's own reader: the CSV files, MLflow's client, W&B's
offline run file (its protobuf records); for a single run and for a 2-job sweep, which each tracker shows as one
experiment or group of runs named after their folders. No network: MLflow keeps a local store, W&B runs
offline."""

import csv
import importlib.util

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
def test_a_sweep_is_one_experiment_of_runs_named_after_their_folders(tracker, tmp_path):
    sweep = tmp_path / "outputs" / "sweep"
    result = run_main(
        "train", "-m", *TINY, f"logger={tracker}", "model.z_dim=4,6", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if tracker == "mlflow":
        experiments = mlflow_runs(tmp_path / "outputs" / "mlflow.db")
        runs = experiments["train sweep sweep"]
        assert sorted(r.info.run_name for r in runs) == ["sweep/0", "sweep/1"]
        assert sorted(r.data.params["model.z_dim"] for r in runs) == ["4", "6"]
        assert all("hparams/test/loss" in r.data.metrics for r in runs)
    else:
        jobs = [wandb_run(sweep / str(job)) for job in (0, 1)]
        assert [j["name"] for j in jobs] == ["sweep/0", "sweep/1"] and {j["group"] for j in jobs} == {
            "train sweep sweep"
        }
        assert [j["config"]["model.z_dim"] for j in jobs] == ["4", "6"]
        assert all({"val/loss", "hparams/test/loss"} <= j["logged"] for j in jobs)


def test_run_names_and_the_missing_extra_are_said_in_one_line(monkeypatch):
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
