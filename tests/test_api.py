"""The Python API as docs/guide.md shows it: its examples run exactly as written on tiny runs' checkpoints."""

import re
from pathlib import Path

import pytest

import vrnn_lightning
from vrnn_lightning.errors import ConfigError

pytestmark = pytest.mark.slow  # on checkpoints of end-to-end runs

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def guide_example(title_words: str) -> str:
    """The Python block that follows the guide's paragraph starting with `title_words`."""
    text = GUIDE.read_text()
    start = text.index(title_words)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def run_example(code: str, ckpt: Path, capsys) -> str:
    code = re.sub(r'^ckpt = ".*"$', f"ckpt = {str(ckpt)!r}", code, count=1, flags=re.M)
    assert f"ckpt = {str(ckpt)!r}" in code  # the example was found and pointed at the real checkpoint
    exec(compile(code, str(GUIDE), "exec"), {})
    return capsys.readouterr().out


def test_the_text_example_scores_and_generates(tiny_run, capsys):
    result, run_dir = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    out = run_example(guide_example("Score a string"), run_dir / "checkpoints" / "last.ckpt", capsys)
    nats, bits = re.search(r"([\d.]+) nats, ([\d.]+) bits per character", out).groups()
    assert 16 * 1.0 < float(nats) < 16 * 8 and float(bits) > 0
    generated = out.splitlines()[-1]
    assert len(out.split("\n", 1)[1]) >= 200 and generated  # 200 characters printed (they may hold newlines)


def test_load_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        vrnn_lightning.load(tmp_path / "notes.ckpt")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_loading_onto_a_gpu_that_is_not_there_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match="device=cuda asks for a CUDA GPU but none is visible"):
        vrnn_lightning.load(tmp_path / "any.ckpt", device="cuda")
