"""Scaling out: DDP against one process, sweeps through submitit, Optuna search, SLURM on localhost."""

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.runs import TINY, run_main
from tests.slurm_cluster import local_slurm, why_unavailable
from vrnn_lightning.data import load_corpus

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    """20,000 characters: 1,000 of validation text, 63 windows of 16 = 8 batches of 8, split evenly by 2 ranks."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(load_corpus()[:20_000], encoding="utf-8")
    return path


def test_ddp_matches_one_process_with_the_same_global_batch(tmp_path, small_corpus):
    common = [
        *TINY,
        f"data.path={small_corpus}",
        "trainer.limit_val_batches=1.0",
        "trainer.limit_test_batches=1.0",
        "callbacks.progress_bar=null",
        "callbacks.text_samples=null",
    ]
    single = run_main(
        "train", *common, "trainer=cpu", "data.batch_size=8", f"hydra.run.dir={tmp_path / 'single'}", cwd=tmp_path
    )
    ddp = run_main(
        "train", *common, "trainer=ddp_cpu", "data.batch_size=4", f"hydra.run.dir={tmp_path / 'ddp'}", cwd=tmp_path
    )
    assert single.returncode == 0 and ddp.returncode == 0, (single.stderr + ddp.stderr)[-3000:]
    one = json.loads((tmp_path / "single" / "metrics.json").read_text())
    two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    # The windows, global batch and gradient average are the same; the posterior noise is not (each rank draws
    # its own), which moved the bounds by at most 0.0013 nats/char here. Tolerance: 0.005.
    for name in ["val/loss", "val/recon", "test/loss", "best_val_loss"]:
        assert two[name] == pytest.approx(one[name], abs=0.005), name
    assert math.isfinite(two["test/kl"])


SWEEP = [*TINY, "callbacks.progress_bar=null", "callbacks.text_samples=null"]


def read_summary(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_sweep_of_ddp_jobs_runs_each_job_on_two_ranks_in_its_own_folder(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_main(
        "train", "-m", *SWEEP, "trainer=ddp_cpu", "model.z_dim=2,4", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["model.z_dim"] for row in read_summary(sweep_dir)] == ["2", "4"]
    for job in ("0", "1"):  # rank 1 of each job logged into that job's folder, and started no sweep of its own
        assert (sweep_dir / job / "train_ddp_process_1.log").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]


def test_optuna_search_runs_two_trials_and_names_the_best(tmp_path):
    sweep_dir = tmp_path / "search"
    result = run_main(
        "train",
        "hparams_search=shakespeare_optuna",
        "hydra.sweeper.n_trials=2",
        *SWEEP,
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    trials = [json.loads((sweep_dir / str(i) / "metrics.json").read_text()) for i in range(2)]
    assert best["best_value"] == pytest.approx(min(t["best_val_bpc"] for t in trials))
    # model.z_dim and model.h_dim are fixed by TINY's overrides, which the sweeper leaves out of the search
    assert set(best["best_params"]) == {"module.optimizer.lr", "objective.free_bits", "objective.kl_warmup_steps"}
    assert len(read_summary(sweep_dir)) == 2


def test_a_sweep_through_submitits_local_launcher_runs_both_jobs(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_main(
        "train", "-m", "hydra/launcher=local", *SWEEP, "model.z_dim=2,4", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_summary(sweep_dir)
    assert [row["model.z_dim"] for row in rows] == ["2", "4"]
    assert all(math.isfinite(float(row["test/loss"])) for row in rows)
    assert list((sweep_dir / ".submitit").iterdir())  # the jobs went through submitit


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, str]:
    reason = why_unavailable()
    if reason:
        pytest.skip(f"no local SLURM: {reason}")
    with local_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def run_on_slurm(env: dict[str, str], *overrides: str, cwd: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "vrnn_lightning.train",
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=10",
        *overrides,
    ]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slurm
def test_a_two_job_sweep_runs_on_slurm_and_is_summarised(slurm, tmp_path):
    sweep_dir = tmp_path / "sweep"
    process = run_on_slurm(slurm, *SWEEP, "model.z_dim=2,4", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    rows = read_summary(sweep_dir)
    assert [row["model.z_dim"] for row in rows] == ["2", "4"]
    assert all(math.isfinite(float(row["best_val_loss"])) for row in rows)
    job_logs = list((sweep_dir / ".submitit").glob("*/*_log.out"))
    assert len(job_logs) == 2  # one submitit log per SLURM array task


@pytest.mark.slurm
def test_a_preempted_slurm_job_is_requeued_and_resumes_from_its_last_checkpoint(slurm, tmp_path):
    sweep_dir = tmp_path / "sweep"
    process = run_on_slurm(slurm, *SWEEP, "trainer.max_steps=300", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    last = sweep_dir / "0" / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 240
        while not last.exists():
            assert process.poll() is None and time.monotonic() < deadline, "no checkpoint before the job ended"
            time.sleep(0.1)
        [submitted] = (sweep_dir / ".submitit").glob("*/*_submitted.pkl")
        job_id = submitted.name.removesuffix("_submitted.pkl")
        subprocess.run(["scancel", "--signal=USR2", job_id], env=slurm, check=True)  # what SLURM sends on pre-emption
        # SLURM holds a requeued job for about two minutes before it is eligible again; release it at once.
        while (
            "PENDING"
            not in subprocess.run(
                ["squeue", "-h", "-j", job_id, "-o", "%T"], env=slurm, capture_output=True, text=True
            ).stdout
        ):
            assert process.poll() is None and time.monotonic() < deadline, "the job was not requeued"
            time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=slurm, check=True)
        output, _ = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, output[-3000:]
    log = (sweep_dir / "0" / "train.log").read_text()
    assert "resuming from" in log and str(last) in log
    assert torch.load(last, weights_only=False)["global_step"] == 300
    assert json.loads((sweep_dir / "0" / "metrics.json").read_text())["test/loss"] > 0
