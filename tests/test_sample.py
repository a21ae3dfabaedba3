"""The sample entry point on checkpoints from the tiny training runs."""

import re
import subprocess
from pathlib import Path

from tests.conftest import run_main


def run_sample(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_main("sample", *overrides, cwd=cwd)


def test_text_samples_start_with_the_prompt_and_repeat_under_a_seed(tiny_run, tmp_path):
    _, run_dir = tiny_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", "prompt=ROMEO:", "length=50", "num_samples=2", "seed=7"]
    first = run_sample(*args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    second = run_sample(*args, f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    report = (tmp_path / "a" / "samples.txt").read_text(encoding="utf-8")
    samples = [s[:-1] for s in re.split(r"--- sample \d+ ---\n", report)[1:]]  # each ends with one newline
    assert len(samples) == 2 and all(s.startswith("ROMEO:") and len(s) == 6 + 50 for s in samples)
    assert (tmp_path / "a" / "samples.txt").read_text() == (tmp_path / "b" / "samples.txt").read_text()
    assert "--- sample 1 ---" in first.stdout


def test_a_prompt_outside_the_vocabulary_is_named(tiny_run, tmp_path):
    _, run_dir = tiny_run
    result = run_sample(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "prompt='héllo€'", cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "'é€'" in lines[0] and "vocabulary" in lines[0]


def test_a_missing_checkpoint_is_named(tmp_path):
    result = run_sample(f"ckpt_path={tmp_path / 'nope.ckpt'}", cwd=tmp_path)
    assert result.returncode != 0 and "is not a file" in result.stderr and "Traceback" not in result.stderr


def test_image_checkpoint_writes_png_grids(tiny_mnist_run, tmp_path):
    _, run_dir = tiny_mnist_run
    out = tmp_path / "out"
    result = run_sample(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("samples.png", "completions.png", "reconstructions.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {out / name}" in result.stdout
