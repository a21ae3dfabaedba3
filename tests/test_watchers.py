"""A run does not depend on what watches it: one seed gives the same figures, to the last digit on the CPU, under
every logger and with every drawing callback on or off (the callbacks draw from a stream of their own)."""

import json

import pytest
import torch

from tests.helpers.runs import TINY, TINY_MNIST, run_main
from vrnn_lightning.training.callbacks.draws import own_random_stream

FIGURES = ("train/", "val/", "test/", "best_val")


def final_figures(tmp_path, name: str, *overrides: str) -> dict[str, float]:
    run = tmp_path / name
    result = run_main("train", *overrides, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k.startswith(FIGURES)}


@pytest.mark.slow
def test_text_runs_are_identical_under_every_logger_and_with_samples_on_or_off(tmp_path):
    watched = {
        "tensorboard": ["logger=tensorboard"],
        "csv": ["logger=csv"],
        "none": ["~logger"],
        "many": ["logger=many"],
        "no_samples": ["logger=tensorboard", "callbacks.text_samples=null"],
    }
    runs = {name: final_figures(tmp_path, name, *TINY, *extra) for name, extra in watched.items()}
    reference = runs["tensorboard"]
    assert any(k.startswith("train/") for k in reference) and any(k.startswith("test/") for k in reference)
    for name, figures in runs.items():
        assert figures == reference, name  # exactly: not a digit may move


@pytest.mark.slow
def test_image_runs_are_identical_with_the_picture_grids_on_or_off(tmp_path):
    on = final_figures(tmp_path, "on", *TINY_MNIST, "logger=tensorboard")
    off = final_figures(tmp_path, "off", *TINY_MNIST, "logger=tensorboard", "callbacks.image_grids=null")
    csv_only = final_figures(tmp_path, "csv", *TINY_MNIST, "logger=csv")
    assert any(k.startswith("val/") for k in on)
    assert on == off == csv_only


def test_a_drawing_leaves_the_run_s_random_stream_as_it_found_it():
    module = torch.nn.Linear(2, 2)
    module.device = torch.device("cpu")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with own_random_stream(module, seed=1):
        first = torch.rand(4)
    assert torch.equal(torch.rand(3), expected)
    with own_random_stream(module, seed=1):
        assert torch.equal(torch.rand(4), first)  # the same step draws the same picture
