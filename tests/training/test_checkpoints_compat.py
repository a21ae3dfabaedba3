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


def test_weights_saved_under_the_parts_earlier_names_load_under_their_roles():
    """Every model names its parts prior, posterior, emission, deterministic, summary; a checkpoint of the version
    before (encoder, decoder, recurrence, future, transition, combiner, inference, recognition, generating, rnn)
    loads into the same weights."""
    import torch

    from vrnn_lightning.models import DMM, RNN, SRNN, STORN, VRNN, Bernoulli
    from vrnn_lightning.training.module import SequenceModule

    sizes = dict(h_dim=4, x_feat_dim=4, hidden_dim=4)
    for model in (
        VRNN(Bernoulli(3), z_dim=2, z_feat_dim=4, posterior="smoothing", **sizes),
        SRNN(Bernoulli(3), z_dim=2, posterior="smoothing", **sizes),
        DMM(Bernoulli(3), z_dim=2, **sizes),
        STORN(Bernoulli(3), z_dim=2, z_feat_dim=4, **sizes),
        RNN(Bernoulli(3), **sizes),
    ):
        module = SequenceModule(model, torch.optim.AdamW, data_metadata={})
        current = module.state_dict()
        new_names = {new: old for old, new in type(model).renamed.items()}
        old = {}
        for key, value in current.items():
            part = next((n for n in new_names if key.startswith("model." + n)), None)
            old[key if part is None else "model." + new_names[part] + key[len("model." + part) :]] = value
        assert old.keys() != current.keys()  # some parts had other names
        fresh = SequenceModule(build(model.config), torch.optim.AdamW, data_metadata={})
        fresh.load_state_dict(old)
        assert all(torch.equal(fresh.state_dict()[k], v) for k, v in current.items())
