"""Checkpoints written before an option existed load with the behaviour they were trained with."""

from vrnn_lightning.models import build
from vrnn_lightning.training.checkpoints import with_bounded_gaussian


def test_a_gaussian_head_saved_before_bounded_existed_loads_bounded():
    config = {"_target_": "vrnn_lightning.models.RNN", "h_dim": 4, "x_feat_dim": 4, "hidden_dim": 4, "mlp_layers": 1}
    old = {**config, "likelihood": {"_target_": "vrnn_lightning.models.likelihoods.Gaussian", "x_dim": 3, "std": None}}
    assert build(with_bounded_gaussian(old)).likelihood.bounded is True
    new = {**old, "likelihood": {**old["likelihood"], "bounded": False}}
    assert build(with_bounded_gaussian(new)).likelihood.bounded is False


def test_a_dmm_saved_before_initial_prior_existed_loads_with_the_learned_start():
    config = {"_target_": "vrnn_lightning.models.dmm.DMM", "h_dim": 4, "z_dim": 2, "x_feat_dim": 4, "hidden_dim": 4}
    old = {**config, "likelihood": {"_target_": "vrnn_lightning.models.likelihoods.Bernoulli", "x_dim": 3}}
    assert build(with_bounded_gaussian(old)).config["initial_prior"] == "transition"
    assert build(with_bounded_gaussian({**old, "initial_prior": "standard"})).config["initial_prior"] == "standard"
