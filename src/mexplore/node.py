"""Which node a rank runs on, and where that node's local storage is.

Both can be set from the environment, per rank: ``MEXPLORE_NODE_NAME`` names the node (so
tests, or a launcher's MPMD groups, can make one machine look like several nodes) and
``MEXPLORE_LOCAL_DIR`` is the node-local directory (``/local/scratch``, ``$TMPDIR``,
``/dev/shm``...). Each rank reads them itself: on a cluster they differ from node to node.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path


def node_name() -> str:
    """This rank's node: ``$MEXPLORE_NODE_NAME``, else the host name."""
    return os.environ.get("MEXPLORE_NODE_NAME") or socket.gethostname()


def local_root() -> Path:
    """This node's local storage: ``$MEXPLORE_LOCAL_DIR``, else the temporary directory."""
    return Path(os.environ.get("MEXPLORE_LOCAL_DIR") or tempfile.gettempdir())


_MPI_ENVIRONMENT = ("PMI_", "PMIX_", "OMPI_", "HYDRA_", "HYDI_", "MPI_LOCALRANK", "MPI_LOCALNRANKS")
"""What mpiexec puts in a rank's environment."""


def die_with_parent() -> None:
    """In a helper process: ask Linux to kill it if the rank that started it dies (``kill -9``
    included), so no helper outlives its run even while it computes; elsewhere, its closed
    input or output ends it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def helper_environment() -> dict[str, str]:
    """The environment for a helper process a rank starts on its node (a proposer, a reader
    of part of the journal): this rank's, without what mpiexec put there, so that an MPI
    library the helper might load never takes it for a rank."""
    return {key: value for key, value in os.environ.items() if not key.startswith(_MPI_ENVIRONMENT)}
