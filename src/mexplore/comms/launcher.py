"""Starting local MPI ranks, and telling whether we already run under a launcher."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

# Set by MPICH/Hydra and Intel MPI (PMI_*), Open MPI, PMIx launchers (srun --mpi=pmix, prte),
# Cray PALS (Polaris, Aurora) and Cray ALPS.
_LAUNCHER_VARIABLES = (
    "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PALS_RANKID", "ALPS_APP_PE",
)


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
