"""Evaluate a checkpoint: python -m vrnn_lightning.eval ckpt_path=... [eval.iw_samples=64] [split=test]

On the checkpoint's own test data (its data settings, overridable with data.*=): the ELBO and its KL and
reconstruction parts; the NLL bound per step, per sequence and, for text, in bits per character; with
eval.iw_samples=K the importance-weighted bound (K trajectories from the filtering posterior, log-mean-exp of
their weights), which is tighter; KL per latent dimension and active units. Writes metrics.json.
"""

import json
import math
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from torch import Tensor

from vrnn_lightning.checkpoints import data_overrides, datamodule_from_checkpoint, read_checkpoint
from vrnn_lightning.errors import ConfigError, check_group_choices, one_line_errors
from vrnn_lightning.latents import LatentUsage
from vrnn_lightning.module import VRNNModule


def iw_log_likelihood(net: torch.nn.Module, x: Tensor, samples: int, chunk: int) -> Tensor:
    """log p(x) estimates (B,): log (1/K) sum_k w_k with w_k = p(x, z_k) / q(z_k | x), z_k ~ q. A lower bound on
    log p(x) in expectation, tightening as K grows; K = 1 is the ELBO's single-sample estimate."""
    per_chunk = max(1, chunk // samples)
    estimates = []
    for part in x.split(per_chunk):
        weights = net(part.repeat_interleave(samples, 0)).log_weight().view(len(part), samples)
        estimates.append(torch.logsumexp(weights.double(), 1) - math.log(samples))
    return torch.cat(estimates)


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Bounds and latent usage on the chosen split; returns the metrics written to metrics.json."""
    if cfg.split not in ("test", "val"):
        raise ConfigError(f"split={cfg.split!r} is not a split; use split=test or split=val")
    iw_samples = cfg.eval.iw_samples
    if iw_samples is not None and (isinstance(iw_samples, bool) or not isinstance(iw_samples, int) or iw_samples < 1):
        raise ConfigError(f"eval.iw_samples={iw_samples} must be a whole number >= 1 (or null for the ELBO alone)")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda asks for a CUDA GPU but none is visible; use device=cpu")
    torch.manual_seed(cfg.seed)
    checkpoint = read_checkpoint(cfg.ckpt_path)
    net = VRNNModule.load_checkpoint(cfg.ckpt_path).net.to(device).eval()
    datamodule = datamodule_from_checkpoint(checkpoint, **data_overrides(cfg))
    datamodule.setup(cfg.split)
    loader = datamodule.test_dataloader() if cfg.split == "test" else datamodule.val_dataloader()

    recon = kl = iw = 0.0
    steps = sequences = 0
    usage = LatentUsage()
    for batch in loader:
        batch = batch.to(device)
        out = net(batch)
        recon += out.recon.sum().item()
        kl += out.kl.sum().item()
        usage.update(out)
        steps += batch.shape[0] * batch.shape[1]
        sequences += batch.shape[0]
        if iw_samples:
            iw -= iw_log_likelihood(net, batch, iw_samples, cfg.eval.iw_chunk).sum().item()

    is_text = checkpoint["hyper_parameters"].get("vocab") is not None
    unit = "char" if is_text else "step"
    metrics = {
        "checkpoint": str(cfg.ckpt_path), "split": cfg.split, "steps": steps, "sequences": sequences,
        f"recon_nats_per_{unit}": recon / steps, f"kl_nats_per_{unit}": kl / steps,
        f"elbo_bound_nats_per_{unit}": (recon + kl) / steps, "elbo_bound_nats_per_sequence": (recon + kl) / sequences,
    }
    if is_text:
        metrics["elbo_bound_bits_per_char"] = (recon + kl) / steps / math.log(2)
    if iw_samples:
        metrics.update({"iw_samples": iw_samples, f"iw_bound_nats_per_{unit}": iw / steps,
                        "iw_bound_nats_per_sequence": iw / sequences})
        if is_text:
            metrics["iw_bound_bits_per_char"] = iw / steps / math.log(2)
    if usage.count:
        metrics["active_units"] = usage.active_units()
        metrics["latent_dims"] = len(usage.kl_per_dim())
        metrics["kl_per_dim"] = [round(v, 6) for v in usage.kl_per_dim().tolist()]
    if getattr(datamodule, "split", None) == "t10k_only":
        metrics["note"] = "t10k_only MNIST split: not comparable with published MNIST figures"
    return metrics


@hydra.main(version_base="1.3", config_path="../../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with one_line_errors():
        metrics = evaluate(cfg)
    path = Path(cfg.paths.output_dir) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    for name, value in metrics.items():
        if not isinstance(value, list):
            print(f"{name:>30}: {value:.4f}" if isinstance(value, float) else f"{name:>30}: {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    with one_line_errors():
        check_group_choices(sys.argv[1:])
    main()
