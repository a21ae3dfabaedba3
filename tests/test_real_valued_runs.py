"""End to end on real-valued sequences: your own .npz with a mixture output, the UEA JapaneseVowels set."""

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.data.test_real_valued import SHARED, make_splits
from tests.helpers.runs import TINY_MODEL, TINY_TRAINER, run_main
from vrnn_lightning.data.arrays import save_npz

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points


@pytest.fixture(scope="module")
def arrays_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("arrays")
    save_npz(root / "d.npz", make_splits(width=3, scale=100.0))  # values near 500: far from normalised units
    overrides = [
        *TINY_MODEL,
        *TINY_TRAINER,
        "data=arrays",
        f"data.path={root / 'd.npz'}",
        "data.batches_per_epoch=3",
        "model/likelihood=gmm",
        "model.likelihood.components=3",
    ]
    result = run_main("train", *overrides, f"hydra.run.dir={root / 'run'}", cwd=root)
    return result, root


def test_arrays_train_with_a_mixture_and_evaluate_in_the_datas_units(arrays_run):
    result, root = arrays_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/ll_per_sequence:" in result.stdout
    images = set()
    for events in (root / "run" / "tensorboard").rglob("events.out.tfevents.*"):  # fit and test may write one each
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        images.update(accumulator.Tags()["images"])
    assert "sequences" in images  # the line plots of real, reconstructed, sampled
    evaluated = run_main(
        "eval",
        f"ckpt_path={root / 'run/checkpoints/last.ckpt'}",
        "eval.iw_samples=4",
        f"hydra.run.dir={root / 'e'}",
        cwd=root,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((root / "e" / "metrics.json").read_text())
    checkpoint_offset = 3 * np.log(200.0)  # sum_d log std_d: the training split's std is about 2 x 100
    per_step = -metrics["elbo_bound_nats_per_step"] - metrics["elbo_bound_ll"]
    assert per_step == pytest.approx(checkpoint_offset, abs=0.3)  # the log-Jacobian, in the data's units
    assert metrics["elbo_bound_ll_per_sequence"] == pytest.approx(metrics["elbo_bound_ll"] * 10, rel=1e-6)
    assert metrics["iw_bound_ll"] >= metrics["elbo_bound_ll"] - 0.5


def test_samples_come_back_as_npy_in_the_datas_units_and_a_picture(arrays_run, tmp_path):
    _, root = arrays_run
    result = run_main(
        "sample",
        f"ckpt_path={root / 'run/checkpoints/last.ckpt'}",
        "length=9",
        "num_samples=3",
        f"hydra.run.dir={tmp_path}",
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (3, 9, 3) and np.isfinite(samples).all()
    assert 100 < np.median(samples) < 1000  # in the data's units (around 500), not normalised ones
    assert (tmp_path / "samples.png").stat().st_size > 1000


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/uea (the suite passes without it)")
def test_japanese_vowels_trains_an_rnn_with_a_gaussian_output(tmp_path):
    result = run_main(
        "train",
        "model=rnn",
        "model.h_dim=16",
        "model.x_feat_dim=8",
        "model.hidden_dim=16",
        *TINY_TRAINER,
        "data=uea",
        f"data.root={SHARED}",
        "data.download=false",
        "model/likelihood=gaussian",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["test/ll_per_sequence"]) and metrics["test/kl"] == 0
