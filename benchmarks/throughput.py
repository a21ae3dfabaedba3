"""Training and generation throughput of the VRNN at the reference Shakespeare sizes, against two baselines.

    python benchmarks/throughput.py [--device cuda] [--batch-size N] [--seq-len T] [--repeats R]

With --frames, instead: frames per second of the frame models (benchmarks/frame_throughput.py). With --family:
the training step of SRNN, DMM and STORN at the same sizes beside the VRNN's (the step
time of each and its ratio to the VRNN's, and FLOP/s against the fused GRU), and the VRNN's step on FIVO's bound
with K=4 particles against its ELBO step (and the share of it that resampling costs), and the same for the
smoothing SRNN (its backward pass once per sequence, read step by step).

Measures, in one run on one machine, with warm-up and the median of timed repeats (the three models take
turns step by step, so that drifts in the machine's speed do not favour one of them):
  (a) the project's VRNN training step (time-parallel forward + backward + AdamW),
  (b) the same step through the plain per-step formulation (models/reference.py),
  (c) a character RNN on torch's fused nn.GRU of the same hidden size, batch and window,
  and on CUDA (d) the step of (a) replayed as CUDA graphs, as training runs it (training/cuda_graphs.py).
For each: characters per second, FLOPs per character (FlopCounterMode), achieved FLOP/s, peak memory and
aten operator calls per time step (forward + backward). Then the VRNN's peak memory at several windows, and
generation speed. Peak memory is CUDA's peak allocation on a GPU; on the CPU, the growth of the process's peak RSS
over ten training steps (activations, gradients, optimiser state), each model in a fresh process. The last
lines are the ratios the project tracks (on CUDA, two more: graphed_speedup_vs_eager, graphed_time_vs_cudnn_gru).
"""

import argparse
import inspect
import json
import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from vrnn_lightning.models import DMM, SRNN, STORN, Categorical
from vrnn_lightning.models.base import full_mask
from vrnn_lightning.models.reference import per_step_forward
from vrnn_lightning.objectives.bounds import fivo_bound
from vrnn_lightning.training.cuda_graphs import GraphedPasses

CONF = Path(__file__).resolve().parents[1] / "src" / "vrnn_lightning" / "conf"
VOCAB = 65
GRAPHED: dict[str, GraphedPasses] = {}  # the graphed step's passes, to check that it really replayed


class OpCounter(TorchDispatchMode):
    """Counts aten operator calls (each a kernel launch on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


class CharGRU(nn.Module):
    """Baseline (c): embedding -> fused nn.GRU -> linear to the vocabulary."""

    def __init__(self, vocab: int, h_dim: int) -> None:
        super().__init__()
        self.embed, self.gru, self.head = (
            nn.Embedding(vocab, h_dim),
            nn.GRU(h_dim, h_dim, batch_first=True),
            nn.Linear(h_dim, vocab),
        )

    def loss(self, x: Tensor) -> Tensor:
        out, _ = self.gru(self.embed(x[:, :-1]))
        return nn.functional.cross_entropy(self.head(out).flatten(0, 1), x[:, 1:].flatten())


def reference_config():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=["experiment=shakespeare_vrnn"])


FAMILY = {"srnn": SRNN, "dmm": DMM, "storn": STORN}


def family_model(kind: str, cfg) -> nn.Module:
    """A model of the family at the VRNN's reference sizes: every setting of the VRNN's config the model takes
    under the same name, its posterior its own default (the VRNN's is filtering)."""
    model_class = FAMILY[kind]
    accepted = set(inspect.signature(model_class).parameters) - {"likelihood", "posterior"}
    settings = {k: v for k, v in cfg.model.items() if k in accepted}
    return model_class(Categorical(VOCAB), **settings)


def build(kind: str, device: str, compile_mode: str | bool = False) -> tuple[nn.Module, Callable[[Tensor], Tensor]]:
    """The model and its loss; `compile_mode` is the project VRNN's `model.compile` (kind "vrnn" only)."""
    cfg = reference_config()
    torch.manual_seed(0)
    if kind == "gru":
        model = CharGRU(VOCAB, cfg.model.h_dim).to(device)
        return model, model.loss
    if kind in FAMILY:
        model = family_model(kind, cfg).to(device)
        return model, lambda x: (lambda out: (out.recon + out.kl).mean())(model(x))
    if kind.startswith("fivo"):  # FIVO's bound, K=4: the VRNN's, or "fivo_srnn" the smoothing SRNN's (the
        # backward pass once per sequence, each step reading its slice); "fivo_never" never resamples
        member = kind.removeprefix("fivo_")
        if member in FAMILY:
            model = family_model(member, cfg).to(device)
        else:
            model = instantiate(cfg.model, likelihood={"x_dim": VOCAB}).to(device)
        threshold = 0.0 if kind == "fivo_never" else 0.5
        return model, lambda x: -fivo_bound(model, x, full_mask(x), 4, threshold).bound.mean() / x.shape[1]
    compile_mode = compile_mode if kind == "vrnn" else False
    model = instantiate(cfg.model, likelihood={"x_dim": VOCAB}, compile=compile_mode).to(device)
    if kind == "vrnn":
        return model, lambda x: (lambda out: (out.recon + out.kl).mean())(model(x))
    if kind == "graphed":  # (a) through CUDA graphs as training runs it, noise drawn outside
        graphed = GRAPHED[device] = GraphedPasses(model, bucket=1)
        noise = lambda x: torch.randn(*x.shape, model.latent_dim, device=x.device)
        return model, lambda x: (lambda out: (out.recon + out.kl).mean())(graphed(x, full_mask(x), noise(x)))
    return model, lambda x: (lambda out: (out.recon + out.kl).mean())(
        per_step_forward(model, x, torch.randn(*x.shape, model.latent_dim, device=x.device))
    )


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_step(
    kind: str, device: str, batch: int, steps: int, compile_mode: str | bool = False, bf16: bool = False
) -> tuple[Callable[[], None], Callable[[], Tensor], Tensor]:
    """(one training step, the loss alone, the batch) for one of the three models; `bf16` runs the forward
    under bfloat16 autocast, as Lightning's precision=bf16-mixed does."""
    model, loss_fn = build(kind, device, compile_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    window = steps + 1 if kind == "gru" else steps  # the GRU predicts `steps` characters from steps + 1
    x = torch.randint(0, VOCAB, (batch, window), device=device)

    def train_step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return train_step, lambda: loss_fn(x), x


def time_interleaved(
    kinds: list[str],
    device: str,
    batch: int,
    steps: int,
    warmup: int,
    repeats: int,
    compile_mode: str | bool,
    bf16: bool,
) -> dict:
    """Median seconds per training step of each kind, the kinds taking turns step by step, so that a machine
    whose speed drifts (a shared VM) slows them all alike and the ratios stay fair."""
    train_steps = {kind: make_step(kind, device, batch, steps, compile_mode, bf16)[0] for kind in kinds}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for repeat in range(warmup + repeats):
        for kind, train_step in train_steps.items():
            synchronize(device)
            start = time.perf_counter()
            train_step()
            synchronize(device)
            if repeat >= warmup:
                times[kind].append(time.perf_counter() - start)
    graphed = GRAPHED.get(device)
    if "graphed" in kinds and (graphed is None or graphed.eager_batches or not graphed.replays):
        # A capture that fell back eager would time the eager step and report about 1x
        raise SystemExit("the graphed step did not replay as a CUDA graph (see the warning above); nothing timed")
    return {kind: statistics.median(t) for kind, t in times.items()}


def count(kind: str, device: str, batch: int, steps: int) -> dict:
    """FLOPs and aten operator calls of one forward + backward."""
    _, loss_fn, _ = make_step(kind, device, batch, steps)
    flops = FlopCounterMode(display=False)
    with flops:
        loss_fn().backward()
    counter = OpCounter()
    with counter:
        loss_fn().backward()
    return dict(flops=flops.get_total_flops(), ops_per_step=counter.calls / steps)


def peak_memory(kind: str, device: str, batch: int, steps: int, compile_mode: str | bool, bf16: bool, queue) -> None:
    """Runs in its own process, so that the peak is this model's alone."""
    train_step = make_step(kind, device, batch, steps, compile_mode, bf16)[0]
    if device == "cuda":
        train_step()  # compiling (if asked) and the allocator's first growth happen before the mark
        torch.cuda.reset_peak_memory_stats()
    elif compile_mode and kind == "vrnn":
        queue.put(float("nan"))  # the compiler's own peak RSS would hide the model's
        return
    rss_before = resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss  # after imports and building: their peak is not ours
    for _ in range(10):
        train_step()
    if device == "cuda":
        queue.put(torch.cuda.max_memory_allocated() / 2**20)
    else:
        queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024)  # growth of peak RSS


def generation_speed(device: str, length: int, batch: int) -> float:
    model, _ = build("vrnn", device)
    model.eval()
    model.generate(20, batch_size=batch)
    synchronize(device)
    start = time.perf_counter()
    model.generate(length, batch_size=batch)
    synchronize(device)
    return batch * length / (time.perf_counter() - start)


def isolated_peak_mb(*args) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=peak_memory, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def family_figures(args: argparse.Namespace) -> None:
    """The family's training steps beside the VRNN's (taking turns, as above): each one's step time, its ratio
    to the VRNN's, and its FLOP/s against the fused GRU's."""
    kinds = ["vrnn", *FAMILY, "fivo", "fivo_never", "fivo_srnn", "gru"]
    seconds = time_interleaved(
        kinds, args.device, args.batch_size, args.seq_len, args.warmup, args.repeats, False, False
    )
    flops = {kind: count(kind, args.device, args.batch_size, args.seq_len)["flops"] for kind in kinds}
    gru_rate = flops["gru"] / seconds["gru"]
    results = {}
    for kind in kinds:
        results[kind] = r = dict(
            step_ms=1000 * seconds[kind],
            steps_per_s=1 / seconds[kind],
            time_vs_vrnn=seconds[kind] / seconds["vrnn"],
            flop_efficiency_vs_fused_gru=flops[kind] / seconds[kind] / gru_rate,
        )
        print(
            f"{kind:>10}: {r['steps_per_s']:6.2f} steps/s  {r['step_ms']:7.1f} ms/step  "
            f"time_vs_vrnn {r['time_vs_vrnn']:.2f}  "
            f"flop_efficiency_vs_fused_gru {r['flop_efficiency_vs_fused_gru']:.2f}"
        )
    print(f"fivo_step_vs_elbo_step: {results['fivo']['time_vs_vrnn']:.2f}  (the VRNN, K=4 particles, threshold 0.5)")
    print(f"resampling_share_of_fivo_step: {1 - seconds['fivo_never'] / seconds['fivo']:.2f}")
    srnn_ratio = seconds["fivo_srnn"] / seconds["srnn"]
    print(f"fivo_step_vs_elbo_step_srnn: {srnn_ratio:.2f}  (the smoothing SRNN, K=4 particles, threshold 0.5)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def main() -> None:
    cfg = reference_config()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=cfg.data.batch_size)
    parser.add_argument("--seq-len", type=int, default=cfg.data.seq_len)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--memory-windows", default="64,128,256,512", help="windows at which to measure peak memory")
    parser.add_argument(
        "--compile",
        default="false",
        choices=["false", "true", "reduce-overhead", "max-autotune"],
        help="model.compile for (a); FLOPs and operator calls are counted on the eager formulation",
    )
    parser.add_argument("--bf16", action="store_true", help="time all three under bfloat16 autocast (bf16-mixed)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--frames",
        action="store_true",
        help="instead: frames per second of the frame models (benchmarks/frame_throughput.py, its defaults)",
    )
    parser.add_argument(
        "--family",
        action="store_true",
        help="instead: the training step of SRNN, DMM and STORN at the VRNN's sizes against the VRNN's and the GRU's",
    )
    args = parser.parse_args()
    if args.frames:
        from frame_throughput import frame_figures  # beside this file

        return frame_figures(args.device, 32, 15, 2, 10)
    compile_mode = {"false": False, "true": True}.get(args.compile, args.compile)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a visible CUDA GPU; run with --device cpu")

    print(
        f"device={args.device} threads={torch.get_num_threads()} batch={args.batch_size} window={args.seq_len} "
        f"h={cfg.model.h_dim} z={cfg.model.z_dim} torch={torch.__version__} compile={args.compile} bf16={args.bf16}"
    )
    if args.family:
        return family_figures(args)
    graphed = args.device == "cuda" and not args.bf16
    if args.device == "cuda" and args.bf16:
        # make_graphed_callables refuses autocast's weight cache, and training runs eager under bf16-mixed
        print("graphed: not timed under --bf16 (graphs are captured in float32; module.cuda_graphs is off there)")
    kinds = ["vrnn", "per_step", "gru", *(["graphed"] if graphed else [])]
    # Memory first: a child process inherits the parent's peak-RSS mark, which the timing below would raise.
    setting = (compile_mode, args.bf16)
    peaks = {kind: isolated_peak_mb(kind, args.device, args.batch_size, args.seq_len, *setting) for kind in kinds}
    window_peaks = {
        w: isolated_peak_mb("vrnn", args.device, args.batch_size, w, *setting)
        for w in map(int, args.memory_windows.split(","))
    }
    seconds = time_interleaved(kinds, args.device, args.batch_size, args.seq_len, args.warmup, args.repeats, *setting)
    chars = args.batch_size * args.seq_len
    results = {}
    for kind in kinds:
        counted = count("vrnn" if kind == "graphed" else kind, args.device, args.batch_size, args.seq_len)
        results[kind] = r = dict(
            step_ms=1000 * seconds[kind],
            chars_per_s=chars / seconds[kind],
            flops_per_char=counted["flops"] / chars,
            flop_per_s=counted["flops"] / seconds[kind],
            ops_per_step=counted["ops_per_step"],
            peak_mb=peaks[kind],
        )
        print(
            f"{kind:>9}: {r['chars_per_s']:>9.0f} chars/s  {r['step_ms']:7.1f} ms/step  "
            f"{r['flops_per_char'] / 1e6:6.2f} MFLOP/char  {r['flop_per_s'] / 1e9:6.1f} GFLOP/s  "
            f"peak {r['peak_mb']:6.0f} MB  {r['ops_per_step']:6.1f} aten ops/step"
        )
    for window, peak in window_peaks.items():
        print(
            f"peak training memory at window {window:>4}: {peak:7.0f} MB, "
            f"{peak * 1024 / (args.batch_size * window):6.1f} KB per (batch x window) character"
        )
    for batch in (1, args.batch_size):
        print(f"generation: {generation_speed(args.device, 500, batch):.0f} chars/s at batch {batch}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    a, b, c = results["vrnn"], results["per_step"], results["gru"]
    print(f"speedup_vs_per_step: {a['chars_per_s'] / b['chars_per_s']:.2f}")
    print(f"flop_efficiency_vs_fused_gru: {a['flop_per_s'] / c['flop_per_s']:.2f}")
    print(f"ops_per_step_vs_per_step: {a['ops_per_step'] / b['ops_per_step']:.2f}")
    if "graphed" in results:  # the step as training runs it on a GPU (module.cuda_graphs=auto)
        g = results["graphed"]
        print(f"graphed_speedup_vs_eager: {a['step_ms'] / g['step_ms']:.2f}")
        print(f"graphed_time_vs_cudnn_gru: {g['step_ms'] / c['step_ms']:.2f}")


if __name__ == "__main__":
    main()
