"""Truncated BPTT end to end: data.stateful=true trains over contiguous streams, and a resumed run whose stream
layout differs from its checkpoint's is refused in one line, its checkpoint untouched."""

import hashlib
import json

import pytest

from tests.helpers.runs import TINY, run_main

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

STATEFUL = [*TINY, "data.stateful=true", "data.stateful_eval=true", "data.eval_streams=4"]
STATEFUL += ["callbacks.progress_bar=null", "callbacks.text_samples=null"]


@pytest.mark.parametrize("model", ["vrnn", "rnn"])
def test_stateful_training_runs_and_a_changed_layout_cannot_resume(model, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [o for o in STATEFUL if model == "vrnn" or not o.startswith(("model.z_dim", "model.z_feat_dim"))]
    overrides += [f"model={model}"]
    result = run_main("train", *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["test/loss"] > 0
    last = run_dir / "checkpoints" / "last.ckpt"
    before = hashlib.sha256(last.read_bytes()).hexdigest()
    resumed = run_main(
        "train",
        *overrides,
        "data.batch_size=5",
        "trainer.max_steps=12",
        "ckpt_path=last",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    last_line = resumed.stderr.strip().splitlines()[-1]  # after Lightning's own resume warnings
    assert last_line.startswith("error: this run's training streams") and "start a new run" in last_line
    assert "Traceback" not in resumed.stderr
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before
