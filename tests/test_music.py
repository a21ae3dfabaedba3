"""End to end on a small piano-roll set: variable-length training, eval on whole pieces, MIDI samples."""

import hashlib
import json
import re

import mido
import pytest

from tests.data.test_polyphonic import LENGTHS, write_mat
from tests.helpers.runs import TINY_MODEL, TINY_TRAINER, run_main
from tests.test_api import guide_example, run_example

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points


@pytest.fixture(scope="module")
def music_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    mat = write_mat(root / "JSB_Chorales.mat", LENGTHS)
    digest = hashlib.sha256(mat.read_bytes()).hexdigest()
    overrides = [
        *TINY_MODEL,
        *TINY_TRAINER,
        "data=polyphonic",
        f"data.root={root}",
        "data.download=false",
        f"+data.checksums={{JSB_Chorales.mat:{digest}}}",
        "data.max_len=16",
        "data.batches_per_epoch=3",
        "model.posterior=smoothing",
        "objective=iwae",
        "objective.samples=3",
    ]
    result = run_main("train", *overrides, f"hydra.run.dir={root / 'run'}", cwd=root)
    return result, root


def test_music_trains_with_iwae_and_a_smoothing_posterior_and_evaluates_whole_pieces(music_run):
    result, root = music_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/ll:" in result.stdout
    evaluated = run_main(
        "eval",
        f"ckpt_path={root / 'run' / 'checkpoints' / 'last.ckpt'}",
        "eval.iw_samples=5",
        f"hydra.run.dir={root / 'eval'}",
        cwd=root,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    assert metrics["steps"] == sum(LENGTHS["testdata"]) and metrics["sequences"] == len(LENGTHS["testdata"])
    assert metrics["elbo_bound_ll"] == pytest.approx(-metrics["elbo_bound_nats_per_step"])
    assert metrics["iw_bound_ll"] >= metrics["elbo_bound_ll"] - 0.05


def test_sampling_music_writes_midi_and_piano_rolls(music_run, tmp_path):
    _, root = music_run
    out = tmp_path / "samples"
    result = run_main(
        "sample",
        f"ckpt_path={root / 'run' / 'checkpoints' / 'last.ckpt'}",
        "length=12",
        "num_samples=2",
        f"hydra.run.dir={out}",
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("sample_0.mid", "sample_1.mid", "continuation_0.mid", "samples.png", "completions.png"):
        assert (out / name).is_file() and f"wrote {out / name}" in result.stdout
    assert mido.MidiFile(str(out / "sample_0.mid")).length > 0


def test_the_guides_piano_roll_example_reconstructs_whole_pieces(music_run, capsys):
    _, root = music_run
    out = run_example(guide_example("Reconstruct a piano roll"), root / "run" / "checkpoints" / "last.ckpt", capsys)
    pieces, steps, shape = re.search(r"(\d+) pieces, (\d+) steps; reconstruction at shape \((.*)\)", out).groups()
    assert int(steps) == sum(LENGTHS["testdata"][: int(pieces)]) and shape.endswith(", 88")
