"""The GPU paths, end to end on tiny configs: skipped where no CUDA GPU is visible (`pytest -m gpu` runs them)."""

import json

import pytest
import torch

from tests.helpers.run_if import run_if
from tests.helpers.runs import TINY, run_main
from vrnn_lightning.models import VRNN, Categorical
from vrnn_lightning.models.reference import per_step_forward

GPU_TINY = [*TINY, "trainer=gpu", "callbacks.progress_bar=null"]


def train_and_eval(tmp_path, *overrides: str) -> dict:
    """Train on the GPU, then evaluate and sample its checkpoint; returns eval's metrics."""
    run = tmp_path / "run"
    trained = run_main("train", *GPU_TINY, *overrides, f"hydra.run.dir={run}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    ckpt = run / "checkpoints" / "last.ckpt"
    evaluated = run_main(
        "eval", f"ckpt_path={ckpt}", "eval.iw_samples=4", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    sampled = run_main(
        "sample", f"ckpt_path={ckpt}", "prompt=ROMEO:", "length=40", f"hydra.run.dir={tmp_path / 's'}", cwd=tmp_path
    )
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    assert (tmp_path / "s" / "samples.txt").read_text().count("ROMEO:") == 4
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("elbo_bound_nats_per_char", "iw_bound_nats_per_char"))
    return metrics


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
def test_trainer_gpu_trains_evaluates_and_samples(tmp_path):
    train_and_eval(tmp_path)


@pytest.mark.slow
@run_if(min_cuda_gpus=1, bf16_cuda=True)
def test_bf16_mixed_precision_on_the_gpu(tmp_path):
    train_and_eval(tmp_path, "trainer.precision=bf16-mixed")


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
@pytest.mark.parametrize("mode", ["true", "reduce-overhead"])
def test_compiled_and_cuda_graphed_steps_on_the_gpu(tmp_path, mode):
    train_and_eval(tmp_path, f"model.compile={mode}")


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
@pytest.mark.parametrize("compile", [False, "reduce-overhead"])
def test_time_parallel_forward_matches_the_reference_on_the_gpu(compile):
    """The CPU test's check, on CUDA kernels (float64): losses and gradients to 1e-5."""
    torch.manual_seed(0)
    model = VRNN(Categorical(9), h_dim=12, z_dim=3, x_feat_dim=7, z_feat_dim=5, hidden_dim=10, compile=compile)
    model = model.double().cuda()
    x = torch.randint(0, 9, (4, 11), device="cuda")
    noise = torch.randn(4, 11, 3, dtype=torch.float64, device="cuda")
    results = []
    for forward in (lambda: model(x, noise=noise), lambda: per_step_forward(model, x, noise)):
        model.zero_grad()
        out = forward()
        (out.recon + out.kl).mean().backward()
        results.append((out.recon.detach().clone(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (fast, fast_grads), (ref, ref_grads) = results
    assert torch.allclose(fast, ref, atol=1e-5, rtol=0)
    for name, grad in ref_grads.items():
        assert torch.allclose(fast_grads[name], grad, atol=1e-5, rtol=0), name


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
@pytest.mark.parametrize(
    "rnn, posterior, dropout", [("gru", "filtering", 0.0), ("lstm", "filtering", 0.0), ("gru", "smoothing", 0.2)]
)
def test_graphed_steps_equal_eager_steps_in_training_and_evaluation(rnn, posterior, dropout):
    """The real capture (make_graphed_callables, and the forward-only graph): loss and every gradient to 1e-5 in
    float32 on ragged batches padded to their buckets, with the same noise; two training buckets and an
    evaluation graph of a training graph's shape, so every capture after the first is exercised; no capture may
    fail and no batch may run eager."""
    from vrnn_lightning.training.cuda_graphs import GraphedPasses

    torch.manual_seed(0)
    model = VRNN(
        Categorical(9), h_dim=12, z_dim=3, x_feat_dim=7, z_feat_dim=5, hidden_dim=10, rnn=rnn, posterior=posterior
    )
    model = model.cuda()
    graphed = GraphedPasses(model, bucket=8)
    for steps in (11, 19):  # the 16- and the 24-step buckets
        x = torch.randint(0, 9, (4, steps), device="cuda")
        lengths = torch.tensor([steps, steps - 2, 5, 2], device="cuda")
        mask = (torch.arange(steps, device="cuda") < lengths[:, None]).float()
        noise = torch.randn(4, steps, 3, device="cuda")
        results = []
        passes = (lambda: model(x, mask, noise), lambda: graphed(x, mask, noise), lambda: graphed(x, mask, noise))
        for forward in passes:
            model.zero_grad()
            out = forward()
            loss = (out.recon.sum() + out.kl.sum()) / mask.sum()
            loss.backward()
            results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        (eager_loss, eager_grads), *replays = results
        for loss, grads in replays:  # the capture, then a replay
            assert loss == pytest.approx(eager_loss, abs=1e-5)
            for name, grad in eager_grads.items():
                assert torch.allclose(grads[name], grad, atol=1e-5, rtol=0), name
    model.eval()
    with torch.inference_mode():  # as Lightning evaluates
        eager, replayed = model(x, mask, noise), graphed(x, mask, noise)
    assert torch.allclose(eager.recon, replayed.recon, atol=1e-5) and torch.allclose(eager.kl, replayed.kl, atol=1e-5)
    assert (graphed.captures, graphed.eager_batches, graphed.off) == (3, 0, None)
    assert [key[0] for key in graphed.graphs] == [True, True, False]


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
def test_graphs_are_captured_again_after_the_model_moved_to_the_cpu_and_back():
    """What Lightning does between fit and test: the old graphs would replay against freed memory."""
    from vrnn_lightning.training.cuda_graphs import GraphedPasses

    torch.manual_seed(0)
    model = VRNN(Categorical(9), h_dim=12, z_dim=3, x_feat_dim=7, z_feat_dim=5, hidden_dim=10).cuda().eval()
    graphed = GraphedPasses(model, bucket=8)
    x, mask, noise = torch.randint(0, 9, (4, 8), device="cuda"), torch.ones(4, 8, device="cuda"), None
    with torch.no_grad():
        graphed(x, mask, noise)
        model.cpu()
        torch.cuda.empty_cache()
        model.cuda()
        assert torch.allclose(graphed(x, mask, noise).recon, model(x, mask, noise).recon, atol=1e-5)
    assert graphed.captures == 2 and graphed.eager_batches == 0


def graph_log(run) -> str:
    text = (run / "train.log").read_text()
    assert "captured training graph" in text and "captured evaluation graph" in text, text[-3000:]
    assert "failed" not in text and "runs eager" not in text, text[-3000:]
    assert "CUDA graphs (fit):" in text and "CUDA graphs (test):" in text and "ran eager" in text
    assert all(line.endswith(" 0 ran eager") for line in text.splitlines() if "CUDA graphs (" in line), text[-3000:]
    return text


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
def test_graphed_and_eager_runs_of_one_seed_end_alike(tmp_path):
    metrics = {}
    for switch in ("true", "false"):
        run = tmp_path / switch
        overrides = [*GPU_TINY, "trainer.max_steps=200", f"module.cuda_graphs={switch}", f"hydra.run.dir={run}"]
        result = run_main("train", *overrides, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        metrics[switch] = json.loads((run / "metrics.json").read_text())
    graph_log(tmp_path / "true")
    compared = [k for k in metrics["false"] if k.startswith(("val/", "test/"))]
    assert any(k.startswith("test/") for k in compared) and any(k.startswith("val/") for k in compared)
    for key in compared:  # 200 steps of float32 on the GPU: the same run, up to reduction order
        assert abs(metrics["true"][key] - metrics["false"][key]) < 0.01, key


@pytest.mark.slow
@run_if(min_cuda_gpus=1)
@pytest.mark.parametrize("name", ["srnn", "dmm", "storn"])
def test_the_family_s_graphed_steps_equal_their_eager_steps(name):
    """SRNN, DMM and STORN through the same wrapper and the real capture: loss and gradients to 1e-5."""
    from vrnn_lightning.models import DMM, SRNN, STORN
    from vrnn_lightning.training.cuda_graphs import GraphedPasses

    torch.manual_seed(0)
    model_class = {"srnn": SRNN, "dmm": DMM, "storn": STORN}[name]
    model = model_class(Categorical(9), h_dim=12, z_dim=3, x_feat_dim=7, hidden_dim=10).cuda()
    graphed = GraphedPasses(model, bucket=8)
    x = torch.randint(0, 9, (4, 11), device="cuda")
    mask = (torch.arange(11, device="cuda") < torch.tensor([11, 9, 5, 2], device="cuda")[:, None]).float()
    noise = torch.randn(4, 11, 3, device="cuda")
    results = []
    for forward in (lambda: model(x, mask, noise), lambda: graphed(x, mask, noise), lambda: graphed(x, mask, noise)):
        model.zero_grad()
        out = forward()
        loss = (out.recon.sum() + out.kl.sum()) / mask.sum()
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (eager_loss, eager_grads), *replays = results
    for loss, grads in replays:
        assert loss == pytest.approx(eager_loss, abs=1e-5)
        for key, grad in eager_grads.items():
            assert torch.allclose(grads[key], grad, atol=1e-5, rtol=0), key
    assert (graphed.captures, graphed.eager_batches, graphed.off) == (1, 0, None)
