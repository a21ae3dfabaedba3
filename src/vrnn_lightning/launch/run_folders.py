"""Run folders: each held by exactly one run, claimed with one atomic file-system operation before Hydra or
Lightning writes anything into it.

A claim is the file `.claim.json` in the folder, made by linking a complete temporary file to that name
(`os.link` fails where the name exists, so two runs cannot both succeed, and no reader ever sees half a
claim). It records who holds the folder (host, process, start time, SLURM job) so a refusal can name it, and
it is removed when its run ends. A claim whose run is gone (its process no longer lives on this host, or it was
an earlier incarnation of this requeued SLURM job) is taken over with an atomic rename.

- Explicit folders (`hydra.run.dir=...`, `hydra.sweep.dir=...`): held by another run, one-line refusal; filled by
  an earlier run, one-line refusal, unless this run resumes that run's checkpoint.
- Default, timestamped folders: the run makes a fresh folder with `mkdir` (atomic too); where the name is taken,
  it takes the next free one (`<name>_1`, `<name>_2`, ...), so runs started in the same second never share.
- A sweep's job folders live inside the sweep's claimed folder, one per job number; processes that Lightning's
  DDP launcher starts for ranks above 0 join rank 0's folder without claiming it.
"""

import atexit
import contextlib
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, read_write

from vrnn_lightning.errors import exit_with

CLAIM = ".claim.json"
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc")  # resolved by Lightning inside the run's own folder


def this_run() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "command": " ".join(sys.argv),
    }


def describe(holder: dict[str, Any]) -> str:
    return f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


def is_gone(holder: dict[str, Any]) -> bool:
    """Whether the run that made a claim has certainly ended: its process is dead on this host, or it was an
    earlier incarnation of this (requeued) SLURM job. A claim from another host is trusted to be alive."""
    own_job = os.environ.get("SLURM_JOB_ID")
    if own_job and holder.get("slurm_job_id") == own_job and holder.get("pid") != os.getpid():
        return True
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, TypeError, ValueError):
        return False
    return False


def read_claim(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def try_claim(folder: Path) -> dict[str, Any] | None:
    """Claim `folder` (which exists) for this process. Returns None on success, else the record of the run that
    holds it. A stale claim is moved aside by one rename, so of two runs taking it over only one can win."""
    claim = folder / CLAIM
    record = this_run()
    temp = folder / f".claim.{secrets.token_hex(6)}.tmp"
    temp.write_text(json.dumps(record, indent=2) + "\n")
    try:
        for _ in range(2):  # once more after moving a stale claim aside
            try:
                os.link(temp, claim)
            except FileExistsError:
                holder = read_claim(claim)
                if not is_gone(holder):
                    return holder or {"pid": "?", "host": "?", "started": "? (unreadable claim)"}
                with contextlib.suppress(FileNotFoundError):  # another run moved it first: race it for the name
                    stale = folder / f".claim.stale.{secrets.token_hex(6)}"
                    os.rename(claim, stale)
                    stale.unlink()
                continue
            atexit.register(release, folder)
            return None
        return read_claim(claim)
    finally:
        temp.unlink(missing_ok=True)


def release(folder: Path) -> None:
    """Remove this process's claim on `folder`, if it still holds it."""
    claim = folder / CLAIM
    holder = read_claim(claim)
    if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        claim.unlink(missing_ok=True)


HYDRAS_OWN = (".hydra", CLAIM)  # what a run folder holds before the run has done anything, with the job's log


def release_untouched_run_folder() -> None:
    """After bad input found inside a run (a data file read at setup, a tracker's store opened, a size known
    only from the data), the run folder it claimed, where it holds nothing but Hydra's files and the log: removed,
    so that the same command works once the input is fixed. A folder holding anything else (a checkpoint, a
    resumed run's history) is left as it is; so is a sweep's."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN or ddp_child():
        return
    folder = Path(HydraConfig.get().runtime.output_dir)
    log_name = f"{HydraConfig.get().job.name}.log"
    if not folder.is_dir():
        return
    found = [p for p in folder.rglob("*") if p.is_file()]
    if any(p.relative_to(folder).parts[0] not in (*HYDRAS_OWN, log_name) for p in found):
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    folder.rmdir()


def make_parent(folder: Path, setting: str) -> None:
    """Create what holds `folder`, so an unwritable place is one line instead of a traceback from Hydra."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(folder.parent, os.W_OK):
            raise PermissionError("not writable")
    except OSError as err:
        exit_with(
            f"cannot use {folder} as the output folder ({getattr(err, 'strerror', None) or err}); "
            f"set {setting} to a writable place"
        )


def fresh_folder(base: Path, setting: str) -> Path:
    """`base`, or the first of `base_1`, `base_2`, ... that does not exist yet, made by this process."""
    make_parent(base, setting)
    for i in range(10_000):
        candidate = base if i == 0 else base.with_name(f"{base.name}_{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            exit_with(f"cannot create {candidate} ({err.strerror}); set {setting} to a writable place")
        return candidate
    exit_with(f"no free folder name next to {base}; set {setting} to a new folder")


def claim_explicit(folder: Path, setting: str, may_reuse: bool, kind: str) -> None:
    """Hold an explicitly named folder, or stop in one line before anything is written into it."""
    make_parent(folder, setting)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as err:
        exit_with(f"cannot use {folder} as the output folder ({err.strerror}); set {setting} to a writable place")
    if not os.access(folder, os.W_OK):
        exit_with(f"cannot use {folder} as the output folder (not writable); set {setting} to a writable place")
    holder = try_claim(folder)
    if holder is not None:
        exit_with(
            f"{kind} folder {folder} is held by another run ({describe(holder)}); choose another {setting}, "
            f"or wait for that run to end (if it has, delete {folder / CLAIM})"
        )
    if not may_reuse and any(p.name != CLAIM for p in folder.iterdir()):
        release(folder)
        resume = " (or resume that run with ckpt_path=last)" if kind == "run" else ""
        exit_with(f"{kind} folder {folder} already holds an earlier {kind}; choose a new {setting}{resume}")


def set_by_user(config: DictConfig, key: str) -> bool:
    return any(o.split("=", 1)[0].lstrip("+~") == key for o in config.hydra.overrides.hydra)


def resumes_own_run(config: DictConfig, run_dir: Path) -> bool:
    """A training run that resumes from a checkpoint of the run in `run_dir` may write into `run_dir`."""
    ckpt_path = config.get("ckpt_path")
    if config.hydra.job.config_name != "train" or ckpt_path is None:
        return False
    return ckpt_path in LIGHTNING_CKPT_NAMES or run_dir.resolve() in Path(ckpt_path).resolve().parents


def ddp_child() -> bool:
    """A process Lightning's DDP launcher started for a rank above 0: it joins rank 0's folder."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


class ClaimRunFolder(Callback):
    """Claims the run's (or sweep's) folder before Hydra writes `.hydra/` and logs into it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if ddp_child():
            return
        run_dir = Path(config.hydra.run.dir)
        if set_by_user(config, "hydra.run.dir"):
            claim_explicit(run_dir, "hydra.run.dir", resumes_own_run(config, run_dir), "run")
            return
        folder = fresh_folder(run_dir, "hydra.run.dir")
        if try_claim(folder) is not None:  # a folder this process just made: nobody else can hold it
            exit_with(f"run folder {folder} was claimed by another run as it was made; run again")
        with read_write(config.hydra.run):
            config.hydra.run.dir = str(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if set_by_user(config, "hydra.sweep.dir"):
            claim_explicit(sweep_dir, "hydra.sweep.dir", False, "sweep")
            return
        folder = fresh_folder(sweep_dir, "hydra.sweep.dir")
        if try_claim(folder) is not None:
            exit_with(f"sweep folder {folder} was claimed by another run as it was made; run again")
        # Every job's config is composed again from the overrides, so the folder chosen here must be one of them.
        with read_write(config.hydra):
            config.hydra.sweep.dir = str(folder)
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir={folder}")
