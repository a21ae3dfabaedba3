"""A single-node SLURM on localhost for tests: munged, slurmctld and slurmd with a config in a temporary folder.

Needs Debian's slurm-wlm and munge (`.ci/run` installs them where apt-get can run as root). Everything it
starts listens on free ports and is stopped on exit; clients find it through SLURM_CONF.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DAEMONS = ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")


def why_unavailable() -> str | None:
    """None where a local SLURM can be started here, else the reason."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def munge_works() -> bool:
    token = subprocess.run(["munge", "-n"], capture_output=True)
    return (
        token.returncode == 0 and subprocess.run(["unmunge"], input=token.stdout, capture_output=True).returncode == 0
    )


def write_config(folder: Path) -> Path:
    node = socket.gethostname().split(".")[0]
    memory_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 * 3 // 4
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    config = folder / "slurm.conf"
    config.write_text(f"""ClusterName=localtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    return config


@contextmanager
def local_slurm(folder: Path, timeout: float = 60) -> Iterator[dict[str, str]]:
    """Start the cluster; yields the environment (SLURM_CONF set) for commands that use it."""
    if not munge_works():
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        subprocess.run(["munged", "--force"], check=True, capture_output=True)
    config = write_config(folder)
    env = {**os.environ, "SLURM_CONF": str(config)}
    subprocess.run(["slurmctld", "-f", str(config)], env=env, check=True, capture_output=True)
    subprocess.run(["slurmd", "-f", str(config)], env=env, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + timeout
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout:
            if time.monotonic() > deadline:
                logs = "".join(p.read_text()[-2000:] for p in folder.glob("*.log"))
                raise RuntimeError(f"the local SLURM node did not come up:\n{logs}")
            time.sleep(0.5)
        yield env
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        for pid_file in ("slurmd.pid", "slurmctld.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((folder / pid_file).read_text()), 15)
