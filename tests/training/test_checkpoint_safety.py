"""A checkpoint file never runs code: pickled payloads and `_target_` payloads at every level the loader builds
are refused in one ConfigError, their side effect absent; an honest checkpoint still loads."""

import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vrnn_lightning.convert_checkpoint import convert
from vrnn_lightning.errors import ConfigError
from vrnn_lightning.models import VRNN, Categorical
from vrnn_lightning.training.checkpoint_io import AtomicCheckpointIO
from vrnn_lightning.training.checkpoints import datamodule_from_checkpoint, load_module, read_checkpoint


class WritesAFile:
    """Unpickling this runs `touch <marker>`: the crafted object of the first report."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def honest_checkpoint() -> dict[str, Any]:
    """What `vrnn_lightning.train` stores for a text run, made here without training."""
    model = VRNN(Categorical(x_dim=5), h_dim=8, z_dim=2, x_feat_dim=4, z_feat_dim=4, hidden_dim=8)
    return {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "model_config": model.config,
        "hyper_parameters": {"data_metadata": {"step_unit": "char", "figures": {}, "vocab": "abcde"}},
        "datamodule_class": "vrnn_lightning.data.text.CharDataModule",
        "datamodule_hyper_parameters": {"seq_len": 16, "batch_size": 4},
    }


def saved(checkpoint: dict[str, Any], path: Path) -> Path:
    torch.save(checkpoint, path)
    return path


def test_an_honest_checkpoint_loads_with_weights_only(tmp_path):
    module = load_module(read_checkpoint(str(saved(honest_checkpoint(), tmp_path / "ok.ckpt"))))
    assert module.model.latent_dim == 2 and module.model.likelihood.x_dim == 5


def test_a_pickled_payload_is_refused_unread(tmp_path):
    marker = tmp_path / "ran"
    path = saved({**honest_checkpoint(), "extra": WritesAFile(marker)}, tmp_path / "payload.ckpt")
    torch.load(path, weights_only=False)  # the payload is real: the old loader ran it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ConfigError, match=r"holds a pickled posix\.system.*convert_checkpoint"):
        read_checkpoint(str(path))
    with pytest.raises(ConfigError, match="pickled posix.system"):
        AtomicCheckpointIO().load_checkpoint(path)  # Lightning's resume reads through this
    assert not marker.exists()


PAYLOAD = "subprocess.getoutput"


@pytest.mark.parametrize(
    "level, key",
    [
        ("model", "model_config._target_"),
        ("likelihood", "model_config.likelihood._target_"),
        ("data module", "datamodule_class"),
        ("a class outside the contract", "model_config._target_"),
        ("an unimported module", "model_config.likelihood._target_"),
    ],
)
def test_a_target_payload_at_every_level_is_refused_before_anything_is_called(level, key, tmp_path):
    marker = tmp_path / "ran"
    checkpoint = honest_checkpoint()
    if level == "model":
        checkpoint["model_config"] = {"_target_": PAYLOAD, "cmd": f"touch {marker}"}
    elif level == "likelihood":
        checkpoint["model_config"]["likelihood"] = {"_target_": PAYLOAD, "cmd": f"touch {marker}"}
    elif level == "data module":
        checkpoint["datamodule_class"] = PAYLOAD
        checkpoint["datamodule_hyper_parameters"] = {"cmd": f"touch {marker}"}
    elif level == "a class outside the contract":
        checkpoint["model_config"]["_target_"] = "pathlib.Path"  # a class, importable, but not a SequenceModel
    else:
        checkpoint["model_config"]["likelihood"]["_target_"] = "antigravity.Likelihood"  # importing it acts
    path = saved(checkpoint, tmp_path / "payload.ckpt")
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}=.*not a .*vrnn_lightning.*not loaded"):
        read_checkpoint(str(path))
    build = datamodule_from_checkpoint if level == "data module" else load_module
    with pytest.raises(ConfigError, match="not loaded"):
        build(checkpoint)  # a dict that did not pass through read_checkpoint
    assert not marker.exists()
    assert "antigravity" not in sys.modules


def test_unknown_module_settings_are_refused(tmp_path):
    checkpoint = {**honest_checkpoint(), "hyper_parameters": {"data_metadata": {}, "cmd": "touch x"}}
    with pytest.raises(ConfigError, match=r"hyper_parameters\.cmd is not a setting"):
        read_checkpoint(str(saved(checkpoint, tmp_path / "c.ckpt")))


def test_the_converter_makes_a_trusted_file_plain(tmp_path):
    old = honest_checkpoint()
    old["hyper_parameters"]["data_metadata"]["scale"] = np.float64(2.5)  # types an older program might pickle
    old["datamodule_hyper_parameters"]["root"] = Path("/data")
    old["extra"] = np.arange(3)
    source = saved(old, tmp_path / "old.ckpt")
    with pytest.raises(ConfigError, match=r"pickled numpy.*convert_checkpoint"):
        read_checkpoint(str(source))
    convert(source, tmp_path / "new.ckpt")
    new = read_checkpoint(str(tmp_path / "new.ckpt"))
    assert new["hyper_parameters"]["data_metadata"]["scale"] == 2.5
    assert new["datamodule_hyper_parameters"]["root"] == "/data" and torch.equal(new["extra"], torch.arange(3))
    with pytest.raises(ConfigError, match="exists"):
        convert(source, tmp_path / "new.ckpt")  # never over a file


def test_the_converter_still_refuses_a_foreign_class(tmp_path):
    checkpoint = honest_checkpoint()
    checkpoint["model_config"]["_target_"] = PAYLOAD
    with pytest.raises(ConfigError, match="not loaded"):
        convert(saved(checkpoint, tmp_path / "old.ckpt"), tmp_path / "new.ckpt")
    assert not (tmp_path / "new.ckpt").exists()
