"""A user's own config folder composes beside the packaged configs (Hydra's --config-dir)."""

import json

import pytest

from tests.helpers.runs import TINY, run_main

RNN_TINY = [o for o in TINY if not o.startswith(("model.z_dim", "model.z_feat_dim"))]  # the RNN has no latents

pytestmark = pytest.mark.slow  # an end-to-end run


def test_an_experiment_file_outside_the_checkout_composes_and_runs(tmp_path):
    mine = tmp_path / "my_configs" / "experiment"
    mine.mkdir(parents=True)
    (mine / "my_run.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: rnn\ntask_name: my_run\nmodel:\n  rnn: lstm\n"
    )
    run = tmp_path / "run"
    result = run_main(
        "train",
        "--config-dir",
        str(tmp_path / "my_configs"),
        "experiment=my_run",
        *RNN_TINY,
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = (run / ".hydra" / "config.yaml").read_text()
    assert "task_name: my_run" in saved and "rnn: lstm" in saved and "vrnn_lightning.models.RNN" in saved
    assert json.loads((run / "metrics.json").read_text())["test/kl"] == 0.0  # the RNN it asked for
