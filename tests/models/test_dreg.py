"""DReG (objectives/dreg.py): IWAE's bound and IWAE's gradient for every parameter the posterior does not own,
and, for those it owns, a gradient with IWAE's expectation and a lower variance."""

import pytest
import torch

from vrnn_lightning.data.base import Batch
from vrnn_lightning.models import SRNN, VRNN, Bernoulli
from vrnn_lightning.objectives import IWAE
from vrnn_lightning.objectives.dreg import DReG
from vrnn_lightning.training.module import SequenceModule


def tiny(name: str):
    torch.manual_seed(0)
    sizes = dict(h_dim=8, z_dim=2, x_feat_dim=8, hidden_dim=8)
    return VRNN(Bernoulli(6), z_feat_dim=8, **sizes) if name == "vrnn" else SRNN(Bernoulli(6), **sizes)


def gradients(model, objective, batch, seed: int) -> tuple[float, dict[str, torch.Tensor]]:
    module = SequenceModule(model, torch.optim.AdamW, data_metadata={"figures": {}}, objective=objective)
    torch.manual_seed(seed)
    loss = objective.training_terms(module, batch).loss
    model.zero_grad()
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["vrnn", "srnn"])
def test_the_bound_and_the_shared_parameters_gradients_are_iwae_s(name):
    model = tiny(name)
    batch = Batch(torch.randint(0, 2, (3, 6, 6)).float(), torch.ones(3, 6))
    own = {id(p) for p in model.posterior_parameters()}
    assert own, "the model names the parameters only its posterior reads"
    iwae_loss, iwae = gradients(model, IWAE(samples=5), batch, seed=1)
    dreg_loss, dreg = gradients(model, DReG(samples=5), batch, seed=1)
    assert dreg_loss == pytest.approx(iwae_loss, abs=1e-6)  # the same noise, the same IW bound
    for name_, p in model.named_parameters():
        if id(p) not in own:
            assert torch.allclose(dreg[name_], iwae[name_], atol=1e-6), name_
    assert any(not torch.allclose(dreg[n], iwae[n]) for n, p in model.named_parameters() if id(p) in own)


@pytest.mark.slow
def test_the_posterior_s_gradient_keeps_iwae_s_expectation_with_less_variance():
    model = tiny("vrnn")
    batch = Batch(torch.randint(0, 2, (2, 5, 6)).float(), torch.ones(2, 5))
    own = [n for n, p in model.named_parameters() if id(p) in {id(q) for q in model.posterior_parameters()}]
    draws = {}
    for objective in (IWAE(samples=16), DReG(samples=16)):
        grads = [gradients(model, objective, batch, seed)[1] for seed in range(200)]
        draws[type(objective).__name__] = torch.stack([torch.cat([g[n].flatten() for n in own]) for g in grads])
    iwae, dreg = draws["IWAE"], draws["DReG"]
    assert dreg.var(0).sum() < 0.5 * iwae.var(0).sum()  # the point of it
    standard_error = ((iwae.var(0) + dreg.var(0)) / 200).sqrt()
    assert ((dreg.mean(0) - iwae.mean(0)).abs() < 5 * standard_error + 1e-7).all()  # the same expectation


@pytest.mark.slow
def test_a_run_trains_by_dreg_and_is_judged_by_the_iw_bound(tmp_path):
    import json

    from tests.helpers.runs import TINY, run_main

    run = tmp_path / "run"
    result = run_main("train", *TINY, "objective=dreg", "objective.samples=3", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((run / "metrics.json").read_text())
    assert {"val/iw_bound", "test/iw_bound", "best_val_iw_bound"} <= set(figures)
