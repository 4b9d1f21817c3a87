"""Each rank of a parallel program takes its own share of the task's GPUs, then becomes the program.

A command with ``ranks = R`` and ``gpus = G`` is started once, through the launcher, with
the visible-device variables listing all G GPUs: a program that picks its device from its
local rank (most MPI codes, Horovod, ``torch.distributed``) is right as it is, but one
that takes "the first visible GPU" would put every rank on the same one. So mexplore puts
``{python} -m mexplore.rank_gpus`` between the launcher and the command: each rank
narrows ``CUDA_VISIBLE_DEVICES``, ``ROCR_VISIBLE_DEVICES`` and ``ZE_AFFINITY_MASK`` to its
share (G / R GPUs when there are enough, else one GPU, shared round-robin) and replaces
itself with the program (``exec``: no extra process, signals and exit status are the
program's). The local rank and size come from whichever launcher started it (Hydra, PALS,
Slurm, Open MPI).

Standard library only, and not under ``mexplore.models``: it starts once per rank of
every such task, so it must not import the package's rooms.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

LOCAL_RANK_VARIABLES = (
    "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "PALS_LOCAL_RANKID",
    "PMI_LOCAL_RANK", "MPI_LOCAL_RANK",
)
"""Where launchers say which rank on its node a process is (Hydra, Open MPI, Slurm, PALS...)."""
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PALS_LOCAL_SIZE", "PMI_LOCAL_SIZE")
"""Where they say how many ranks share the node."""
VISIBLE_DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK")
"""What pins CUDA, ROCm and Level Zero programs to devices."""


def _first_number(environ: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def share_of_rank(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The visible-device variables narrowed to this rank's share, for those that are set.
    With ``L`` ranks on the node and ``G`` devices listed, local rank ``k`` gets devices
    ``k*G//L ... (k+1)*G//L - 1`` when ``G >= L``, else device ``k mod G``."""
    local = _first_number(environ, LOCAL_RANK_VARIABLES) or 0
    size = _first_number(environ, LOCAL_SIZE_VARIABLES)
    narrowed = {}
    for name in VISIBLE_DEVICE_VARIABLES:
        devices = [device for device in environ.get(name, "").split(",") if device]
        if not devices:
            continue
        if size and len(devices) >= size:
            per = len(devices) // size
            narrowed[name] = ",".join(devices[local * per:(local + 1) * per])
        else:
            narrowed[name] = devices[local % len(devices)]
    return narrowed


def main(argv: list[str]) -> None:
    """``python -m mexplore.rank_gpus PROGRAM ARGS...``: narrow, then exec the program."""
    if not argv:
        sys.exit("usage: python -m mexplore.rank_gpus PROGRAM [ARGS...]")
    os.environ.update(share_of_rank())
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        sys.exit(f"mexplore.rank_gpus: cannot start {argv[0]!r}: {error.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
