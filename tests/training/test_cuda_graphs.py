"""CUDA graphs on the CPU, through a stand-in for the capture that behaves like the real one where it matters:
noise drawn outside the model, static shapes by padding (exact by the masks), one graph per bucket and mode,
each capture with a module of its own, graphs dropped when the parameters move, a failed capture turning
graphs off, eager fallbacks said once, the switch. The real capture is tested on a GPU (tests/test_gpu.py)."""

import logging

import pytest
import torch

from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import DMM, SRNN, STORN, VRNN, Bernoulli, Categorical
from vrnn_lightning.train import check_accelerator
from vrnn_lightning.training.cuda_graphs import GraphedPasses, bucket_length, storage_of
from vrnn_lightning.training.module import SequenceModule


class Captures:
    """Stands in for the CUDA capture where it matters: it warms up by calling the module (drawing whatever
    random numbers the pass draws), then takes over the module's forward as `make_graphed_callables` does,
    replays only the shapes it captured, and refuses a replay once the parameters' storage moved (a real graph
    would read freed memory). A replay runs in the training mode of its capture (dropout baked in or not), and
    evaluation replays run without autograd, as a forward-only graph does."""

    def __init__(self, training: bool = True) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.training = training

    def __call__(self, fn, sample):
        for _ in range(3):
            fn(*sample)
        shapes, storage, forward, captured_mode = [s.shape for s in sample], storage_of(fn), fn.forward, fn.training

        def replay(*inputs):
            if [i.shape for i in inputs] != shapes:
                raise RuntimeError(f"a graph captured for {shapes[0]} replayed with {inputs[0].shape}")
            if storage_of(fn) != storage:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            mode = fn.training
            fn.train(captured_mode)  # a graph replays what it captured: dropout on or off as it was then
            try:
                with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
                    return forward(*inputs)
            finally:
                fn.train(mode)

        fn.forward = replay
        self.shapes.append(tuple(sample[0].shape[:2]))
        return replay


def stand_in(model, **options) -> tuple[GraphedPasses, Captures, Captures]:
    train, evaluation = Captures(), Captures(training=False)
    return GraphedPasses(model, capture_train=train, capture_eval=evaluation, **options), train, evaluation


def tiny_vrnn(rnn: str = "gru", posterior: str = "filtering") -> VRNN:
    torch.manual_seed(0)
    return VRNN(Bernoulli(5), h_dim=8, z_dim=3, x_feat_dim=6, z_feat_dim=6, hidden_dim=8, rnn=rnn, posterior=posterior)


def ragged_batch(rows: int = 3, steps: int = 11) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randint(0, 2, (rows, steps, 5)).float()
    lengths = torch.tensor([steps, steps - 4, 2][:rows])
    mask = (torch.arange(steps) < lengths[:, None]).float()
    return x, mask, torch.randn(rows, steps, 3)


def tiny_dropout_vrnn() -> VRNN:
    torch.manual_seed(0)
    return VRNN(Bernoulli(5), h_dim=8, z_dim=3, x_feat_dim=6, z_feat_dim=6, hidden_dim=8, dropout=0.3)


@pytest.mark.parametrize("rnn, posterior", [("gru", "filtering"), ("lstm", "smoothing"), ("gru", "smoothing")])
def test_a_padded_pass_cut_back_equals_the_eager_pass_with_its_gradients(rnn, posterior):
    model = tiny_vrnn(rnn, posterior)
    x, mask, noise = ragged_batch()
    eager = model(x, mask, noise)
    (eager.recon.sum() + eager.kl.sum()).backward()
    eager_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    graphed, captures, _ = stand_in(model, bucket=8)
    graphed.rows[True] = 5  # an earlier, larger batch: this one is padded by two rows too
    out = graphed(x, mask, noise)
    assert captures.shapes == [(5, 16)]  # 11 steps -> the 16-step bucket, 3 rows -> 5
    for field in ("recon", "kl", "x_params", "z"):
        assert torch.allclose(getattr(out, field), getattr(eager, field), atol=1e-6), field
    assert torch.allclose(out.posterior.std, eager.posterior.std) and torch.allclose(out.prior.mean, eager.prior.mean)
    (out.recon.sum() + out.kl.sum()).backward()
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, eager_grads[name], atol=1e-6), name


@pytest.mark.parametrize("model_class", [SRNN, DMM, STORN])
def test_the_family_through_the_graphed_path_equals_its_eager_pass(model_class):
    """Every model of the family pads exactly: its padded, cut-back pass equals the eager one, with gradients."""
    torch.manual_seed(0)
    model = model_class(Bernoulli(5), h_dim=8, z_dim=3, x_feat_dim=6, hidden_dim=8)
    x, mask, noise = ragged_batch()
    eager = model(x, mask, noise)
    (eager.recon.sum() + eager.kl.sum()).backward()
    eager_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    graphed, captures, _ = stand_in(model, bucket=8)
    out = graphed(x, mask, noise)
    assert captures.shapes == [(3, 16)] and graphed.eager_batches == 0
    assert torch.allclose(out.recon, eager.recon, atol=1e-6) and torch.allclose(out.kl, eager.kl, atol=1e-6)
    (out.recon.sum() + out.kl.sum()).backward()
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, eager_grads[name], atol=1e-6), name


def test_every_bucket_and_mode_is_captured_with_a_module_of_its_own(caplog):
    """A capture takes over the forward of the module it is given: sharing one would replay the first graph in
    the next capture's warm-up (a failure), or an evaluation capture would run the training graph."""
    model = tiny_vrnn()
    graphed, train, evaluation = stand_in(model, bucket=32)
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        for steps in (10, 20, 40, 31):
            graphed(*ragged_batch(3, steps))
        model.eval()
        with torch.no_grad():
            graphed(*ragged_batch(3, 12))
    assert train.shapes == [(3, 32), (3, 64)] and evaluation.shapes == [(3, 32)]
    assert [key[0] for key in graphed.graphs] == [True, True, False]  # training, training, evaluation
    assert (graphed.captures, graphed.replays, graphed.eager_batches) == (3, 5, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [bucket_length(n, 32) for n in (1, 32, 33, 100)] == [32, 32, 64, 128]


def test_an_evaluation_graph_of_a_training_graph_s_shape_runs_the_evaluation_pass():
    model = tiny_dropout_vrnn()
    graphed, _, _ = stand_in(model, bucket=16)
    x, mask, noise = ragged_batch()
    graphed(x, mask, noise)  # the training graph of this shape, dropout on
    model.eval()
    with torch.no_grad():
        out = graphed(x, mask, noise)
        assert torch.equal(out.recon, model(x, mask, noise).recon)  # no dropout, no graph of training
    assert len(graphed.graphs) == 2 and graphed.eager_batches == 0


def test_the_capture_s_warm_up_leaves_the_random_sequence_of_an_eager_run():
    """With dropout the warm-up draws random numbers; the run's next draws must be those of an eager run (on a
    batch of the graph's own shape: a padded one draws for its padding too)."""
    x, mask, noise = ragged_batch(3, 16)
    model = tiny_dropout_vrnn()
    torch.manual_seed(5)
    model(x, mask, noise)
    after_eager = torch.rand(4)
    graphed, _, _ = stand_in(tiny_dropout_vrnn(), bucket=16)
    torch.manual_seed(5)
    graphed(x, mask, noise)
    assert torch.equal(torch.rand(4), after_eager)


def test_graphs_are_captured_again_once_the_parameters_moved(caplog):
    """Lightning moves the model to the CPU after fit and back for test: a graph replayed against the old
    addresses reads freed memory (the stand-in refuses it, as a GPU would fail or return garbage)."""
    model = tiny_vrnn()
    graphed, train, _ = stand_in(model, bucket=16)
    x, mask, noise = ragged_batch()
    graphed(x, mask, noise)
    model.double().float()  # new storage for every parameter, as a move to another device and back gives
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        out = graphed(x, mask, noise)
    assert torch.allclose(out.recon, model(x, mask, noise).recon)
    assert len(train.shapes) == 2 and graphed.eager_batches == 0
    assert any("dropped: the parameters moved" in r.getMessage() for r in caplog.records)


def test_the_module_drops_its_graphs_at_teardown_and_decides_again_for_the_next_stage(caplog):
    model = tiny_vrnn()
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={"figures": {}})
    module.graphs, _, _ = stand_in(model, bucket=16)
    module.graphs_decided = True
    module.run_model(*ragged_batch()[:2])
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.module"):
        module.teardown("fit")
    assert module.graphs is None and not module.graphs_decided
    said = [r.getMessage() for r in caplog.records]
    assert said == ["CUDA graphs (fit): 1 captured, 1 batches replayed, 0 ran eager"]


def test_beyond_the_cap_and_with_a_carried_state_a_batch_runs_eager_and_the_log_says_so_once(caplog):
    model = tiny_vrnn()
    graphed, _, _ = stand_in(model, bucket=4, max_graphs=1)
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
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        module.run_model(*ragged_batch()[:2])
        module.run_model(*ragged_batch()[:2])
    assert module.graphs is None
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA graphs: off, the model runs eager: the model is not on a CUDA GPU"
    ]
    off = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs=False)
    off.run_model(*ragged_batch()[:2])
    assert off.graphs is None
    with pytest.raises(ValueError, match="module.cuda_graphs must be auto, true or false"):
        SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs="yes")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="module.cuda_graphs=true replays the model as CUDA graphs"):
            check_accelerator("auto", False, True)


class Streams:
    """Stands in for CUDA's current stream: a capture switches to its side stream."""

    def __init__(self) -> None:
        self.stream = "default"

    def current(self):
        return self.stream

    def restore(self, stream) -> None:
        self.stream = stream


def test_a_capture_that_fails_puts_the_stream_back_turns_graphs_off_and_names_its_root_cause(caplog):
    streams, tries = Streams(), []

    def refuses(fn, sample):
        tries.append(sample[0].shape)
        streams.stream = "side"  # torch.cuda.graph's exit ends the capture before it restores the stream
        try:
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
        except RuntimeError:
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture") from None

    model = tiny_vrnn()
    graphed = GraphedPasses(model, bucket=8, capture_train=refuses, capture_eval=refuses, streams=streams)
    x, mask, noise = ragged_batch()
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        out = graphed(x, mask, noise)
        graphed(*ragged_batch(3, 20))  # another shape: no second capture
    assert streams.stream == "default" and len(tries) == 1 and graphed.eager_batches == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "graphs are off for the rest of the run" in warnings[0]
    assert "RuntimeError: operation not permitted when stream is capturing" in warnings[0]  # the context
    assert "module.cuda_graphs=false" in warnings[0]
    assert torch.equal(out.recon, model(x, mask, noise).recon)


def fake_gpu_trainer(monkeypatch, **settings):
    trainer = type("Trainer", (), {"world_size": 1, "precision": "32-true", "datamodule": None, **settings})()
    monkeypatch.setattr(SequenceModule, "device", property(lambda self: torch.device("cuda")))
    return trainer


def test_graphs_stay_off_where_gradients_accumulate(caplog, monkeypatch):
    """A graph's gradients alias its static buffers: the next replay would overwrite p.grad before the sum."""
    module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs=True)
    module._trainer = fake_gpu_trainer(monkeypatch, accumulate_grad_batches=2)
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        module.decide_graphs()
    assert module.graphs is None
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA graphs: off, the model runs eager: trainer.accumulate_grad_batches > 1 "
        "(a graph's next replay overwrites the gradients)"
    ]


def test_graphs_stay_off_where_the_data_carries_the_state_between_windows(caplog, monkeypatch):
    module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs=True)
    trainer = fake_gpu_trainer(monkeypatch, accumulate_grad_batches=1)
    trainer.datamodule = type("Streams", (), {"carries_state": True})()
    module._trainer = trainer
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        module.decide_graphs()
    assert module.graphs is None
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA graphs: off, the model runs eager: the data carries the state from window to window "
        "(data.stateful), which graphs do not"
    ]
    trainer.datamodule.carries_state = False
    module.decide_graphs()
    assert module.graphs is not None  # one GPU, float32, no carried state: on


def test_auto_runs_eager_on_a_gpu_until_a_card_has_passed_the_check_and_true_opts_in(caplog, monkeypatch):
    """No card has run the capture yet: the default must not take a path no GPU has checked."""
    from vrnn_lightning.training import cuda_graphs

    monkeypatch.setattr(cuda_graphs, "CHECKED_ON", None)
    said = {}
    for setting in ("auto", True, False):
        module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, cuda_graphs=setting)
        module._trainer = fake_gpu_trainer(monkeypatch, accumulate_grad_batches=1)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
            module.decide_graphs()
        said[setting] = ([r.getMessage() for r in caplog.records], module.graphs is not None)
    assert said["auto"] == (
        [
            "CUDA graphs: off, the model runs eager: module.cuda_graphs=auto runs eager until "
            "benchmarks/gpu_check.sh has passed on a card (docs/speed.md); module.cuda_graphs=true opts in"
        ],
        False,
    )
    assert said[True] == (
        ["CUDA graphs: on (module.cuda_graphs=true, opted in, not yet checked on a card; false turns them off)"],
        True,
    )
    assert said[False] == (["CUDA graphs: off, the model runs eager: module.cuda_graphs=false"], False)
    # The commit that records a passing check sets CHECKED_ON, and auto is graphs again
    monkeypatch.setattr(cuda_graphs, "CHECKED_ON", "NVIDIA H100, torch 2.13.0, CUDA 12.8, 2027-01-01")
    module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={})
    module._trainer = fake_gpu_trainer(monkeypatch, accumulate_grad_batches=1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        module.decide_graphs()
    assert module.graphs is not None
    assert "checked on NVIDIA H100" in caplog.records[0].getMessage()


@pytest.mark.parametrize("objective", ["fivo", "dreg"])
def test_an_objective_whose_training_steps_run_eager_says_so_in_one_line(objective, caplog, monkeypatch):
    """FIVO resamples between steps and DReG runs two passes through torch.func: their training steps cannot
    replay one graph, so they run eager with a line in the log, while validation's passes stay graphed."""
    from vrnn_lightning.objectives import FIVO
    from vrnn_lightning.objectives.dreg import DReG

    chosen = {"fivo": FIVO(samples=2), "dreg": DReG(samples=2)}[objective]
    module = SequenceModule(tiny_vrnn(), torch.optim.AdamW, data_metadata={}, objective=chosen, cuda_graphs=True)
    module._trainer = fake_gpu_trainer(monkeypatch, accumulate_grad_batches=1)
    with caplog.at_level(logging.INFO, logger="vrnn_lightning.training.cuda_graphs"):
        module.decide_graphs()
    said = [r.getMessage() for r in caplog.records]
    assert module.graphs is not None and said[0].startswith("CUDA graphs: on")
    assert said[1] == (
        f"CUDA graphs: objective={objective} runs its training steps eager; its validation and test passes are graphed"
    )
