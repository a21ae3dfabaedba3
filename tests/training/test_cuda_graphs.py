"""CUDA graphs, everything but the capture: noise drawn outside the model, static shapes by padding (exact by
the masks), one graph per bucket, eager fallbacks said once, the switch. The capture itself is tested on a GPU
(tests/test_gpu.py)."""

import logging

import pytest
import torch

from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import VRNN, Bernoulli, Categorical
from vrnn_lightning.train import check_accelerator
from vrnn_lightning.training.cuda_graphs import GraphedPasses, bucket_length
from vrnn_lightning.training.module import SequenceModule


class Captures:
    """Stands in for the CUDA capture: returns the module itself, so replays are plain calls; counts captures."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, fn, sample):
        self.shapes.append(tuple(sample[0].shape[:2]))
        return fn


def tiny_vrnn(rnn: str = "gru", posterior: str = "filtering") -> VRNN:
    torch.manual_seed(0)
    return VRNN(Bernoulli(5), h_dim=8, z_dim=3, x_feat_dim=6, z_feat_dim=6, hidden_dim=8, rnn=rnn, posterior=posterior)


def ragged_batch(rows: int = 3, steps: int = 11) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randint(0, 2, (rows, steps, 5)).float()
    lengths = torch.tensor([steps, steps - 4, 2][:rows])
    mask = (torch.arange(steps) < lengths[:, None]).float()
    return x, mask, torch.randn(rows, steps, 3)


@pytest.mark.parametrize("rnn, posterior", [("gru", "filtering"), ("lstm", "smoothing"), ("gru", "smoothing")])
def test_a_padded_pass_cut_back_equals_the_eager_pass_with_its_gradients(rnn, posterior):
    model = tiny_vrnn(rnn, posterior)
    x, mask, noise = ragged_batch()
    eager = model(x, mask, noise)
    (eager.recon.sum() + eager.kl.sum()).backward()
    eager_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    captures = Captures()
    graphed = GraphedPasses(model, bucket=8, capture_train=captures, capture_eval=captures)
    graphed.rows[True] = 5  # an earlier, larger batch: this one is padded by two rows too
    out = graphed(x, mask, noise)
    assert captures.shapes == [(5, 16)]  # 11 steps -> the 16-step bucket, 3 rows -> 5
    for field in ("recon", "kl", "x_params", "z"):
        assert torch.allclose(getattr(out, field), getattr(eager, field), atol=1e-6), field
    assert torch.allclose(out.posterior.std, eager.posterior.std) and torch.allclose(out.prior.mean, eager.prior.mean)
    (out.recon.sum() + out.kl.sum()).backward()
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, eager_grads[name], atol=1e-6), name


def test_one_graph_per_bucket_and_mode_captured_lazily():
    model = tiny_vrnn()
    captures = Captures()
    graphed = GraphedPasses(model, bucket=32, capture_train=captures, capture_eval=captures)
    for steps in (10, 20, 40, 31):
        graphed(*ragged_batch(3, steps))
    model.eval()
    with torch.no_grad():
        graphed(*ragged_batch(3, 12))
    assert captures.shapes == [(3, 32), (3, 64), (3, 32)] and len(graphed.graphs) == 3
    assert [key[0] for key in graphed.graphs] == [True, True, False]  # training, training, evaluation
    assert [bucket_length(n, 32) for n in (1, 32, 33, 100)] == [32, 32, 64, 128]


def test_beyond_the_cap_and_with_a_carried_state_a_batch_runs_eager_and_the_log_says_so_once(caplog):
    model = tiny_vrnn()
    graphed = GraphedPasses(model, bucket=4, max_graphs=1, capture_train=Captures(), capture_eval=Captures())
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        for steps in (4, 8, 12):
            graphed(*ragged_batch(3, steps))
        x, mask, noise = ragged_batch(3, 4)
        state = model(x, mask, noise).state
        graphed(x, mask, noise, state)
        graphed(x, mask, noise, state)
    said = [r.getMessage() for r in caplog.records]
    assert len(graphed.graphs) == 1 and graphed.eager_batches == 4
    assert sum("a batch of a new shape runs eager" in m for m in said) == 1
    assert sum("carried state" in m for m in said) == 1


def test_the_module_draws_the_noise_the_model_would_have_drawn():
    model = VRNN(Categorical(7), h_dim=8, z_dim=3, x_feat_dim=6, z_feat_dim=6, hidden_dim=8)
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={"figures": {}})
    x = torch.randint(0, 7, (4, 9))
    mask = torch.ones(4, 9)
    torch.manual_seed(3)
    inside = model(x, mask)
    torch.manual_seed(3)
    outside = module.run_model(x, mask)
    assert torch.equal(inside.z, outside.z) and torch.equal(inside.recon, outside.recon)


def test_graphs_stay_off_on_the_cpu_with_one_log_line_and_the_switch_is_checked(caplog):
    module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={"figures": {}})
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.module"):
        module.run_model(*ragged_batch()[:2])
        module.run_model(*ragged_batch()[:2])
    assert module.graphs is None
    assert [r.getMessage() for r in caplog.records] == ["CUDA graphs: off: the model is not on a CUDA GPU"]
    off = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs=False)
    off.run_model(*ragged_batch()[:2])
    assert off.graphs is None
    with pytest.raises(ValueError, match="module.cuda_graphs must be auto, true or false"):
        SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs="yes")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="module.cuda_graphs=true replays the model as CUDA graphs"):
            check_accelerator("auto", False, True)


def test_a_capture_that_fails_is_one_warning_naming_the_switch_and_the_batch_runs_eager(caplog):
    def refuses(fn, sample):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    model = tiny_vrnn()
    graphed = GraphedPasses(model, bucket=8, capture_train=refuses, capture_eval=refuses)
    x, mask, noise = ragged_batch()
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        out = graphed(x, mask, noise)
        graphed(x, mask, noise)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "RuntimeError: operation not permitted" in warnings[0]
    assert "module.cuda_graphs=false" in warnings[0] and graphed.eager_batches == 2
    assert torch.equal(out.recon, model(x, mask, noise).recon)


def test_graphs_stay_off_where_the_data_carries_the_state_between_windows(caplog, monkeypatch):
    module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={})
    trainer = type("Trainer", (), {"world_size": 1, "precision": "32-true", "datamodule": None})()
    trainer.datamodule = type("Streams", (), {"carries_state": True})()
    monkeypatch.setattr(SequenceModule, "device", property(lambda self: torch.device("cuda")))
    module._trainer = trainer
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.module"):
        module.decide_graphs()
    assert module.graphs is None
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA graphs: off: the data carries the state from window to window (data.stateful), which graphs do not"
    ]
    trainer.datamodule.carries_state = False
    module.decide_graphs()
    assert module.graphs is not None  # one GPU, float32, no carried state: on
