import math

import pytest
import torch

from vrnn_lightning.models import VRNN
from vrnn_lightning.module import VRNNModule, warmup_cosine

VOCAB = "abcdefg"


def small_module(**kwargs) -> VRNNModule:
    torch.manual_seed(0)
    net = VRNN(x_dim=len(VOCAB), h_dim=16, z_dim=4, x_feat_dim=8, z_feat_dim=8, hidden_dim=12)
    return VRNNModule(net=net, optimizer=torch.optim.AdamW, vocab=VOCAB, **kwargs)


def test_warmup_then_cosine_to_the_floor():
    factor = warmup_cosine(warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55)
    assert factor(110) == pytest.approx(0.1) and factor(500) == pytest.approx(0.1)


def test_kl_warmup_ramps_beta_from_zero_to_one():
    module = small_module(kl_warmup_steps=100)
    assert module.beta() == 0.0  # global_step is 0 before training
    assert small_module().beta() == 1.0


def test_shared_step_loss_is_recon_plus_beta_kl(monkeypatch):
    module = small_module(kl_warmup_steps=4)
    logged = {}
    monkeypatch.setattr(module, "log_dict", lambda metrics, **_: logged.update(metrics))
    monkeypatch.setattr(module, "log", lambda name, value, **_: logged.update({name: value}))
    monkeypatch.setattr(VRNNModule, "global_step", property(lambda self: 1))
    batch = torch.randint(0, len(VOCAB), (3, 9))
    loss = module.training_step(batch, 0)
    assert torch.allclose(loss, logged["train/recon"] + 0.25 * logged["train/kl"])
    assert torch.allclose(logged["train/bpc"], (logged["train/recon"] + logged["train/kl"]) / math.log(2))
    module._shared_step(batch, "val")
    assert torch.allclose(logged["val/loss"], logged["val/recon"] + logged["val/kl"])


def test_sample_text_starts_with_the_prompt_and_is_seeded():
    module = small_module()
    a = module.sample_text("abc", 25, seed=3)
    assert a.startswith("abc") and len(a) == 28 and set(a) <= set(VOCAB)
    assert a == module.sample_text("abc", 25, seed=3)


def test_sample_text_names_characters_outside_the_vocabulary():
    with pytest.raises(ValueError, match="'xz' are not in the vocabulary"):
        small_module().sample_text("axz", 5)


def test_checkpoint_alone_rebuilds_module_and_vocabulary(tmp_path):
    module = small_module(sample_length=42)
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "model.ckpt")
    loaded = VRNNModule.load_checkpoint(str(tmp_path / "model.ckpt"))
    assert loaded.hparams.vocab == VOCAB and loaded.hparams.sample_length == 42
    assert loaded.sample_text("ab", 30, seed=1) == module.sample_text("ab", 30, seed=1)


def test_free_bits_floor_each_dimension_of_the_kl_objective():
    module = small_module(free_bits=0.5)
    out = module.net(torch.randint(0, len(VOCAB), (4, 6)))
    per_dim = out.posterior.kl_per_dim(out.prior).flatten(0, 1).mean(0)
    assert torch.allclose(module.kl_objective(out), per_dim.clamp_min(0.5).sum())
    assert module.kl_objective(out) >= 0.5 * per_dim.numel()
    assert torch.allclose(small_module().kl_objective(out), out.kl.mean())


def test_negative_free_bits_are_refused():
    with pytest.raises(ValueError, match="module.free_bits must be >= 0"):
        small_module(free_bits=-1.0)
