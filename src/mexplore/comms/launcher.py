"""Starting local MPI ranks, and telling whether we already run under a launcher."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

# Set by MPICH/Hydra and Intel MPI (PMI_*), Open MPI, PMIx launchers (srun --mpi=pmix, prte),
# Cray PALS (Polaris, Aurora) and Cray ALPS.
_LAUNCHER_VARIABLES = (
    "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PALS_RANKID", "ALPS_APP_PE",
)
_PR_SET_PDEATHSIG = 1


def under_mpi_launcher() -> bool:
    """True when this process is one rank of a job started by mpiexec, srun, aprun..."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def find_mpiexec() -> str:
    """The ``mpiexec`` installed beside this Python (the ``mpich`` wheel's), else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(
            "no mpiexec found: install the mpich wheel (pip install mpich) or load your site's MPI"
        )
    return found


def on_parent_death(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when the thread that
    starts it dies (Linux only; None elsewhere). The C function is looked up here, before
    the fork: loading a library in the child of a threaded process can hang."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def mpiexec_options(mpiexec: str) -> list[str]:
    """What ``mexplore run -n N`` adds for its own ranks on this machine. MPICH's Hydra
    needs nothing. Open MPI's mpiexec refuses more ranks than cores (``--oversubscribe``
    lets a laptop or CI run 4 ranks on 2 cores, which idle ranks that do not spin allow)
    and refuses to start as root, as in containers and CI, without ``--allow-run-as-root``."""
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    if "Open MPI" not in version and "OpenRTE" not in version:
        return []
    return ["--oversubscribe", *(["--allow-run-as-root"] if os.geteuid() == 0 else [])]


def die_with_launcher() -> None:
    """Have the kernel kill this rank when the process that started it (mpiexec's proxy,
    slurmstepd...) dies. A launcher killed with ``kill -9`` cannot pass anything on, and a
    worker busy in a long model would otherwise live on, orphaned, never noticing the job
    is gone; killed, its reaper then kills its command models too. Linux only."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
