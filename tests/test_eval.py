"""The eval entry point and the importance-weighted bound."""

import json
import math
import subprocess

import pytest
import torch

from tests.helpers.runs import TINY_TRAINER, run_main
from vrnn_lightning.eval import carried_state_metrics
from vrnn_lightning.models import VRNN, Categorical
from vrnn_lightning.objectives import IWAE

pytestmark = pytest.mark.slow  # end-to-end runs, and statistics over hundreds of draws


@pytest.fixture(scope="module")
def trained_vrnn() -> tuple[VRNN, torch.Tensor]:
    """A small VRNN trained briefly on a noisy cycle, so that its latents carry something."""
    torch.manual_seed(0)
    model = VRNN(Categorical(5), h_dim=16, z_dim=3, x_feat_dim=8, z_feat_dim=8, hidden_dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    cycle = torch.arange(5).repeat(6)

    def batch(n: int) -> torch.Tensor:
        x = cycle[torch.randint(0, 5, (n, 1)) + torch.arange(12)]
        flips = torch.rand(x.shape) < 0.2
        return torch.where(flips, torch.randint(0, 5, x.shape), x)

    for _ in range(150):
        out = model(batch(32))
        optimizer.zero_grad()
        (out.recon + out.kl).mean().backward()
        optimizer.step()
    return model.eval(), batch(8)


def elbo_draws(model: VRNN, x: torch.Tensor, draws: int) -> torch.Tensor:
    """(draws, B) single-sample ELBO estimates with the analytic KL."""
    return torch.stack([-(lambda o: o.recon + o.kl)(model(x)).sum(1).double() for _ in range(draws)])


@torch.no_grad()
def test_iw_bound_with_one_sample_is_the_elbo_in_expectation(trained_vrnn):
    """K = 1 samples the KL where the ELBO takes it analytically: equal means, within 4 standard errors."""
    model, x = trained_vrnn
    torch.manual_seed(0)
    iw = torch.stack([IWAE(samples=1).bound_in_chunks(model, x, torch.ones(x.shape), chunk=64) for _ in range(400)])
    elbo = elbo_draws(model, x, 400)
    standard_error = (iw.var(0) / 400 + elbo.var(0) / 400).sqrt()
    assert ((iw.mean(0) - elbo.mean(0)).abs() < 4 * standard_error).all()


@torch.no_grad()
def test_iw_bound_with_64_samples_is_no_looser_than_the_elbo(trained_vrnn):
    model, x = trained_vrnn
    torch.manual_seed(0)
    elbo_nll = -elbo_draws(model, x, 400).mean(0)
    iw_nll = -torch.stack(
        [IWAE(samples=64).bound_in_chunks(model, x, torch.ones(x.shape), chunk=512) for _ in range(5)]
    ).mean(0)
    assert iw_nll.sum() < elbo_nll.sum()


@torch.no_grad()
def test_iw_bound_split_over_its_k_keeps_memory_to_the_chunk_and_estimates_the_same_bound(trained_vrnn):
    """K = 64 trajectories of 12 steps with room for 96 sequence-steps: one sequence, 8 trajectories at a time,
    combined exactly, so its draws have the unsplit bound's mean."""
    model, x = trained_vrnn
    x = x[:2]
    mask = torch.ones(x.shape)
    rows = []
    forward = model.forward
    model.forward = lambda x, *a, samples=1, **kw: (
        rows.append(len(x) * samples) or forward(x, *a, samples=samples, **kw)
    )
    try:
        torch.manual_seed(0)
        split = torch.stack([IWAE(samples=64).bound_in_chunks(model, x, mask, chunk=96) for _ in range(60)])
    finally:
        del model.forward
    assert max(rows) * x.shape[1] <= 96 and len(rows) == 60 * len(x) * 8
    whole = torch.stack([IWAE(samples=64).bound_in_chunks(model, x, mask, chunk=10**6) for _ in range(60)])
    standard_error = (split.var(0) / 60 + whole.var(0) / 60).sqrt()
    assert ((split.mean(0) - whole.mean(0)).abs() < 4 * standard_error).all()


def run_eval(*overrides: str, cwd) -> subprocess.CompletedProcess:
    return run_main("eval", *overrides, cwd=cwd)


def test_eval_writes_bounds_and_latent_usage(tiny_run, tmp_path):
    _, run_dir = tiny_run
    out_dir = tmp_path / "eval"
    result = run_eval(
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "eval.iw_samples=4",
        f"hydra.run.dir={out_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["steps"] == 55_770  # every test character of Tiny Shakespeare
    assert metrics["elbo_bound_nats_per_char"] == pytest.approx(
        metrics["recon_nats_per_char"] + metrics["kl_nats_per_char"]
    )
    assert metrics["iw_bound_nats_per_char"] <= metrics["elbo_bound_nats_per_char"] + 1e-3
    assert metrics["latent_dims"] == 4 and 0 <= metrics["active_units"] <= 4 and len(metrics["kl_per_dim"]) == 4
    assert metrics["elbo_bound_bpc"] == pytest.approx(metrics["elbo_bound_nats_per_char"] / math.log(2))
    assert "elbo_bound_bpc" in result.stdout


def test_eval_of_the_rnn_baseline_reports_zero_kl_and_an_exact_nll(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_main(
        "train",
        *TINY_TRAINER,
        "data.seq_len=16",
        "data.batches_per_epoch=3",
        "model=rnn",
        "model.h_dim=16",
        "model.x_feat_dim=8",
        "model.hidden_dim=16",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = run_eval(
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "eval.iw_samples=2",
        f"hydra.run.dir={tmp_path / 'eval'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["kl_nats_per_char"] == 0.0
    assert metrics["elbo_bound_nats_per_char"] == pytest.approx(metrics["recon_nats_per_char"])
    assert metrics["iw_bound_nats_per_char"] == pytest.approx(metrics["recon_nats_per_char"], rel=1e-6)
    assert "active_units" not in metrics


def cycle_streams(model_batch, count: int = 4, length: int = 48, window: int = 12) -> list:
    from vrnn_lightning.data.base import full_batch

    rows = model_batch(count * (length // 12)).reshape(count, length)  # noisy cycles laid end to end
    return [full_batch(rows[:, i : i + window]) for i in range(0, length, window)]


@torch.no_grad()
def test_carried_state_particle_bound_is_tighter_than_the_carried_elbo(trained_vrnn):
    model, _ = trained_vrnn
    torch.manual_seed(1)
    batch = lambda n: torch.stack([torch.arange(12) % 5 for _ in range(n)])
    streams = cycle_streams(batch)
    metadata = {"step_unit": "char", "figures": {}}
    runs = [carried_state_metrics(model, streams, 32, metadata) for _ in range(10)]
    elbo = sum(r["carried_elbo_bound_nats_per_char"] for r in runs) / 10
    iw = sum(r["carried_iw_bound_nats_per_char"] for r in runs) / 10
    assert runs[0]["carried_steps"] == 4 * 48 and runs[0]["carried_streams"] == 4
    assert iw < elbo


def test_eval_on_nanogpts_heldout_split_with_the_state_carried(tiny_run, tmp_path):
    _, run_dir = tiny_run
    out_dir = tmp_path / "eval"
    result = run_eval(
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "split=heldout",
        "eval.stateful=true",
        "eval.streams=8",
        "eval.iw_samples=2",
        f"hydra.run.dir={out_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out_dir / "metrics.json").read_text())
    heldout = 1_115_394 - int(1_115_394 * 0.9)  # the text after the training split: validation and test
    assert metrics["split"] == "heldout" and metrics["steps"] == heldout
    assert metrics["carried_steps"] == 8 * (heldout // 8) and metrics["carried_streams"] == 8
    assert math.isfinite(metrics["carried_elbo_bound_bpc"]) and math.isfinite(metrics["carried_iw_bound_bpc"])
    assert metrics["carried_elbo_bound_bpc"] == pytest.approx(metrics["carried_elbo_bound_nats_per_char"] / math.log(2))
