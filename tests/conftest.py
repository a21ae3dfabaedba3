"""Session fixtures of the end-to-end tests; the runner and tiny configs live in tests/helpers/."""

import subprocess
from pathlib import Path

import pytest

from tests.helpers.runs import TINY, TINY_MNIST, run_main


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """A few steps of text training; (the finished process, its run folder)."""
    root = tmp_path_factory.mktemp("train")
    return run_main("train", *TINY, f"hydra.run.dir={root / 'run'}", cwd=root), root / "run"


@pytest.fixture(scope="session")
def tiny_mnist_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """A few steps of image training on the shipped t10k fixture."""
    root = tmp_path_factory.mktemp("train_mnist")
    return run_main("train", *TINY_MNIST, f"hydra.run.dir={root / 'run'}", cwd=root), root / "run"
