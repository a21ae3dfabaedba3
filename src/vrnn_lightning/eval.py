"""Evaluate a checkpoint: python -m vrnn_lightning.eval ckpt_path=... [eval.iw_samples=64] [split=test]

On the checkpoint's own test data (its data settings, overridable with data.*=): the ELBO and its KL and
reconstruction parts; the bound per step, per sequence and in the data's own figures (bits per character for
text); with eval.iw_samples=K the importance-weighted bound (K trajectories from the filtering posterior,
log-mean-exp of their weights), which is tighter; with eval.fivo_samples=K the FIVO bound of a particle filter
of K particles resampled step by step (any posterior); each bound is computed by the objective that trains on it
(`objectives/`); KL per latent dimension and active units. With
eval.stateful=true (text), also the bounds with the recurrent state carried along eval.streams contiguous streams
(`carried_*`; see `carried_state_metrics`); split=heldout is the text's whole last 10%. On frames, PSNR and
SSIM of the best of eval.futures predicted futures per predicted step (prediction.png). Writes metrics.json.
"""

import json
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.data.base import figure_value
from vrnn_lightning.errors import ConfigError, one_line_errors, run_cli
from vrnn_lightning.launch.config_checks import check_against_checkpoint, check_config
from vrnn_lightning.models import SequenceModel
from vrnn_lightning.models.base import select_state
from vrnn_lightning.objectives import FIVO, IWAE, Objective
from vrnn_lightning.objectives.bounds import mean_weight, resample
from vrnn_lightning.training.checkpoints import datamodule_from_checkpoint, load_module, read_checkpoint
from vrnn_lightning.training.metrics import LatentUsage


def data_overrides(cfg: DictConfig) -> dict[str, Any]:
    """The `data.*` settings given on the command line of eval or sample; null means keep the checkpoint's."""
    return {k: v for k, v in OmegaConf.to_container(cfg.get("data") or {}).items() if v is not None}


def pick_device(choice: str) -> str:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda asks for a CUDA GPU but none is visible; use device=cpu")
    return device


def bound_metrics(kind: str, total: float, steps: int, sequences: int, metadata: dict[str, Any]) -> dict[str, float]:
    """A bound summed over the split, in nats per step and per sequence and in the data's own figures."""
    unit = metadata["step_unit"]
    per = {"step": total / steps, "sequence": total / sequences}
    metrics = {f"{kind}_nats_per_{unit}": per["step"], f"{kind}_nats_per_sequence": per["sequence"]}
    for name, figure in metadata["figures"].items():
        metrics[f"{kind}_{name}"] = figure_value(figure, per["step"], per["sequence"], steps / sequences)
    return metrics


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Bounds and latent usage on the chosen split; returns the metrics written to metrics.json."""
    check_config(cfg, "eval")
    iw_samples = cfg.eval.iw_samples
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    checkpoint = read_checkpoint(cfg.ckpt_path)
    check_against_checkpoint(cfg, "eval", checkpoint)
    module = load_module(checkpoint)
    model, metadata = module.model.to(device).eval(), module.hparams.data_metadata
    datamodule = datamodule_from_checkpoint(checkpoint, **data_overrides(cfg))
    datamodule.setup("test")
    loader = datamodule.eval_dataloader(cfg.split)
    streams = datamodule.streams(cfg.split, cfg.eval.streams, window_length(loader)) if cfg.eval.stateful else None

    fivo_samples = cfg.eval.get("fivo_samples")
    # The bounds asked for, computed by the objectives that train on them (objectives/)
    bounds: dict[str, Objective] = {}
    if iw_samples and model.latent_dim:
        bounds["iw_bound"] = IWAE(samples=iw_samples)
    if fivo_samples and model.latent_dim:
        bounds["fivo_bound"] = FIVO(fivo_samples, cfg.eval.resample_threshold, cfg.eval.resampling)
    totals = dict.fromkeys(bounds, 0.0)
    recon = kl = iw = 0.0
    steps = sequences = 0
    usage = LatentUsage(model.latent_dim).to(device) if model.latent_dim else None
    for batch in loader:
        x, mask = batch.x.to(device), batch.mask.to(device)
        out = model(x, mask)
        recon += out.recon.sum().item()
        kl += out.kl.sum().item()
        steps += int(mask.sum().item())
        sequences += x.shape[0]
        if usage is not None:
            usage.update(out)
        if not model.latent_dim:  # no latents: every trajectory and particle is the one pass above, exact
            iw += (out.recon + out.kl).sum().item()
        for kind, objective in bounds.items():
            totals[kind] -= objective.bound_in_chunks(model, x, mask, cfg.eval.iw_chunk).sum().item()

    unit = metadata["step_unit"]
    metrics = {
        "checkpoint": str(cfg.ckpt_path),
        "split": cfg.split,
        "steps": steps,
        "sequences": sequences,
        f"recon_nats_per_{unit}": recon / steps,
        f"kl_nats_per_{unit}": kl / steps,
        **bound_metrics("elbo_bound", recon + kl, steps, sequences, metadata),
    }
    if iw_samples:
        metrics["iw_samples"] = iw_samples
        total = totals.get("iw_bound", iw)  # without latents, the exact likelihood
        metrics.update(bound_metrics("iw_bound", total, steps, sequences, metadata))
    if fivo_samples:
        metrics["fivo_samples"] = fivo_samples
        total = totals.get("fivo_bound", iw)  # without latents, the exact likelihood
        metrics.update(bound_metrics("fivo_bound", total, steps, sequences, metadata))
    if (iw_samples or fivo_samples) and not model.latent_dim:
        metrics["bounds_note"] = f"{type(model).__name__} has no latent variables: its bounds are its exact likelihood"
    if usage is not None:
        latents = usage.compute()
        metrics["active_units"] = int(latents["active_units"])
        metrics["units_off_prior"] = int(latents["units_off_prior"])
        metrics["latent_dims"] = model.latent_dim
        metrics["kl_per_dim"] = [round(v, 6) for v in latents["kl_per_dim"].tolist()]
    if streams is not None:
        metrics.update(carried_state_metrics(model, streams, iw_samples, metadata))
    if cfg.eval.get("futures"):  # frames: predicted futures scored (other data has no such figures)
        folder = Path(cfg.paths.output_dir)
        predicted = cfg.eval.get("predicted")
        metrics.update(datamodule.prediction_metrics(model, cfg.split, cfg.eval.futures, predicted, cfg.seed, folder))
    if datamodule.note:
        metrics["note"] = datamodule.note
    return metrics


def window_length(loader: Any) -> int:
    """The length of the split's evaluation windows (its first batch's), the length streams are read in."""
    return next(iter(loader)).x.shape[1]


def carried_state_metrics(
    model: SequenceModel, streams: list[Any], iw_samples: int | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    """The bound with the state carried from window to window along each stream (`carried_*` metrics).

    The ELBO: one trajectory z ~ q along the whole stream, so the sum over windows is a one-sample estimate of
    the stream's ELBO, a bound on log p(stream) in expectation. With K = `iw_samples`, K trajectories per stream
    are resampled at every window boundary in proportion to their window's weights: a particle filter with q
    as its proposal, whose log evidence estimate, the sum over windows of log-mean-exp of the weights, is a
    bound on log p(stream) in expectation too (Maddison et al. 2017, FIVO); K = 1 is the ELBO again.
    """
    device = model.device
    state = particles = None
    recon = kl = iw = 0.0
    steps = 0
    for batch in streams:
        x, mask = batch.x.to(device), batch.mask.to(device)
        out = model(x, mask, state=state)
        state = out.state
        recon += out.recon.sum().item()
        kl += out.kl.sum().item()
        steps += int(mask.sum().item())
        if iw_samples and model.latent_dim:
            k = iw_samples
            repeated = model(x.repeat_interleave(k, 0), mask.repeat_interleave(k, 0), state=particles)
            weights = repeated.log_weight().view(len(x), k).double()  # (streams, K)
            iw -= mean_weight(weights).sum().item()
            chosen = resample(weights, "multinomial")  # (streams, K) ancestors in proportion to the weights
            rows = (chosen + k * torch.arange(len(x), device=device).unsqueeze(1)).flatten()
            particles = select_state(repeated.state, rows)
    sequences = len(streams[0].x)
    metrics: dict[str, Any] = {"carried_streams": sequences, "carried_steps": steps}
    metrics.update(bound_metrics("carried_elbo_bound", recon + kl, steps, sequences, metadata))
    if iw_samples and model.latent_dim:
        metrics["carried_iw_samples"] = iw_samples
        metrics.update(bound_metrics("carried_iw_bound", iw, steps, sequences, metadata))
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with one_line_errors():
        metrics = evaluate(cfg)
    path = Path(cfg.paths.output_dir) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    for name, value in metrics.items():
        if not isinstance(value, list | dict):
            print(f"{name:>30}: {value:.4f}" if isinstance(value, float) else f"{name:>30}: {value}")
    print(f"wrote {path}")


def cli() -> None:
    """`vrnn-eval`, and `python -m vrnn_lightning.eval`."""
    run_cli(main, name="eval")


if __name__ == "__main__":
    cli()
