"""End to end: the real entry point, as a user types it, on a tiny config."""

import math
import subprocess
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers.runs import TINY, run_main
from vrnn_lightning.data.text import Vocabulary, sample_text
from vrnn_lightning.training.checkpoints import load_module, read_checkpoint

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_main("train", *overrides, cwd=cwd)


def test_train_writes_separate_finite_kl_and_recon_curves(tiny_run):
    result, run_dir = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(str(run_dir / "tensorboard"))  # fit and test each write an event file
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in [
        "train/kl",
        "train/recon",
        "train/loss",
        "val/kl",
        "val/recon",
        "val/loss",
        "val/bpc",
        "test/bpc",
        "val/loss_per_sequence",
        "val/active_units",
        "val/units_off_prior",
    ]:
        assert tag in scalars, f"{tag} missing from {scalars}"
        assert all(math.isfinite(e.value) for e in events.Scalars(tag))
    val = {t: events.Scalars(t)[-1].value for t in ["val/kl", "val/recon", "val/loss", "val/bpc"]}
    assert val["val/loss"] == pytest.approx(val["val/kl"] + val["val/recon"], rel=1e-5)
    assert val["val/bpc"] == pytest.approx(val["val/loss"] / math.log(2), rel=1e-5)
    assert "samples/text_summary" in events.Tags()["tensors"]


def test_train_prints_metrics_and_run_folder(tiny_run):
    result, run_dir = tiny_run
    assert "test/bpc:" in result.stdout and f"run folder: {run_dir}" in result.stdout


def test_train_leaves_a_checkpoint_that_alone_can_sample(tiny_run):
    _, run_dir = tiny_run
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file() and list(checkpoints.glob("best-*.ckpt"))
    module = load_module(read_checkpoint(str(checkpoints / "last.ckpt")))
    text = sample_text(module.model, Vocabulary(module.hparams.data_metadata["vocab"]), "ROMEO:", 30, seed=0)
    assert text.startswith("ROMEO:") and len(text) == 36


def test_fast_dev_run_debug_config(tmp_path):
    result = run_train(*TINY, "debug=fdr", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/loss:" in result.stdout


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert all(f in lines[0] for f in fragments), lines[0]


def test_an_earlier_run_folder_is_never_written_over(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("earlier run")
    result = run_train(*TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_one_line_error(result, "already holds an earlier run", "hydra.run.dir")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "earlier run"
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra"]


def test_mnist_run_writes_image_grids_and_the_per_image_bound(tiny_mnist_run):
    result, run_dir = tiny_mnist_run
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"images/reconstructions", "images/samples", "images/completions"} <= set(events.Tags()["images"])
    assert events.Images("images/samples")[-1].width > 28 * 8
    bound = events.Scalars("val/loss_per_sequence")[-1].value
    assert math.isfinite(bound) and bound == pytest.approx(28 * events.Scalars("val/loss")[-1].value, rel=1e-4)


def test_ddp_on_two_cpu_processes_shares_one_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    result = run_train(
        *TINY, "trainer=ddp_cpu", "callbacks.progress_bar=null", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run folder:") == 1  # rank 0 reports
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "train_ddp_process_1.log").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no folder per rank
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert math.isfinite(events.Scalars("val/loss")[-1].value)


def test_a_stopped_run_resumes_in_its_own_folder(tmp_path):
    run_dir = tmp_path / "run"
    first = run_train(*TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_train(*TINY, "trainer.max_steps=9", "ckpt_path=last", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 9
