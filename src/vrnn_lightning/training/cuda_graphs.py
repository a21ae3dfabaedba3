"""The model's pass replayed as CUDA graphs on a GPU: a training step is launch-bound (hundreds of small kernels
per time step), and a graph replays all of them as one launch.

Lightning-friendly: only the model's forward (and, in training, its backward) is captured, by
`torch.cuda.make_graphed_callables`; automatic optimisation, gradient clipping, the schedule and logging stay
Lightning's. The posterior noise is an input, drawn by the module outside the graph from the run's seeded
generator, eager or graphed alike (`SequenceModule.draw_noise`), so seeded runs and resumes draw the same noise.

A graph replays fixed shapes, so every batch is padded to a static shape first and its outputs cut back to
the real rows and steps: rows to the largest batch seen in that mode (a last, partial validation batch gets
zero-mask rows), steps up to the next multiple of `bucket` (variable-length music and speech: one graph per
bucket, captured lazily when first met, at most `max_graphs` in all). The masks make the padding exact: a
padded step or row has mask 0, so it adds nothing to any sum, and what follows a sequence's end never reaches
its earlier steps (the smoothing posterior reads each sequence backwards from its own last real step).
Where a graph cannot apply (a carried state, more shapes than `max_graphs`), that batch runs eager and the log
says so once per reason; a capture that fails turns graphs off for the rest of the run, with a warning naming its
root cause and `module.cuda_graphs=false`. Graphs replay against the parameters' addresses: when those change
(Lightning moves the model to the CPU after `fit` and back for `test`) they are dropped and captured again, and the
module drops them in its `teardown` too. Padding happens only here, on the graphed path: the CPU's eager runs are
unchanged.
"""

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from vrnn_lightning.models import SequenceModel, SequenceOutput
from vrnn_lightning.models.distributions import DiagonalGaussian

log = logging.getLogger(__name__)

# The card, torch and CUDA versions on which `bash benchmarks/gpu_check.sh` last passed, and its date; None until
# one has. Until then `module.cuda_graphs=auto` runs eager on a GPU and graphs are opt-in
# (`module.cuda_graphs=true`): a silently stale graph would give wrong figures, and no card has run this code yet.
# The commit that records a passing check in docs/speed.md sets this, which turns `auto` back to graphs.
CHECKED_ON: str | None = None


class TensorPass(nn.Module):
    """The model's teacher-forced pass with tensors out, what a graph can capture: the `SequenceOutput` fields
    the model fills, in a fixed order, their names kept in `present` (set by the first pass, which every capture
    runs eagerly to warm up); its `state` is left out: carried states run eager."""

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        self.model = model
        self.present: tuple[str, ...] = ()

    def forward(self, x: Tensor, mask: Tensor, noise: Tensor | None = None) -> tuple[Tensor, ...]:
        out = self.model(x, mask, noise)
        fields = {
            "recon": out.recon,
            "kl": out.kl,
            "x_params": out.x_params,
            "posterior_mean": None if out.posterior is None else out.posterior.mean,
            "posterior_std": None if out.posterior is None else out.posterior.std,
            "prior_mean": None if out.prior is None else out.prior.mean,
            "prior_std": None if out.prior is None else out.prior.std,
            "z": out.z,
            "auxiliary": out.auxiliary,
        }
        self.present = tuple(name for name, value in fields.items() if value is not None)
        return tuple(fields[name] for name in self.present)


def rebuild(values: tuple[Tensor, ...], present: tuple[str, ...], mask: Tensor) -> SequenceOutput:
    fields = dict(zip(present, values, strict=True))
    gaussian = lambda name: (
        DiagonalGaussian(fields[f"{name}_mean"], fields[f"{name}_std"]) if f"{name}_mean" in fields else None
    )
    return SequenceOutput(
        fields["recon"],
        fields["kl"],
        mask,
        fields["x_params"],
        gaussian("posterior"),
        gaussian("prior"),
        fields.get("z"),
        None,
        fields.get("auxiliary"),
    )


def bucket_length(steps: int, bucket: int) -> int:
    """`steps` rounded up to a multiple of `bucket`: the few static lengths variable-length data is padded to."""
    return -(-steps // bucket) * bucket


def pad_to(tensor: Tensor | None, rows: int, steps: int) -> Tensor | None:
    """(B, T, ...) zero-padded at the end to (rows, steps, ...)."""
    if tensor is None:
        return None
    padded = tensor.new_zeros(rows, steps, *tensor.shape[2:])
    padded[: tensor.shape[0], : tensor.shape[1]] = tensor
    return padded


def capture_forward(fn: nn.Module, sample: tuple[Tensor, ...]) -> Callable[..., tuple[Tensor, ...]]:
    """A forward-only CUDA graph of `fn` (evaluation): warmed up on a side stream, captured once; each call
    copies its inputs into the static ones, replays, and returns copies of the static outputs."""
    static_inputs = tuple(s.clone() for s in sample)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):  # warm-up: cuDNN and the allocator settle before capture
            fn(*static_inputs)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        static_outputs = fn(*static_inputs)

    def replay(*inputs: Tensor) -> tuple[Tensor, ...]:
        for static, given in zip(static_inputs, inputs, strict=True):
            static.copy_(given)
        graph.replay()
        return tuple(o.clone() for o in static_outputs)

    return replay


def capture_training(fn: nn.Module, sample: tuple[Tensor, ...]) -> Callable[..., tuple[Tensor, ...]]:
    """Forward and backward of `fn` captured by `torch.cuda.make_graphed_callables` (autograd intact). It
    replaces `fn.forward` by the graph, so every capture needs a module of its own (`GraphedPasses` makes one)."""
    graphed = torch.cuda.make_graphed_callables(fn, sample)
    return lambda *inputs: tuple(o.clone() for o in graphed(*inputs))  # the next replay overwrites the outputs


class CudaStreams:
    """The current CUDA stream, kept before a capture and put back after one that failed: `torch.cuda.graph`
    ends a failed capture before it restores the stream, which would leave the rest of the run on its side
    stream. Without CUDA there is no stream to keep."""

    def current(self) -> Any:
        return torch.cuda.current_stream() if torch.cuda.is_available() else None

    def restore(self, stream: Any) -> None:
        if stream is not None:
            torch.cuda.set_stream(stream)


def root_cause(err: BaseException) -> BaseException:
    """The first exception of a chain: a capture that fails inside `torch.cuda.graph` raises again on its exit
    (capture_end), which hides the op that was refused in the context."""
    while (err.__cause__ or err.__context__) is not None:
        err = err.__cause__ or err.__context__
    return err


def first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"


def storage_of(model: nn.Module) -> tuple[int, ...]:
    """Where the parameters and buffers live: a graph replays against these addresses, so when they change (the
    model moved to the CPU and back between fit and test) every graph is stale."""
    return tuple(t.data_ptr() for t in (*model.parameters(), *model.buffers()))


class Graph(NamedTuple):
    replay: Callable[..., tuple[Tensor, ...]]
    present: tuple[str, ...]  # the SequenceOutput fields it returns, in order


class GraphedPasses:
    """`model(x, mask, noise)` through CUDA graphs, one per (mode, rows, steps), captured lazily.

    `capture_train` and `capture_eval` turn (module, sample inputs) into a callable; they are the CUDA capture
    itself, and the only part of this class that needs a GPU (tests pass a stand-in that behaves like it: it
    takes over the module's forward, replays only its captured shapes, and fails on parameters that moved).
    Each capture gets a `TensorPass` of its own; the random state is put back after each, so the capture's
    warm-up draws (dropout) leave the run's random sequence as an eager run draws it. The first capture that
    fails turns graphs off for the rest of the run, with its root cause in the log: a failed capture can leave
    CUDA's allocator half in capture mode, which the next one would trip over.
    """

    def __init__(
        self,
        model: SequenceModel,
        bucket: int = 32,
        max_graphs: int = 16,
        capture_train: Callable = capture_training,
        capture_eval: Callable = capture_forward,
        streams: CudaStreams | None = None,
    ) -> None:
        self.model, self.bucket, self.max_graphs = model, bucket, max_graphs
        self.capture_train, self.capture_eval = capture_train, capture_eval
        self.streams = streams or CudaStreams()
        self.graphs: dict[tuple[bool, int, int], Graph] = {}  # (training, rows, steps) -> the graph
        self.rows: dict[bool, int] = {}  # the static batch of each mode: the largest seen
        self.storage: tuple[int, ...] = ()  # where the parameters were when the graphs were captured
        self.off: str | None = None  # why graphs are off for the rest of the run
        self.said: set[str] = set()
        self.eager_batches = self.replays = self.captures = 0

    def say_once(self, reason: str) -> None:
        if reason not in self.said:
            self.said.add(reason)
            log.info("CUDA graphs: %s", reason)

    def drop(self, reason: str) -> None:
        """Forget every graph (they are captured again when next needed)."""
        if self.graphs:
            log.info("CUDA graphs: %d graphs dropped: %s", len(self.graphs), reason)
        self.graphs.clear()
        self.rows.clear()

    def summary(self) -> str:
        return f"{self.captures} captured, {self.replays} batches replayed, {self.eager_batches} ran eager"

    def __call__(self, x: Tensor, mask: Tensor, noise: Tensor | None, state: Any = None) -> SequenceOutput:
        training = torch.is_grad_enabled() and self.model.training
        if self.off is not None:
            return self.eager(x, mask, noise, state)
        if state is not None:
            self.say_once("a carried state (data.stateful=true) runs eager")
            return self.eager(x, mask, noise, state)
        if self.graphs and storage_of(self.model) != self.storage:
            self.drop("the parameters moved since their capture (e.g. to the CPU and back between fit and test)")
        rows = max(self.rows.get(training, 0), x.shape[0])
        steps = x.shape[1] if self.bucket <= 1 else bucket_length(x.shape[1], self.bucket)
        key = (training, rows, steps)
        if key not in self.graphs and len(self.graphs) >= self.max_graphs:
            self.say_once(f"{self.max_graphs} graphs captured already; a batch of a new shape runs eager")
            return self.eager(x, mask, noise, state)
        inputs = self.padded(x, mask, noise, rows, steps)
        if key not in self.graphs and not self.capture(key, inputs):
            return self.eager(x, mask, noise, state)
        graph = self.graphs[key]
        values = graph.replay(*inputs)
        self.replays += 1
        batch, length = x.shape[:2]
        return rebuild(tuple(v[:batch, :length] for v in values), graph.present, mask)

    def capture(self, key: tuple[bool, int, int], inputs: tuple[Tensor, ...]) -> bool:
        training, rows, steps = key
        kind = "training" if training else "evaluation"
        capture = self.capture_train if training else self.capture_eval
        # Its own module: a capture replaces the forward of the module it is given (and make_graphed_callables
        # replays only while that module's training flag is the one it was captured in: the model's)
        passes = TensorPass(self.model).train(self.model.training)
        stream = self.streams.current()
        devices = [inputs[0].device.index or 0] if inputs[0].is_cuda else []
        try:
            with torch.random.fork_rng(devices=devices):  # the warm-up's draws are not the run's
                replay = capture(passes, inputs)
        except Exception as err:
            self.streams.restore(stream)
            cause = root_cause(err)
            self.off = f"capturing the {kind} graph for batch {rows} x {steps} failed"
            log.warning(
                "CUDA graphs: %s (%s%s); graphs are off for the rest of the run, which goes on eager "
                "(module.cuda_graphs=false skips them)",
                self.off,
                first_line(err),
                "" if cause is err else f", caused by {first_line(cause)}",
            )
            return False
        if not self.graphs:
            self.storage = storage_of(self.model)
        self.rows[training] = rows
        self.graphs[key] = Graph(replay, passes.present)
        self.captures += 1
        log.info("CUDA graphs: captured %s graph %d, batch %d x %d steps", kind, len(self.graphs), rows, steps)
        return True

    def eager(self, x: Tensor, mask: Tensor, noise: Tensor | None, state: Any) -> SequenceOutput:
        self.eager_batches += 1
        return self.model(x, mask, noise, state=state) if state is not None else self.model(x, mask, noise)

    @staticmethod
    def padded(x: Tensor, mask: Tensor, noise: Tensor | None, rows: int, steps: int) -> tuple[Tensor, ...]:
        inputs = (pad_to(x, rows, steps), pad_to(mask, rows, steps))
        return inputs if noise is None else (*inputs, pad_to(noise, rows, steps))


def posterior_noise(model: SequenceModel, x: Tensor, samples: int = 1) -> Tensor | None:
    """The posterior noise of a pass over x (B, T, ...) with `samples` trajectories per sequence, drawn outside
    the model (and outside any CUDA graph) from the run's seeded generator: the draw the model would make itself,
    in the dtype it would use (autocast's under mixed precision), so eager and graphed runs, and resumed ones,
    draw alike. None for a model without latents."""
    if not model.latent_dim:
        return None
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else model.dtype
    return torch.randn(len(x) * samples, x.shape[1], model.latent_dim, device=x.device, dtype=dtype)


def why_not_graphed(setting: bool | str, device: torch.device, trainer: Any, model: SequenceModel) -> str | None:
    """Why the model's pass runs eager under `module.cuda_graphs=setting` (one line), or None where it is
    replayed as CUDA graphs. `trainer` may be None (a module used without one)."""
    if setting is False:
        return "module.cuda_graphs=false"
    if device.type != "cuda":
        return "the model is not on a CUDA GPU"
    if setting == "auto" and CHECKED_ON is None:
        return (
            "module.cuda_graphs=auto runs eager until benchmarks/gpu_check.sh has passed on a card "
            "(docs/speed.md); module.cuda_graphs=true opts in"
        )
    if trainer is not None and trainer.world_size > 1:
        return "under DDP the gradient all-reduce hooks run eager (module.cuda_graphs applies to one GPU)"
    if trainer is not None and str(trainer.precision) not in ("32-true", "32"):
        return f"precision {trainer.precision} runs eager (graphs are captured in float32)"
    if model.config.get("compile"):
        return "model.compile runs its own compiled loop"
    if trainer is not None and getattr(trainer, "accumulate_grad_batches", 1) > 1:
        # A graph's gradients alias its static buffers: the next replay overwrites p.grad before it is added to
        return "trainer.accumulate_grad_batches > 1 (a graph's next replay overwrites the gradients)"
    if getattr(getattr(trainer, "datamodule", None), "carries_state", False):
        return "the data carries the state from window to window (data.stateful), which graphs do not"
    return None


def graphs_for(
    setting: bool | str, device: torch.device, trainer: Any, model: SequenceModel, objective: Any = None
) -> GraphedPasses | None:
    """The model's passes as CUDA graphs where `module.cuda_graphs` and the run allow them, else None; either
    way the log says in one line which path the run takes and why, and one more where the objective's own
    training steps run eager (`Objective.graphed`: FIVO's particles are resampled between steps)."""
    reason = why_not_graphed(setting, device, trainer, model)
    if reason is not None:
        log.info("CUDA graphs: off, the model runs eager: %s", reason)
        return None
    checked = f"checked on {CHECKED_ON}" if CHECKED_ON else "opted in, not yet checked on a card"
    log.info("CUDA graphs: on (module.cuda_graphs=%s, %s; false turns them off)", str(setting).lower(), checked)
    if objective is not None and not objective.graphed:
        log.info(
            "CUDA graphs: objective=%s runs its training steps eager; its validation and test passes are graphed",
            objective.name,
        )
    return GraphedPasses(model)
