"""A real two-job multirun ends in a summary table and plot."""

import csv

import pytest

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


def test_swept_keys_are_those_that_differ():
    rows = [{"overrides": "a=1 b=2 c=x"}, {"overrides": "a=1 b=3 c=y"}]
    assert swept_keys(rows) == ["b", "c"]
