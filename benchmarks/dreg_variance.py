"""The variance of the posterior's gradient under IWAE and DReG, at K = 4, 16, 64:

    python benchmarks/dreg_variance.py [--ckpt best.ckpt] [--root ../shared/data/polyphonic] [--draws 40]

On one batch of JSB Chorales training crops (--pieces of them, 100 steps each; the standard .mat under --root) or, with
--ckpt, on a batch of that checkpoint's own training data with its trained model; without a checkpoint, a VRNN
at `experiment=polyphonic_vrnn`'s sizes at initialisation (seeded). For each objective and K, `--draws` gradients
of the training loss with fresh posterior noise, for the parameters only the posterior reads
(`SequenceModel.posterior_parameters`); printed: the summed per-coordinate variance of that gradient, the
squared norm of its mean, and their ratio's root, the signal-to-noise ratio Rainforth et al. (2018) track.
The same noise seeds for both objectives; figures labelled by K. CPU, a few minutes at the defaults.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from vrnn_lightning.data import PolyphonicDataModule
from vrnn_lightning.models import VRNN, Bernoulli
from vrnn_lightning.objectives import IWAE
from vrnn_lightning.objectives.dreg import DReG
from vrnn_lightning.training.checkpoints import datamodule_from_checkpoint, load_module, read_checkpoint
from vrnn_lightning.training.module import SequenceModule


def model_and_batch(args: argparse.Namespace) -> tuple[torch.nn.Module, object]:
    if args.ckpt:
        checkpoint = read_checkpoint(args.ckpt)
        model, data = load_module(checkpoint).model, datamodule_from_checkpoint(checkpoint, batch_size=args.pieces)
    else:
        torch.manual_seed(0)
        model = VRNN(Bernoulli(88), h_dim=128, z_dim=16, x_feat_dim=64, z_feat_dim=64, hidden_dim=128)
        data = PolyphonicDataModule("jsb", root=args.root, download=False, batch_size=args.pieces, max_len=100, seed=0)
    data.setup("fit")
    return model.train(), next(iter(data.train_dataloader()))


def gradient_draws(model, objective, batch, draws: int) -> torch.Tensor:
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={"figures": {}}, objective=objective)
    own = model.posterior_parameters()
    rows = []
    for seed in range(draws):
        torch.manual_seed(seed)
        loss = objective.training_terms(module, batch).loss
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, own)]))
    return torch.stack(rows)  # (draws, parameters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--root", default="../shared/data/polyphonic")
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--pieces", type=int, default=4)
    parser.add_argument("--samples", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model, batch = model_and_batch(args)
    print(f"{'K':>4} {'objective':>9} {'variance':>12} {'mean^2':>12} {'snr':>8} {'s/step':>7}")
    results = []
    for k in args.samples:
        for objective in (IWAE(samples=k), DReG(samples=k)):
            start = time.perf_counter()
            draws = gradient_draws(model, objective, batch, args.draws)
            seconds = (time.perf_counter() - start) / args.draws
            variance, signal = draws.var(0).sum().item(), draws.mean(0).pow(2).sum().item()
            row = dict(K=k, objective=type(objective).__name__, variance=variance, mean_sq=signal)
            row |= dict(snr=(signal / variance) ** 0.5, seconds_per_step=seconds)
            results.append(row)
            print(f"{k:>4} {row['objective']:>9} {variance:>12.4e} {signal:>12.4e} {row['snr']:>8.3f} {seconds:>7.3f}")
        iwae, dreg = results[-2:]
        print(f"dreg_variance_vs_iwae_k{k}: {dreg['variance'] / iwae['variance']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
