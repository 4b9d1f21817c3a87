"""Which GPU a worker uses: one per worker, from the node's GPU count and the local rank.

``MEXPLORE_GPUS_PER_NODE`` (set by the site's batch script, or by hand) says how many GPUs
a node has; the launcher says which rank on the node this is. Worker ``k`` on a node gets
GPU ``k mod gpus``; on the master's node the master takes local rank 0, so its workers
start at GPU 1 and wrap around to 0, still one GPU each.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..rank_gpus import LOCAL_RANK_VARIABLES, VISIBLE_DEVICE_VARIABLES

GPUS_PER_NODE = "MEXPLORE_GPUS_PER_NODE"


def gpus_per_node(environ: Mapping[str, str] = os.environ) -> int:
    """The GPU count of a node, 0 when none is set."""
    return int(environ.get(GPUS_PER_NODE, "0") or 0)


def assigned_gpu(environ: Mapping[str, str] = os.environ) -> str | None:
    """This worker's GPU index as a string, or None when no GPU count is set."""
    gpus = gpus_per_node(environ)
    if gpus <= 0:
        return None
    local = next((environ[name] for name in LOCAL_RANK_VARIABLES if name in environ), "0")
    return str(int(local) % gpus)


def visible_devices(gpu: str | None) -> dict[str, str]:
    """The variables that pin CUDA, ROCm and Level Zero programs to ``gpu``."""
    return {} if gpu is None else dict.fromkeys(VISIBLE_DEVICE_VARIABLES, gpu)
