"""Nothing lost at the edges of a run: folders claimed atomically by runs that really start together, and
Ctrl-C or SIGTERM saving a checkpoint that resumes to exactly the unbroken run's figures."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.runs import TINY, run_main, with_tests_importable

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

RACERS = Path(__file__).parent / "helpers" / "racers.py"
QUIET = ["callbacks.progress_bar=null", "callbacks.text_samples=null"]
BRIEF = [*TINY, *QUIET, "trainer.max_steps=3", "test=false"]  # racing runs: only where they write matters


def race(tmp_path: Path, overrides: list[str], racers: int = 4, rounds: int = 2) -> list[list[tuple[int, str]]]:
    """`racers` processes start the same training command together, `rounds` times; per round, each racer's
    (exit status, stderr)."""
    folder = tmp_path / "race"
    folder.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, str(RACERS), str(folder), str(rounds), *overrides],
            cwd=tmp_path,
            env=with_tests_importable(),
        )
        for _ in range(racers)
    ]
    results = []
    try:
        for r in range(rounds):
            deadline = time.monotonic() + 120
            while len(list(folder.glob(f"ready-{r}-*"))) < racers:
                assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "a racer died"
                time.sleep(0.01)
            (folder / f"go-{r}").touch()  # the barrier: all are waiting, all start now
            while len(list((folder / str(r)).glob("*.status")) if (folder / str(r)).is_dir() else []) < racers:
                assert time.monotonic() < deadline + 120, "a round did not end in time"
                time.sleep(0.05)
            results.append(
                [(int(s.read_text()), s.with_suffix(".err").read_text()) for s in (folder / str(r)).glob("*.status")]
            )
    finally:
        for p in processes:
            p.wait(timeout=60)
    return results


def test_runs_started_together_into_one_explicit_folder_one_holds_it(tmp_path):
    rounds = race(tmp_path, [*BRIEF, f"hydra.run.dir={tmp_path}/explicit-{{round}}", "seed={round}"])
    for r, outcomes in enumerate(rounds):
        codes = sorted(code for code, _ in outcomes)
        assert codes == [0, 2, 2, 2], outcomes
        for code, err in outcomes:
            if code == 2:
                lines = [line for line in err.splitlines() if line.strip()]
                assert len(lines) == 1 and lines[0].startswith("error: run folder "), err[-2000:]
                assert "held by another run" in lines[0] or "already holds an earlier run" in lines[0]
        run = tmp_path / f"explicit-{r}"
        assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1  # one run's files only
        assert sorted(p.name for p in run.iterdir()) == [
            ".hydra",
            "checkpoints",
            "metrics.json",
            "tensorboard",
            "train.log",
        ]


def test_runs_started_together_with_one_default_name_each_get_a_folder(tmp_path):
    rounds = race(tmp_path, [*BRIEF, f"paths.log_dir={tmp_path}/logs-{{round}}", "paths.stamp=frozen"])
    for r, outcomes in enumerate(rounds):
        assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
        runs = sorted(p.name for p in (tmp_path / f"logs-{r}" / "train" / "runs").iterdir())
        assert runs == ["frozen", "frozen_1", "frozen_2", "frozen_3"]
        for name in runs:
            assert (tmp_path / f"logs-{r}" / "train" / "runs" / name / "metrics.json").is_file()


# Validation every 5 steps; the signal lands after step 7, past the last validation.
STEPPED = [*TINY, *QUIET, "data.batches_per_epoch=5", "trainer.max_steps=12"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_step_and_the_resumed_run_ends_as_the_unbroken_one(tmp_path, signum):
    unbroken = run_main("train", *STEPPED, f"hydra.run.dir={tmp_path / 'unbroken'}", cwd=tmp_path)
    assert unbroken.returncode == 0, unbroken.stderr[-3000:]

    run_dir = tmp_path / "stopped"
    signalled = [
        "+callbacks.signal_at._target_=tests.helpers.signals.SignalAtStep",
        "+callbacks.signal_at.step=7",
        f"+callbacks.signal_at.signum={int(signum)}",
    ]
    stopped = run_main("train", *STEPPED, *signalled, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert stopped.returncode == 128 + signum, stopped.stderr[-3000:]
    last_line = stopped.stderr.strip().splitlines()[-1]
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert step in (7, 8)  # the step the signal arrived in, finished
    assert last_line.startswith(f"stopped: {signum.name} at step {step}: saved {run_dir / 'checkpoints' / 'last.ckpt'}")
    assert f"hydra.run.dir={run_dir} ckpt_path=last" in last_line
    assert not (run_dir / "metrics.json").exists()

    resumed = run_main("train", *STEPPED, f"hydra.run.dir={run_dir}", "ckpt_path=last", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resumable" not in resumed.stdout + resumed.stderr
    expected = json.loads((tmp_path / "unbroken" / "metrics.json").read_text())
    got = json.loads((run_dir / "metrics.json").read_text())
    for name in ["val/loss", "test/loss", "test/kl", "test/recon", "best_val_loss"]:
        assert got[name] == expected[name], (name, step)  # exact: same windows, same noise, on CPU
