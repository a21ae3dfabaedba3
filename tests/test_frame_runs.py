"""Frames end to end through the real entry points: every model of the family trains on 8 x 8 bouncing balls,
evaluates with every bound and best-of-N predictions, and samples futures as GIFs; Moving MNIST from the
fixture's digits; your own videos from a GIF folder."""

import json

import numpy as np
import pytest

from tests.helpers.runs import FIXTURE, FIXTURE_SUMS, TINY_MODEL, TINY_TRAINER, run_main

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

FRAME_HEAD = ["model.likelihood.channels=4", "model.likelihood.feat_dim=8"]
SMALL_VIDEOS = ["data.train_size=16", "data.val_size=8", "data.test_size=6", "data.seq_len=6", "data.seen=2"]
BALLS = ["data=bouncing_balls", "data.frame_size=8", "data.radius=1.5", "data.min_speed=0.5", "data.max_speed=1.0"]


def tiny(model: str) -> list[str]:
    """The tiny settings, less those this model does not have (z_feat_dim is the VRNN's and STORN's)."""
    keep = [o for o in TINY_MODEL if model in ("vrnn", "storn") or not o.startswith("model.z_feat_dim")]
    keep = [o for o in keep if model != "rnn" or not o.startswith("model.z_")]
    return [f"model={model}", *keep, *TINY_TRAINER, *FRAME_HEAD]


@pytest.mark.parametrize("model", ["vrnn", "srnn", "dmm", "storn", "rnn"])
def test_every_model_trains_evaluates_and_predicts_on_frames(model, tmp_path):
    run = tmp_path / "run"
    trained = run_main("train", *tiny(model), *BALLS, *SMALL_VIDEOS, f"hydra.run.dir={run}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["test/bits_per_pixel"] < 2
    ckpt = run / "checkpoints" / "last.ckpt"
    bounds = ["eval.iw_samples=3", "eval.fivo_samples=3"] if model != "rnn" else ["eval.iw_samples=3"]
    evaluated = run_main(
        "eval", f"ckpt_path={ckpt}", *bounds, "eval.futures=3", f"hydra.run.dir={tmp_path / 'e'}", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    scores = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert scores["steps"] == 6 * (2 + 20)  # test videos: seen + data.predicted frames
    assert scores["iw_bound_nats_per_frame"] <= scores["elbo_bound_nats_per_frame"] + 0.5
    assert len(scores["prediction_curve"]["ssim"]) == 20 and -1 <= scores["best_of_3_ssim"] <= 1
    assert scores["best_of_3_psnr"] > 0 and (tmp_path / "e" / "prediction.png").stat().st_size > 0
    sampled = run_main(
        "sample", f"ckpt_path={ckpt}", "num_samples=2", "futures=3", "predicted=4", f"hydra.run.dir={tmp_path / 's'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    from PIL import Image

    with Image.open(tmp_path / "s" / "futures.gif") as gif:
        assert gif.n_frames == 2 + 4
    assert (tmp_path / "s" / "futures.png").exists() and (tmp_path / "s" / "samples.png").exists()


def test_moving_mnist_trains_from_the_fixtures_digits_and_draws_futures_in_tensorboard(tmp_path):
    run = tmp_path / "run"
    digits = ["data=moving_mnist", f"data.root={FIXTURE}", "data.download=false", f"+data.checksums={{{FIXTURE_SUMS}}}"]
    sizes = ["data.frame_size=16", "data.digit_size=8", "data.max_speed=2"]
    trained = run_main("train", *tiny("vrnn"), *digits, *sizes, *SMALL_VIDEOS, f"hydra.run.dir={run}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert "images/futures" in events.Tags()["images"]
    assert "t10k_only split" in (run / "train.log").read_text()  # the fixture has MNIST's test file alone


def test_your_gifs_train_a_model(tmp_path):
    from PIL import Image

    folder = tmp_path / "gifs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        frames = [Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)) for _ in range(5 + i)]
        frames[0].save(folder / f"{i}.gif", save_all=True, append_images=frames[1:])
    run = tmp_path / "run"
    videos = ["data=frames", f"data.path={folder}", "data.seen=2", "data.predicted=2", "data.batches_per_epoch=3"]
    trained = run_main("train", *tiny("vrnn"), *videos, f"hydra.run.dir={run}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = run_main(
        "eval", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "eval.futures=2", f"hydra.run.dir={tmp_path / 'e'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "best_of_2_ssim" in json.loads((tmp_path / "e" / "metrics.json").read_text())
