"""A real two-job multirun ends in a summary table and plot."""

import csv

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.helpers.runs import TINY, run_main
from vrnn_lightning.launch.sweeps import swept_keys


@pytest.mark.slow
def test_multirun_over_z_dim_writes_csv_markdown_and_plot(tmp_path):
    sweep_dir = tmp_path / "sweep"
    overrides = [o for o in TINY if not o.startswith("model.z_dim")]
    result = run_main(
        "train",
        "-m",
        *overrides,
        "model.z_dim=2,4",
        "callbacks.progress_bar=null",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["model.z_dim"] for row in rows] == ["2", "4"]
    assert all(
        float(row["best_val_loss"]) > 0 and float(row["test/loss"]) > 0 and float(row["wall_s"]) > 0 for row in rows
    )
    markdown = (sweep_dir / "summary.md").read_text()
    assert markdown.startswith("| job | model.z_dim | best_val_loss") and markdown.count("\n") == 4
    assert (sweep_dir / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # TensorBoard's HPARAMS tab: each job one session, its settings and its final figures
    sessions = [hparams_session(sweep_dir / job / "tensorboard") for job in ("0", "1")]
    assert [s["settings"]["model.z_dim"] for s in sessions] == [2.0, 4.0]
    assert all(s["settings"]["choice/model"] == "vrnn" and s["settings"]["module.optimizer.lr"] > 0 for s in sessions)
    experiment = sweep_experiment(sweep_dir)  # what the table's columns are: the swept setting, the figures
    assert [info.name for info in experiment.hparam_infos] == ["model.z_dim"]
    assert {"hparams/best_val_loss", "hparams/test/loss"} <= {m.name.tag for m in experiment.metric_infos}
    for session, row in zip(sessions, rows, strict=True):
        assert session["figures"]["hparams/best_val_loss"] == pytest.approx(float(row["best_val_loss"]), rel=1e-5)
        assert {"hparams/test/loss", "hparams/test/bpc", "hparams/wall_s"} <= set(session["figures"])


def sweep_experiment(sweep_dir):
    (events,) = sweep_dir.glob("events.out.tfevents.*.sweep")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    (raw,) = accumulator.PluginTagToContent("hparams").values()
    return plugin_data_pb2.HParamsPluginData.FromString(raw).experiment


def hparams_session(folder) -> dict:
    """The hyperparameters and final figures a run wrote for TensorBoard's HPARAMS tab, read from its events."""
    settings, figures = {}, {}
    for events in sorted(folder.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        try:
            contents = accumulator.PluginTagToContent("hparams").values()
        except KeyError:  # an event file without hyperparameters (the training curves)
            contents = []
        for raw in contents:
            data = plugin_data_pb2.HParamsPluginData.FromString(raw)
            if data.HasField("session_start_info"):
                for key, value in data.session_start_info.hparams.items():
                    settings[key] = value.number_value if value.HasField("number_value") else value.string_value
        for tag in accumulator.Tags()["scalars"]:
            if tag.startswith("hparams/"):
                figures[tag] = accumulator.Scalars(tag)[-1].value
    return {"settings": settings, "figures": figures}


def test_swept_keys_are_those_that_differ():
    rows = [{"overrides": "a=1 b=2 c=x"}, {"overrides": "a=1 b=3 c=y"}]
    assert swept_keys(rows) == ["b", "c"]
