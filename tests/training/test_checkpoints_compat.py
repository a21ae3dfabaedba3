"""Checkpoints written before an option existed load with the behaviour they were trained with."""

from vrnn_lightning.models import build
from vrnn_lightning.training.checkpoints import with_bounded_gaussian


def test_a_gaussian_head_saved_before_bounded_existed_loads_bounded():
    config = {"_target_": "vrnn_lightning.models.RNN", "h_dim": 4, "x_feat_dim": 4, "hidden_dim": 4, "mlp_layers": 1}
    old = {**config, "likelihood": {"_target_": "vrnn_lightning.models.likelihoods.Gaussian", "x_dim": 3, "std": None}}
    assert build(with_bounded_gaussian(old)).likelihood.bounded is True
    new = {**old, "likelihood": {**old["likelihood"], "bounded": False}}
    assert build(with_bounded_gaussian(new)).likelihood.bounded is False
