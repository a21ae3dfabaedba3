"""The Python API as docs/guide.md shows it: its examples run exactly as written on tiny runs' checkpoints."""

import logging
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
    generated = out.split("\n", 1)[1]  # after the score's line: the 200 characters (they may hold newlines)
    assert len(generated) >= 200 and generated.strip()


def test_load_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        vrnn_lightning.load(tmp_path / "notes.ckpt")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_loading_onto_a_gpu_that_is_not_there_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match="device=cuda asks for a CUDA GPU but none is visible"):
        vrnn_lightning.load(tmp_path / "any.ckpt", device="cuda")


@pytest.mark.parametrize(
    "overrides, says",
    [
        (["model=srnn", "model.z_dimm=8"], "model.z_dimm is not a setting of this config; did you mean model.z_dim"),
        (["model.z_dim=0"], "model.z_dim must be a whole number >= 1"),
        (["data.path="], "data.path='' is empty"),  # found while the run builds its data, inside Hydra's job
    ],
)
def test_fit_raises_the_command_lines_one_line_leaves_no_run_folder_and_the_environment_as_it_was(
    overrides, says, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    # What Lightning sets when first imported stays (its NVML check keeps CUDA uninitialised for notebook DDP).
    __import__("vrnn_lightning.train")
    environment, handlers = dict(__import__("os").environ), logging.getLogger().handlers[:]
    with pytest.raises(ConfigError, match=re.escape(says)):
        vrnn_lightning.fit(*overrides, "trainer.max_steps=2", "callbacks.progress_bar=null")
    assert dict(__import__("os").environ) == environment
    assert logging.getLogger().handlers == handlers  # no handler left writing to a run folder that is gone
    logging.getLogger("after").warning("the process logs on")
    runs = tmp_path / "outputs" / "train" / "runs"
    assert not runs.exists() or not list(runs.iterdir()), "a run folder was left behind"


@pytest.mark.parametrize("device, says", [("tpu", "is not a device torch knows"), ("cuda:7", "asks for CUDA GPU 7")])
def test_loading_onto_a_device_that_is_not_there_is_one_config_error(device, says, tmp_path):
    with pytest.raises(ConfigError, match=says):
        vrnn_lightning.load(tmp_path / "any.ckpt", device=device)
