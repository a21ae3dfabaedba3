import math

import pytest
import torch

from vrnn_lightning.data.base import figure, full_batch
from vrnn_lightning.data.text import Vocabulary, sample_text
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import VRNN, Categorical
from vrnn_lightning.objectives import ELBO, FIVO, IWAE
from vrnn_lightning.training.checkpoints import load_module
from vrnn_lightning.training.module import SequenceModule
from vrnn_lightning.training.schedules import warmup_cosine

VOCAB = "abcdefg"
METADATA = {
    "step_unit": "char",
    "figures": {"bpc": figure("step", 0.5), "per_seq": figure("sequence", 2.0)},
    "vocab": VOCAB,
}


def small_module(objective=None, **kwargs) -> SequenceModule:
    torch.manual_seed(0)
    model = VRNN(Categorical(len(VOCAB)), h_dim=16, z_dim=4, x_feat_dim=8, z_feat_dim=8, hidden_dim=12)
    return SequenceModule(model, torch.optim.AdamW, data_metadata=METADATA, objective=objective, **kwargs)


def test_warmup_then_cosine_to_the_floor():
    factor = warmup_cosine(warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55)
    assert factor(110) == pytest.approx(0.1) and factor(500) == pytest.approx(0.1)


def test_kl_warmup_ramps_beta_from_zero_to_one():
    assert ELBO(kl_warmup_steps=100).beta(0) == 0.0 and ELBO(kl_warmup_steps=100).beta(50) == 0.5
    assert ELBO().beta(0) == 1.0


def capture_logs(module: SequenceModule, monkeypatch) -> dict:
    logged = {}
    monkeypatch.setattr(module, "log_dict", lambda metrics, **_: logged.update(metrics))
    monkeypatch.setattr(module, "log", lambda name, value, **_: logged.update({name: value}))
    return logged


def test_shared_step_loss_is_recon_plus_beta_kl_and_the_data_figures_follow(monkeypatch):
    module = small_module(ELBO(kl_warmup_steps=4))
    logged = capture_logs(module, monkeypatch)
    monkeypatch.setattr(SequenceModule, "global_step", property(lambda self: 1))
    batch = full_batch(torch.randint(0, len(VOCAB), (3, 9)))
    loss = module.training_step(batch, 0)
    assert torch.allclose(loss, logged["train/recon"] + 0.25 * logged["train/kl"])
    bound = logged["train/recon"] + logged["train/kl"]
    assert torch.allclose(logged["train/bpc"], 0.5 * bound)
    assert torch.allclose(logged["train/loss_per_sequence"], 9 * bound)
    assert torch.allclose(logged["train/per_seq"], 2 * 9 * bound)
    module.validation_step(batch, 0)
    assert torch.allclose(logged["val/loss"], logged["val/recon"] + logged["val/kl"])


def test_logged_figures_count_real_steps_only(monkeypatch):
    """Padding with garbage changes no logged figure: per step is over real steps, per sequence over pieces."""
    module = small_module()
    logged = capture_logs(module, monkeypatch)
    model = module.model
    # z at the posterior means: the two batches' random draws would differ in shape, hence in value
    monkeypatch.setattr(
        model, "forward", lambda x, mask, noise=None: VRNN.forward(model, x, mask, torch.zeros(*x.shape, 4))
    )
    pieces = torch.randint(0, len(VOCAB), (2, 5))
    module.validation_step(full_batch(pieces), 0)
    alone = dict(logged)
    padded = torch.cat([pieces, torch.randint(0, len(VOCAB), (2, 4))], 1)
    mask = torch.cat([torch.ones(2, 5), torch.zeros(2, 4)], 1)
    module.validation_step(type(full_batch(pieces))(padded, mask), 0)
    for name in ("val/recon", "val/kl", "val/loss", "val/loss_per_sequence", "val/bpc"):
        assert torch.allclose(logged[name], alone[name], atol=1e-6), name


def test_sample_text_starts_with_the_prompt_and_is_seeded():
    model, vocab = small_module().model, Vocabulary(VOCAB)
    a = sample_text(model, vocab, "abc", 25, seed=3)
    assert a.startswith("abc") and len(a) == 28 and set(a) <= set(VOCAB)
    assert a == sample_text(model, vocab, "abc", 25, seed=3)


def test_sample_text_names_characters_outside_the_vocabulary():
    with pytest.raises(ValueError, match="'xz' are not in the vocabulary"):
        sample_text(small_module().model, Vocabulary(VOCAB), "axz", 5)


def test_checkpoint_alone_rebuilds_module_model_and_metadata(tmp_path):
    module = small_module(ELBO(free_bits=0.25))
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    loaded = load_module(checkpoint)
    assert loaded.hparams.data_metadata == METADATA and loaded.objective.free_bits == 0.25
    vocab = Vocabulary(VOCAB)
    assert sample_text(loaded.model, vocab, "ab", 30, seed=1) == sample_text(module.model, vocab, "ab", 30, seed=1)


def test_free_bits_floor_each_dimension_of_the_kl_objective():
    out = small_module().model(torch.randint(0, len(VOCAB), (4, 6)))
    per_dim = out.posterior.kl_per_dim(out.prior).flatten(0, 1).mean(0)
    assert torch.allclose(ELBO(free_bits=0.5).kl_term(out), per_dim.clamp_min(0.5).sum())
    assert ELBO(free_bits=0.5).kl_term(out) >= 0.5 * per_dim.numel()
    assert torch.allclose(ELBO().kl_term(out), out.kl.mean())


def test_a_checkpoint_of_the_version_before_objectives_were_components_loads_its_objective():
    module = small_module()
    old = {k: v for k, v in module.hparams.items() if k != "objective"}
    for settings, expected in (
        (dict(objective="elbo", free_bits=0.25, kl_warmup_steps=7, train_samples=1), ELBO(7, 0.25)),
        (dict(objective="iwae", train_samples=16, free_bits=0.0, kl_warmup_steps=0), IWAE(16)),
        (
            dict(objective="fivo", train_samples=4, resample_threshold=0.3, resampling="systematic"),
            FIVO(4, 0.3, "systematic"),
        ),
    ):
        checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": {**old, **settings}}
        module.on_save_checkpoint(checkpoint)
        assert load_module(checkpoint).objective.config == expected.config


def test_iwae_objective_is_the_importance_weighted_bound_and_tighter_than_the_elbo(monkeypatch):
    module = small_module(IWAE(samples=16))
    logged = capture_logs(module, monkeypatch)
    batch = full_batch(torch.randint(0, len(VOCAB), (3, 9)))
    torch.manual_seed(0)
    loss = module.training_step(batch, 0)
    torch.manual_seed(0)
    out = module.model(batch.x.repeat_interleave(16, 0))
    expected = -(torch.logsumexp(out.log_weight().view(3, 16), 1) - math.log(16)).sum() / 27
    assert torch.allclose(loss, expected)
    assert loss <= logged["train/recon"] + logged["train/kl"] + 1e-6  # the K-sample bound is no looser


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: FIVO(resample_threshold=1.5), "objective.resample_threshold must be a number from 0 to 1"),
        (lambda: FIVO(resampling="stratified"), "objective.resampling must be one of multinomial, systematic"),
        (lambda: IWAE(samples=0), "objective.samples must be a whole number >= 1"),
        (lambda: ELBO(free_bits=-1.0), "objective.free_bits must be >= 0"),
        (lambda: ELBO(kl_warmup_steps=-1), "objective.kl_warmup_steps must be a whole number >= 0"),
    ],
)
def test_bad_objective_settings_are_one_line(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_continuing_training_batch_starts_from_the_last_windows_state(monkeypatch):
    module = small_module()
    capture_logs(module, monkeypatch)
    stream = torch.randint(0, len(VOCAB), (3, 16))
    first, second = full_batch(stream[:, :8]), full_batch(stream[:, 8:])._replace(first=False)
    torch.manual_seed(1)
    module.training_step(first, 0)
    carried = module.carried_states["train"]
    assert carried is not None and not carried.requires_grad  # detached: backpropagation stops at the window
    torch.manual_seed(2)
    loss = module.training_step(second, 1)
    torch.manual_seed(2)
    out = module.model(second.x, second.mask, state=carried)
    assert loss.item() == pytest.approx(((out.recon.sum() + out.kl.sum()) / 24).item(), rel=1e-6)
    torch.manual_seed(2)
    fresh = module.model(second.x, second.mask)
    assert loss.item() != pytest.approx(((fresh.recon.sum() + fresh.kl.sum()) / 24).item(), rel=1e-6)


def test_the_iwae_objective_refuses_a_continuing_batch(monkeypatch):
    module = small_module(IWAE(samples=2))
    capture_logs(module, monkeypatch)
    batch = full_batch(torch.randint(0, len(VOCAB), (2, 8)))._replace(first=False)
    with pytest.raises(ConfigError, match="use objective=elbo with data.stateful=true"):
        module.training_step(batch, 0)


def test_validation_streams_carry_their_own_state_apart_from_training(monkeypatch):
    module = small_module()
    capture_logs(module, monkeypatch)
    stream = torch.randint(0, len(VOCAB), (2, 12))
    module.training_step(full_batch(stream[:, 6:]), 0)
    trained_state = module.carried_states["train"]
    module.validation_step(full_batch(stream[:, :6]), 0)
    validation_state = module.carried_states["val"]
    torch.manual_seed(3)
    out = module.validation_step(full_batch(stream[:, 6:])._replace(first=False), 1)
    torch.manual_seed(3)
    expected = module.model(stream[:, 6:], torch.ones(2, 6), state=validation_state)
    assert torch.allclose(out.recon, expected.recon) and torch.allclose(out.kl, expected.kl)
    assert module.carried_states["train"] is trained_state  # validation leaves the training streams alone


@pytest.mark.parametrize("objective, figure", [(IWAE(samples=3), "iw_bound"), (FIVO(samples=3), "fivo_bound")])
def test_validation_logs_the_trained_objective_s_own_bound_beside_the_elbo(objective, figure, monkeypatch):
    module = small_module(objective)
    logged = capture_logs(module, monkeypatch)
    batch = full_batch(torch.randint(0, len(VOCAB), (3, 9)))
    torch.manual_seed(4)
    module.validation_step(batch, 0)
    torch.manual_seed(4)
    module.model(batch.x)  # the ELBO pass's draw, then the objective's own
    expected = -objective.bound(module.model, batch.x, batch.mask).sum() / 27
    assert torch.allclose(logged[f"val/{figure}"], expected)
    assert {"val/loss", "val/recon", "val/kl"} <= set(logged)
    elbo_run = small_module()
    elbo_logged = capture_logs(elbo_run, monkeypatch)
    elbo_run.validation_step(batch, 0)
    assert not any(name.endswith("_bound") for name in elbo_logged)  # the ELBO is val/loss itself


def test_checkpoints_are_chosen_by_the_trained_objective_s_bound():
    from vrnn_lightning.objectives.base import judged_by

    assert judged_by("vrnn_lightning.objectives.ELBO") == "val/loss"
    assert judged_by("vrnn_lightning.objectives.IWAE") == "val/iw_bound"
    assert judged_by("vrnn_lightning.objectives.FIVO") == "val/fivo_bound"
    assert judged_by("my_package.MyObjective") == "val/loss"  # a user's own class that is not an Objective
