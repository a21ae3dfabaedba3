"""Runs that really start together: `python racers.py FOLDER ROUNDS OVERRIDES...` imports torch, Lightning and
Hydra once, then for each round r waits for FOLDER/go-r to appear and runs `python -m vrnn_lightning.train`
with OVERRIDES (each "{round}" replaced by r) in a forked child, writing its exit status, stdout and stderr
to FOLDER/r/<pid>.{status,out,err}. Several racers released by one file start within milliseconds.
"""

import os
import runpy
import sys
import time
from pathlib import Path

import hydra  # noqa: F401  the slow imports, before the barrier
import lightning  # noqa: F401
import torch  # noqa: F401

import vrnn_lightning.training.module  # noqa: F401


def race(folder: Path, rounds: int, overrides: list[str]) -> None:
    for r in range(rounds):
        (folder / f"ready-{r}-{os.getpid()}").touch()
        while not (folder / f"go-{r}").exists():
            time.sleep(0.001)
        out = folder / str(r)
        out.mkdir(exist_ok=True)
        pid = os.fork()
        if pid == 0:
            for fd, suffix in ((1, "out"), (2, "err")):
                os.dup2(os.open(out / f"{os.getpid()}.{suffix}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["vrnn_lightning.train", *(o.replace("{round}", str(r)) for o in overrides)]
            code = 0
            try:
                runpy.run_module("vrnn_lightning.train", run_name="__main__", alter_sys=True)
            except SystemExit as err:
                code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
            import atexit

            atexit._run_exitfuncs()  # release the run's claim, flush logs, as at interpreter exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        (out / f"{pid}.status").write_text(str(os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    race(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
