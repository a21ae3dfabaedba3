"""The sample entry point on checkpoints from the tiny training runs."""

import re
import subprocess
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import vrnn_lightning
from tests.helpers.runs import run_main
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.sample import sample

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

SAMPLE_CONFIG = Path(vrnn_lightning.__file__).parent / "conf" / "sample.yaml"


def run_sample(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_main("sample", *overrides, cwd=cwd)


def test_text_samples_start_with_the_prompt_and_repeat_under_a_seed(tiny_run, tmp_path):
    _, run_dir = tiny_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", "prompt=ROMEO:", "length=50", "num_samples=2", "seed=7"]
    first = run_sample(*args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    second = run_sample(*args, f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr + second.stderr)[-3000:]
    report = (tmp_path / "a" / "samples.txt").read_text(encoding="utf-8")
    samples = [s[:-1] for s in re.split(r"--- sample \d+ ---\n", report)[1:]]  # each ends with one newline
    assert len(samples) == 2 and all(s.startswith("ROMEO:") and len(s) == 6 + 50 for s in samples)
    assert (tmp_path / "a" / "samples.txt").read_text() == (tmp_path / "b" / "samples.txt").read_text()
    assert "--- sample 1 ---" in first.stdout


def test_image_checkpoint_writes_png_grids(tiny_mnist_run, tmp_path):
    _, run_dir = tiny_mnist_run
    out = tmp_path / "out"
    result = run_sample(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("samples.png", "completions.png", "reconstructions.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {out / name}" in result.stdout


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prompt=st.text(alphabet=st.one_of(st.sampled_from("ROMEO: \nabc!"), st.characters()), max_size=12),
    length=st.integers(0, 20),
)
def test_any_prompt_gives_text_that_starts_with_it_or_one_error_naming_its_strangers(
    tiny_run, tmp_path, prompt, length
):
    _, run_dir = tiny_run
    # sample.yaml's own keys, so a setting added there reaches this test too
    cfg = OmegaConf.load(SAMPLE_CONFIG)
    cfg.merge_with(
        {
            "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"),
            "paths": {"output_dir": str(tmp_path)},
            "prompt": prompt,
            "length": length,
            "num_samples": 1,
        }
    )
    vocab = torch.load(cfg.ckpt_path, weights_only=False)["hyper_parameters"]["data_metadata"]["vocab"]
    strangers = "".join(sorted({c for c in prompt if c not in vocab}))
    try:
        [path] = sample(cfg)
    except ConfigError as err:
        assert (length == 0 and "length=0" in str(err)) or (strangers and repr(strangers) in str(err))
        return
    assert not strangers and length > 0
    text = path.read_bytes().decode("utf-8").removeprefix("--- sample 0 ---\n").removesuffix("\n")
    assert text.startswith(prompt) and len(text) == len(prompt) + length
