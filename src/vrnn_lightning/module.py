"""The LightningModule: negative ELBO, KL warm-up, logging, optimiser and schedule, samples for TensorBoard.

Every term is logged per step (per character for text, per row for images), in nats. Text adds `*/bpc`, the
bound in bits per character; images add `*/nll_bound`, the bound in nats per image. `train/loss` is the
objective being optimised (recon + beta * KL, the KL floored per dimension with free bits); `val/loss` and
`test/loss` are always the full negative ELBO (beta = 1, no floor), so checkpoints are chosen by the bound.
Validation and test also log `*/active_units` and a `*/kl_per_dim` histogram.
"""

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from vrnn_lightning.checkpoints import import_by_name, read_checkpoint
from vrnn_lightning.data.shakespeare import Vocabulary
from vrnn_lightning.images import image_grid, sequences_to_images
from vrnn_lightning.latents import LatentUsage
from vrnn_lightning.models import VRNNOutput


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up, then cosine decay to `min_ratio`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class VRNNModule(L.LightningModule):
    """Thin glue around a VRNN: the data's metadata (`vocab` or `image_layout`) rides in its hyperparameters,
    so every checkpoint can decode and draw what it generates."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.1,
        kl_warmup_steps: int = 0,
        free_bits: float = 0.0,
        vocab: str | None = None,
        image_layout: str | None = None,
        sample_length: int = 300,  # 0: no text sample
        sample_prompt: str = "",
        sample_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"module.lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net
        self.optimizer_factory = optimizer
        if free_bits < 0:
            raise ValueError(f"module.free_bits must be >= 0 (nats per latent dimension), got {free_bits!r}")
        self.first_val_batch: Tensor | None = None
        self.latent_usage = LatentUsage()
        self.rng_state_to_resume: dict[str, Any] | None = None

    def beta(self) -> float:
        """KL weight: ramps linearly 0 -> 1 over `kl_warmup_steps` optimiser steps (1 when off)."""
        steps = self.hparams.kl_warmup_steps
        return 1.0 if steps <= 0 else min(1.0, self.global_step / steps)

    def kl_objective(self, out: VRNNOutput) -> Tensor:
        """The KL term the optimiser sees: with free bits, each dimension's batch-average KL is floored at
        `free_bits` nats (Kingma et al., 2016), so no dimension is pushed to zero for less than that."""
        if self.hparams.free_bits <= 0 or out.posterior is None:
            return out.kl.mean()
        per_dim = out.posterior.kl_per_dim(out.prior).flatten(0, 1).mean(0)
        return per_dim.clamp_min(self.hparams.free_bits).sum()

    def _shared_step(self, batch: Tensor, stage: str) -> Tensor:
        out = self.net(batch)
        recon, kl = out.recon.mean(), out.kl.mean()
        if stage == "train":
            loss = recon + self.beta() * self.kl_objective(out)
        else:
            loss = recon + kl
            self.latent_usage.update(out)
        steps = batch.shape[0] * batch.shape[1]
        on_step = stage == "train"
        options = dict(on_step=on_step, on_epoch=not on_step, batch_size=steps, sync_dist=not on_step)
        metrics = {f"{stage}/recon": recon, f"{stage}/kl": kl}
        if self.hparams.vocab is not None:
            metrics[f"{stage}/bpc"] = (recon + kl) / math.log(2)
        self.log_dict(metrics, **options)
        self.log(f"{stage}/loss", loss, prog_bar=True, **options)
        if self.hparams.image_layout is not None:
            per_image = dict(options, batch_size=batch.shape[0])
            self.log(f"{stage}/nll_bound", (out.recon + out.kl).sum(1).mean(), **per_image)
        if on_step:
            self.log("train/beta", self.beta(), on_step=True, on_epoch=False)
        return loss

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        if batch_idx == 0:
            self.first_val_batch = batch[:8]
        self._shared_step(batch, "val")

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self.latent_usage = LatentUsage()

    on_test_epoch_start = on_validation_epoch_start

    def _log_latent_usage(self, stage: str) -> None:
        usage, z_dim = self.latent_usage, getattr(self.net, "z_dim", None)
        if z_dim is None:  # the baseline has no latents
            return
        if self.trainer.world_size > 1:
            usage.sum_across(lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"), z_dim, self.device)
        if usage.count == 0:
            return
        self.log(f"{stage}/active_units", float(usage.active_units()))
        experiment = getattr(self.logger, "experiment", None)
        if hasattr(experiment, "add_histogram") and self.trainer.is_global_zero:
            experiment.add_histogram(f"{stage}/kl_per_dim", usage.kl_per_dim(), self.global_step)

    def on_test_epoch_end(self) -> None:
        self._log_latent_usage("test")

    def on_validation_epoch_end(self) -> None:
        self._log_latent_usage("val")
        experiment = getattr(self.logger, "experiment", None)
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or not hasattr(experiment, "add_text"):
            return
        if self.hparams.vocab is not None and self.hparams.sample_length > 0:
            text = self.sample_text(self.hparams.sample_prompt, self.hparams.sample_length, self.hparams.sample_temperature)
            # Markdown would eat the line breaks of verse; an indented block keeps them.
            experiment.add_text("samples", "    " + text.replace("\n", "\n    "), self.global_step)
        if self.hparams.image_layout is not None and self.first_val_batch is not None:
            for name, grid in self.image_grids(self.first_val_batch).items():
                experiment.add_image(name, grid, self.global_step, dataformats="HW")

    @torch.no_grad()
    def image_grids(self, x: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Pictures of a batch of image sequences (B, T, D): inputs over their reconstructions (decoder means
        given posterior samples), samples from the prior, and the inputs' top halves over their completions."""
        was_training = self.net.training
        self.net.eval()
        generator = torch.Generator(self.device).manual_seed(seed)
        steps, half = x.shape[1], x.shape[1] // 2
        reconstructions = self.net.likelihood.mean(self.net(x).x_params)
        samples = self.net.generate(steps, batch_size=2 * len(x), generator=generator)
        completions = self.net.generate(steps - half, prime=x[:, :half], generator=generator)
        self.net.train(was_training)
        to_images = lambda seqs: sequences_to_images(seqs.cpu(), self.hparams.image_layout)  # noqa: E731
        count = len(x)
        return {
            "images/reconstructions": image_grid(to_images(torch.cat([x, reconstructions])), count),
            "images/samples": image_grid(to_images(samples), count),
            "images/completions": image_grid(to_images(torch.cat([x, torch.cat([x[:, :half], completions], 1)])), count),
        }

    def sample_text(self, prompt: str, length: int, temperature: float = 1.0, seed: int | None = None) -> str:
        """Prompt + `length` generated characters, decoded with the vocabulary stored in the module."""
        vocab = Vocabulary(self.hparams.vocab)
        prime = vocab.encode(prompt).unsqueeze(0).to(self.device) if prompt else None
        generator = torch.Generator(self.device).manual_seed(seed) if seed is not None else None
        was_training = self.net.training
        self.net.eval()
        ids = self.net.generate(length, batch_size=1, prime=prime, temperature=temperature, generator=generator)
        self.net.train(was_training)
        return prompt + vocab.decode(ids[0])

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.hparams.lr_schedule == "constant" and self.hparams.warmup_steps <= 0:
            return {"optimizer": optimizer}
        total = self.trainer.estimated_stepping_batches
        min_ratio = 1.0 if self.hparams.lr_schedule == "constant" else self.hparams.min_lr_ratio
        factor = warmup_cosine(max(1, self.hparams.warmup_steps), int(total), min_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Enough to rebuild the network, and the data module, from the checkpoint alone.
        checkpoint["net_class"] = f"{type(self.net).__module__}.{type(self.net).__qualname__}"
        checkpoint["net_config"] = dict(self.net.config)
        datamodule = getattr(self._trainer, "datamodule", None)
        if datamodule is not None:
            checkpoint["datamodule_class"] = f"{type(datamodule).__module__}.{type(datamodule).__qualname__}"
        # Lightning does not save the random state; the posterior noise of a resumed run depends on it.
        checkpoint["rng_state"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.rng_state_to_resume = checkpoint.get("rng_state")

    def on_train_start(self) -> None:
        """A resumed run takes up the random state where the checkpoint left it, after the sanity check (which
        the uninterrupted run did not do at this point), so it draws the same noise."""
        state, self.rng_state_to_resume = self.rng_state_to_resume, None
        if state is None:
            return
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])

    @classmethod
    def load_checkpoint(cls, path: str, map_location: str | torch.device = "cpu") -> "VRNNModule":
        """Rebuild module and network from a checkpoint written by training; no config files needed."""
        checkpoint = read_checkpoint(path, map_location)
        net = import_by_name(checkpoint["net_class"])(**checkpoint["net_config"])
        hparams = dict(checkpoint["hyper_parameters"])
        module = cls(net=net, optimizer=torch.optim.AdamW, **hparams)
        module.load_state_dict(checkpoint["state_dict"])
        return module
