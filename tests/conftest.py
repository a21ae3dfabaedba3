"""Session fixtures of the end-to-end tests; the runner and tiny configs live in tests/helpers/."""

import os
import subprocess
from pathlib import Path

# One thread per process, set before torch loads here and inherited by every run a test starts: the tests' models
# are tiny, where one thread is as fast as two, and the runs a test starts side by side (DDP ranks, sweep jobs,
# racing runs) would otherwise put two spinning threads each on two cores and slow every step many times over
os.environ.setdefault("OMP_NUM_THREADS", "1")

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
