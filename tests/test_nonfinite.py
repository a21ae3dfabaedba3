"""A diverging run stops at the first non-finite loss or gradient; no non-finite weight is applied or saved."""

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from tests.helpers.runs import TINY, run_main
from vrnn_lightning.data import Batch, CharDataModule
from vrnn_lightning.models import VRNN, Categorical
from vrnn_lightning.training.callbacks.nonfinite import NonFiniteLossError, StopOnNonFinite
from vrnn_lightning.training.module import SequenceModule


class PoisonedModule(SequenceModule):
    """Turns the loss (or one gradient) into NaN at `bad_step`."""

    def __init__(self, *args, bad_step: int, poison: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bad_step, self.poison = bad_step, poison

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * math.nan if self.poison == "loss" and self.global_step == self.bad_step else loss

    def on_after_backward(self) -> None:
        if self.poison == "grad" and self.global_step == self.bad_step:
            self.model.prior.out.weight.grad[0, 0] = math.inf


def fit_until_poisoned(tmp_path, poison: str) -> tuple[PoisonedModule, NonFiniteLossError]:
    torch.manual_seed(0)
    text = tmp_path / "corpus.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    data = CharDataModule(str(text), seq_len=8, batch_size=4, batches_per_epoch=50)
    model = VRNN(Categorical(data.x_dim), h_dim=8, z_dim=2, x_feat_dim=4, z_feat_dim=4, hidden_dim=8)
    module = PoisonedModule(model, torch.optim.Adam, data.metadata, bad_step=4, poison=poison)
    every_step = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints", filename="last", every_n_train_steps=1, enable_version_counter=False
    )
    trainer = L.Trainer(
        max_steps=20,
        callbacks=[StopOnNonFinite(), every_step],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit(module, datamodule=data)
    return module, caught.value


@pytest.mark.parametrize(
    "poison, named", [("loss", "training loss is nan"), ("grad", "gradient of model.prior.out.weight")]
)
def test_training_stops_at_the_first_non_finite_value_with_the_step_and_fixes(tmp_path, poison, named):
    module, error = fit_until_poisoned(tmp_path, poison)
    assert named in str(error) and "at step 4" in str(error) and "module.optimizer.lr" in str(error)
    assert all(p.isfinite().all() for p in module.parameters())  # the bad update was never applied
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 4  # the last good step
    assert all(t.isfinite().all() for t in last["state_dict"].values())


@pytest.mark.slow
def test_a_diverging_run_ends_with_one_error_line_and_exit_status_2(tmp_path):
    result = run_main(
        "train",
        *TINY,
        "module.optimizer.lr=1e30",
        "module.lr_schedule=constant",
        "module.warmup_steps=0",
        "trainer.gradient_clip_val=null",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and "at step" in last_line and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
