"""The family end to end: SRNN, DMM and STORN through the real entry points on text, music and MNIST rows:
training with the ELBO (KL warm-up, free bits) and the IW objective, eval's IW bound, sampling with a prompt,
carried state over text streams, `vrnn_lightning.load`, and a sweep across the family."""

import hashlib
import json

import pytest
import torch

import vrnn_lightning
from tests.data.test_polyphonic import LENGTHS, write_mat
from tests.helpers.runs import FIXTURE_SUMS, TINY, TINY_MNIST, TINY_MODEL, TINY_TRAINER, run_main

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

FAMILY = ["srnn", "dmm", "storn"]


def tiny(model: str, overrides: list[str]) -> list[str]:
    """The tiny settings, less those this model does not have (z_feat_dim is the VRNN's and STORN's)."""
    return [o for o in overrides if model == "storn" or not o.startswith("model.z_feat_dim")] + [f"model={model}"]


@pytest.mark.parametrize("model", FAMILY)
def test_text_trains_evaluates_samples_and_loads(model, tmp_path):
    run = tmp_path / "run"
    overrides = tiny(model, [*TINY, "objective.kl_warmup_steps=3", "objective.free_bits=0.01", f"hydra.run.dir={run}"])
    trained = run_main("train", *overrides, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/kl"] > 0 and metrics["test/bpc"] > 0
    ckpt = run / "checkpoints" / "last.ckpt"
    evaluated = run_main(
        "eval", f"ckpt_path={ckpt}", "eval.iw_samples=4", f"hydra.run.dir={tmp_path / 'e'}", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    scores = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert scores["iw_bound_nats_per_char"] <= scores["elbo_bound_nats_per_char"] + 0.05
    assert scores["latent_dims"] == 4 and len(scores["kl_per_dim"]) == 4
    sampled = run_main(
        "sample", f"ckpt_path={ckpt}", "prompt=ROMEO:", "length=30", f"hydra.run.dir={tmp_path / 's'}", cwd=tmp_path
    )
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    assert (tmp_path / "s" / "samples.txt").read_text().count("ROMEO:") == 4
    loaded, data = vrnn_lightning.load(ckpt)
    assert type(loaded).__name__ == model.upper() and data.decode(loaded.generate(5)[0]).__len__() == 5


@pytest.mark.parametrize("model", FAMILY)
def test_music_trains_with_the_iw_objective_and_evaluates_whole_pieces(model, tmp_path):
    mat = write_mat(tmp_path / "JSB_Chorales.mat", LENGTHS)
    digest = hashlib.sha256(mat.read_bytes()).hexdigest()
    music = [
        *TINY_MODEL,
        *TINY_TRAINER,
        "data=polyphonic",
        f"data.root={tmp_path}",
        "data.download=false",
        f"+data.checksums={{JSB_Chorales.mat:{digest}}}",
        "data.max_len=16",
        "objective=iwae",
        "objective.samples=3",
    ]
    run = tmp_path / "run"
    trained = run_main("train", *tiny(model, music), f"hydra.run.dir={run}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = run_main(
        "eval",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "eval.iw_samples=5",
        f"hydra.run.dir={tmp_path / 'e'}",
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["steps"] == sum(LENGTHS["testdata"]) and metrics["sequences"] == len(LENGTHS["testdata"])
    assert metrics["iw_bound_ll"] >= metrics["elbo_bound_ll"] - 0.05
    sampled = run_main(
        "sample",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "length=8",
        f"hydra.run.dir={tmp_path / 's'}",
        cwd=tmp_path,
    )
    assert sampled.returncode == 0 and (tmp_path / "s" / "continuation_0.mid").is_file(), sampled.stderr[-3000:]


def test_mnist_rows_and_carried_text_state_through_the_family(tmp_path):
    mnist = run_main("train", *tiny("dmm", TINY_MNIST), f"hydra.run.dir={tmp_path / 'mnist'}", cwd=tmp_path)
    assert mnist.returncode == 0, mnist.stderr[-3000:]
    assert json.loads((tmp_path / "mnist" / "metrics.json").read_text())["test/loss_per_sequence"] > 0  # per image
    assert FIXTURE_SUMS  # the MNIST fixture was found
    stateful = [*TINY, "data.stateful=true", "data.stateful_eval=true", "data.eval_streams=4"]
    run = tmp_path / "streams"
    carried = run_main(
        "train", *tiny("srnn", stateful), "model.posterior=filtering", f"hydra.run.dir={run}", cwd=tmp_path
    )
    assert carried.returncode == 0, carried.stderr[-3000:]
    evaluated = run_main(
        "eval",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "eval.stateful=true",
        "eval.iw_samples=3",
        f"hydra.run.dir={tmp_path / 'e'}",
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert torch.isfinite(torch.tensor(metrics["carried_iw_bound_nats_per_char"]))


def test_a_sweep_across_the_family_ends_in_one_summary(tmp_path):
    overrides = [o for o in TINY if not o.startswith(("model.z_dim", "model.z_feat_dim"))]
    swept = run_main(
        "train",
        "-m",
        *overrides,
        "model=rnn,vrnn,srnn,dmm,storn",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert swept.returncode == 0, swept.stderr[-3000:]
    summary = (tmp_path / "sweep" / "summary.csv").read_text().splitlines()
    assert len(summary) == 6 and all(name in "\n".join(summary) for name in ("srnn", "dmm", "storn"))


def test_fivo_trains_a_smoothing_model_and_eval_scores_every_bound(tmp_path):
    run = tmp_path / "run"
    fivo = ["objective=fivo", "objective.samples=3", "objective.resampling=systematic"]
    overrides = tiny("srnn", [*TINY, *fivo, "model.posterior=smoothing", f"hydra.run.dir={run}"])
    trained = run_main("train", *overrides, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    # Judged by its own bound: validation logs it, the best checkpoint was chosen by it, test reports it
    figures = json.loads((run / "metrics.json").read_text())
    assert {"val/fivo_bound", "test/fivo_bound", "best_val_fivo_bound", "val/loss"} <= set(figures)
    assert "best_val_loss" not in figures
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    saved = torch.load(best, weights_only=True)["callbacks"]
    assert any("'monitor': 'val/fivo_bound'" in key for key in saved), list(saved)
    evaluated = run_main(
        "eval",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "eval.iw_samples=4",
        "eval.fivo_samples=4",
        f"hydra.run.dir={tmp_path / 'e'}",
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["fivo_samples"] == 4 and metrics["fivo_bound_nats_per_sequence"] > 0
    assert metrics["fivo_bound_bpc"] > 0 and "fivo_bound" in evaluated.stdout
