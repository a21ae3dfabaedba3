"""Likelihood heads' cost on piano rolls: forward and backward of `nll`, and training steps of the whole model.

    python benchmarks/heads.py            # one CPU thread; batch 32 crops of 100 steps, 88 keys

Prints, per head: the head alone (nll forward + backward, ms per batch) and a full training step of the
polyphonic RNN and VRNN experiments' models with it (forward, backward, AdamW; steps per second).
"""

import time

import torch

from vrnn_lightning.models import MADE, RNN, VRNN, Bernoulli

BATCH, STEPS, KEYS = 32, 100, 88


def timed(fn, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = (torch.rand(BATCH, STEPS, KEYS) < 0.05).float()
    heads = {"bernoulli": lambda: Bernoulli(KEYS), "made (150 hidden)": lambda: MADE(KEYS, hidden_dim=150)}
    print(f"one CPU thread, batch {BATCH} x {STEPS} steps x {KEYS} keys")
    for name, make in heads.items():
        head = make()
        params = torch.randn(BATCH, STEPS, head.param_dim, requires_grad=True)
        alone = timed(lambda: head.nll(params, x).sum().backward())
        line = [f"{name:>18}: head alone {alone * 1e3:6.1f} ms"]
        for model_name, model in (
            ("rnn", RNN(make(), h_dim=128, x_feat_dim=64, hidden_dim=128, mlp_layers=1)),
            ("vrnn", VRNN(make(), h_dim=128, z_dim=16, x_feat_dim=64, z_feat_dim=64, hidden_dim=128, mlp_layers=1)),
        ):
            optimizer = torch.optim.AdamW(model.parameters())

            def step() -> None:
                out = model(x)
                optimizer.zero_grad()
                (out.recon.sum() + out.kl.sum()).backward()
                optimizer.step()

            line.append(f"{model_name} step {1 / timed(step, 10):5.2f} steps/s")
        print(", ".join(line))


if __name__ == "__main__":
    main()
