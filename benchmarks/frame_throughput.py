"""Frames per second of the frame models (experiment=moving_mnist_vrnn and its RNN baseline) on the CPU or a GPU.

    python benchmarks/frame_throughput.py [--device cuda] [--batch-size 32] [--seq-len 15] [--repeats 10]

Times, with warm-up and the median of timed repeats, the variants taking turns step by step: the VRNN's and the
RNN's training step (forward + backward + AdamW) at the experiment's sizes, each in float32, with the conv
layers' tensors channels-last, and under bfloat16 autocast; then predicting 10 frames after 5 (SVG's training
protocol) with the VRNN, in frames per second; and the VRNN with SVG's skip connections
(`model.likelihood.skips=true`) in float32. Run by `benchmarks/throughput.py --frames` too.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

CONF = Path(__file__).resolve().parents[1] / "src" / "vrnn_lightning" / "conf"
VARIANTS = ("float32", "channels_last", "bf16")


def frame_model(name: str, device: str, skips: bool = False) -> torch.nn.Module:
    """The model of experiment=moving_mnist_<name>, untrained, for 32 x 32 frames; `skips`: SVG's skips."""
    overrides = [f"experiment=moving_mnist_{name}", *(["model.likelihood.skips=true"] if skips else [])]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return instantiate(cfg.model, likelihood={"x_dim": [1, cfg.data.frame_size, cfg.data.frame_size]}).to(device)


def training_step(
    name: str, variant: str, device: str, batch: int, steps: int, skips: bool = False
) -> Callable[[], None]:
    torch.manual_seed(0)
    model = frame_model(name, device, skips)
    x = (torch.rand(batch, steps, 1, 32, 32, device=device) > 0.9).float()
    if variant == "channels_last":  # conv weights and each step's frames in NHWC, where oneDNN / cuDNN prefer it
        model.likelihood.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=variant == "bf16")

    def step() -> None:
        with autocast:
            out = model(x)
            loss = (out.recon + out.kl).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_seconds(steps: dict[str, Callable[[], None]], device: str, warmup: int, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {kind: [] for kind in steps}
    for repeat in range(warmup + repeats):
        for kind, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            if repeat >= warmup:
                times[kind].append(time.perf_counter() - start)
    return {kind: statistics.median(t) for kind, t in times.items()}


def frame_figures(device: str, batch: int, seq_len: int, warmup: int, repeats: int) -> dict[str, float]:
    steps = {
        f"{name}_{variant}": training_step(name, variant, device, batch, seq_len)
        for name in ("vrnn", "rnn")
        for variant in VARIANTS
    }
    steps["vrnn_skips_float32"] = training_step("vrnn", "float32", device, batch, seq_len, skips=True)
    seconds = median_seconds(steps, device, warmup, repeats)
    figures = {}
    for kind, s in seconds.items():
        figures[kind] = batch * seq_len / s
        print(f"{kind:>20}: {figures[kind]:8.0f} frames/s trained  {1000 * s:7.1f} ms/step")
    model = frame_model("vrnn", device).eval()
    prime = (torch.rand(batch, 5, 1, 32, 32, device=device) > 0.9).float()
    predict = {"vrnn_predict": lambda: model.generate(10, prime=prime, temperature=0.0)}
    with torch.no_grad():
        s = median_seconds(predict, device, 1, max(3, repeats // 3))["vrnn_predict"]
    figures["vrnn_predict"] = batch * 10 / s
    print(f"{'vrnn_predict':>20}: {figures['vrnn_predict']:8.0f} frames/s predicted (10 after 5, batch {batch})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a visible CUDA GPU; run with --device cpu")
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch_size} frames={args.seq_len}")
    frame_figures(args.device, args.batch_size, args.seq_len, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
