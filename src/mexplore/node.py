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
