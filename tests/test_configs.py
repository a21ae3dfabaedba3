"""Every file in conf/ composes, and the composed objects build."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vrnn_lightning.errors import ConfigError
from vrnn_lightning.launch.config_checks import check_config

CONF = Path(__file__).resolve().parents[1] / "src" / "vrnn_lightning" / "conf"
GROUPS = [
    "model",
    "model/likelihood",
    "data",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "hydra",
    "experiment",
    "debug",
]


def group_options() -> list[tuple[str, str]]:
    return [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_every_group_has_options():
    assert {g for g, _ in group_options()} == set(GROUPS)


@pytest.mark.parametrize("group, option", group_options())
def test_every_option_composes(group, option):
    cfg = compose_train([f"{group}={option}"])
    assert cfg.model._target_ and cfg.trainer._target_


def test_default_config_builds_data_network_and_module():
    cfg = compose_train([])
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, likelihood={"x_dim": datamodule.x_dim})
    module = instantiate(cfg.module, model=model, data_metadata=datamodule.metadata)
    assert module.model is model and model.config["likelihood"]["x_dim"] == 65
    assert module.configure_optimizers  # built without error


def test_reference_experiment_pins_the_reported_setup():
    cfg = compose_train(["experiment=shakespeare_vrnn"])
    assert (cfg.model.h_dim, cfg.model.z_dim, cfg.data.seq_len, cfg.data.batch_size) == (256, 32, 128, 32)
    assert cfg.task_name == "shakespeare_vrnn"


def test_sample_config_composes_and_requires_a_checkpoint():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("sample", overrides=["ckpt_path=x.ckpt", "prompt=ROMEO:"])
    assert cfg.ckpt_path == "x.ckpt" and cfg.prompt == "ROMEO:" and cfg.length > 0


def test_latent_remedies_sweep_builds_on_the_reference_run():
    cfg = compose_train(["experiment=latent_remedies"])
    assert cfg.model.z_dim == 32 and cfg.task_name == "latent_remedies"
    assert set(cfg.hydra.sweeper.params) == {"objective.free_bits", "objective.kl_warmup_steps"}


def test_the_svg_experiment_pins_svgs_protocol():
    cfg = compose_train(["experiment=moving_mnist_svg"])
    data = cfg.data
    assert (data.frame_size, data.digit_size, data.digits, data.binarize) == (64, 28, 2, False)
    assert (data.seq_len, data.seen, data.predicted) == (15, 5, 20)  # 5 + 10 in training, 5 + 20 at test
    assert cfg.model.likelihood.skips and cfg.model.likelihood.seen == 5
    assert cfg.model.likelihood.pixels == "gaussian"
    check_config(cfg, "train")


@pytest.mark.slow
def test_the_overrides_the_readme_shows_compose():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = [
        line.split("#")[0].split() for line in readme.splitlines() if line.startswith("python -m vrnn_lightning.train")
    ]
    assert len(commands) >= 8
    for words in commands:
        overrides = [
            w for w in words[3:] if "=" in w and "<" not in w and not w.startswith("data.path")
        ]  # no placeholders
        if "-m" in words:  # a sweep: compose its first job
            overrides = [w.split(",")[0] for w in overrides]
        cfg = compose_train(overrides)
        assert cfg.module._target_.endswith("SequenceModule"), words


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.limit_val_batches=0"],
        ["trainer.limit_train_batches=0.5"],
        ["trainer.max_steps=-1"],
        ["data=polyphonic", "data.max_len=2"],
        ["objective=iwae", "objective.samples=3"],
    ],
)
def test_values_a_run_can_use_pass_the_up_front_checks(overrides):
    check_config(compose_train(overrides), "train")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["module.optimizer.lr=0"], "module.optimizer.lr=0 is not valid: it must be a number > 0"),
        (["trainer.limit_val_batches=1.5"], "trainer.limit_val_batches=1.5"),
        (["data=polyphonic", "data.max_len=1"], "data.max_len=1"),
        (["objective=iwae", "objective.samples=0"], "objective.samples must be a whole number >= 1, got 0"),
        (["+module.train_samples=4"], "module.train_samples has moved"),
        (["model.posterior=future"], "model.posterior must be 'filtering' or 'smoothing', got 'future'"),
        (["model=srnn", "model.resq=1"], "model.resq must be true or false, got 1"),
        (["model=storn", "model.posterior=smoothing"], "model.posterior must be 'filtering', got 'smoothing'"),
        (["model=dmm", "model.z_dim=0"], "model.z_dim must be a whole number >= 1, got 0"),
        (["model=dmm", "+model.z_feat_dim=8"], "model.z_feat_dim is not a setting of DMM; its settings are h_dim"),
        (["model=vrnn", "model.future_prediction=true"], "model.future_prediction=true predicts"),
        (["model/likelihood=gaussian", "model.likelihood.min_std=0"], "model.likelihood.min_std must be > 0"),
    ],
)
def test_values_a_run_cannot_use_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_train(overrides), "train")


@pytest.mark.parametrize(
    "search, experiment",
    [("shakespeare_optuna", "shakespeare_vrnn"), ("polyphonic_optuna", "polyphonic_vrnn_made")],
)
def test_every_searched_setting_is_a_key_of_the_experiment_it_searches(search, experiment):
    cfg = compose_train([f"experiment={experiment}", f"hparams_search={search}"])
    for key in cfg.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, key  # a misspelt key would be searched in vain
    assert cfg.optimized_metric.startswith("best_val")
