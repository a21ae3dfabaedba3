"""The end-to-end tests' runner: the real entry points run as a user types them, on tiny configs."""

import hashlib
import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURE = Path(__file__).parents[1] / "data" / "fixtures" / "mnist"
TINY_MODEL = ["model.h_dim=16", "model.z_dim=4", "model.x_feat_dim=8", "model.z_feat_dim=8", "model.hidden_dim=16"]
TINY_TRAINER = [
    "trainer=cpu",
    "trainer.max_steps=6",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "module.warmup_steps=2",
    "data.eval_batch_size=8",
    "data.batch_size=4",
]
TINY = [*TINY_MODEL, *TINY_TRAINER, "data.seq_len=16", "data.batches_per_epoch=3", "callbacks.text_samples.length=40"]
FIXTURE_SUMS = ",".join(f"{p.name}:{hashlib.md5(p.read_bytes()).hexdigest()}" for p in sorted(FIXTURE.glob("*.gz")))
TINY_MNIST = [
    *TINY_MODEL,
    *TINY_TRAINER,
    "trainer.limit_train_batches=3",
    "data=mnist",
    f"data.root={FIXTURE}",
    "data.download=false",
    f"+data.checksums={{{FIXTURE_SUMS}}}",
]


REPO = Path(__file__).resolve().parents[2]


def with_tests_importable() -> dict[str, str]:
    """This environment, with the repository on the path: runs may name test helpers (tests.helpers.*)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


class Zygote:
    """The client of tests/helpers/zygote.py: one process with the slow imports done, forked for every run."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def run(self, main: str, overrides: list[str], cwd: Path, outputs: dict[str, Path], timeout: float) -> int:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("zygote.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=with_tests_importable(),
            )
        request = {"main": main, "overrides": overrides, "cwd": str(cwd), **{k: str(v) for k, v in outputs.items()}}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.process.kill()  # the next run starts a new zygote instead of waiting behind this one
            raise subprocess.TimeoutExpired([main, *overrides], timeout)
        return json.loads(self.process.stdout.readline())


ZYGOTE = Zygote()


def run_main(main: str, *overrides: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m vrnn_lightning.<main> overrides...` in `cwd`, run by a fork of the zygote (the same code
    path, without the five seconds of imports). The child has the environment the zygote started with: a test
    that needs other variables runs its own subprocess."""
    with tempfile.TemporaryDirectory() as folder:
        outputs = {name: Path(folder) / name for name in ("stdout", "stderr")}
        returncode = ZYGOTE.run(main, list(overrides), Path(cwd), outputs, timeout)
        stdout, stderr = (outputs[name].read_text(errors="replace") for name in ("stdout", "stderr"))
    return subprocess.CompletedProcess([main, *overrides], returncode, stdout, stderr)
