"""Starting a parallel command over its task's slots: the launcher line and a clean environment.

A worker rank that leads a parallel task runs ``launcher + command``: the launcher template
(``mpiexec -n {ranks}``, ``srun --exact -N {nodes} -n {ranks} --nodelist {hosts}``...) is
filled from where the task was placed. The program's MPI must start as a job of its own,
not as part of the worker's: the variables by which the outer launcher tells a rank who
it is (PMI, PMIx, Hydra, PALS, Open MPI, a Slurm step's task ids) are left out of its
environment, or the nested launcher would join, or refuse, the outer job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..types import Group, Shape

_OUTER_JOB_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "HYDI_", "PALS_", "OMPI_COMM_WORLD_", "MPI_LOCAL")
_OUTER_JOB_NAMES = frozenset({
    "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_TASK_PID", "SLURM_STEP_ID", "SLURM_STEPID",
    "SLURM_STEP_NODELIST", "SLURM_STEP_NUM_NODES", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_TASKS_PER_NODE",
    "SLURM_STEP_LAUNCHER_PORT", "SLURM_SRUN_COMM_HOST", "SLURM_SRUN_COMM_PORT", "SLURM_LAUNCH_NODE_IPADDR",
})


def outside_the_job(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without what makes a process a rank of the worker's own MPI job."""
    return {name: value for name, value in env.items()
            if not name.startswith(_OUTER_JOB_PREFIXES) and name not in _OUTER_JOB_NAMES}


def launch_places(shape: Shape, group: Group, folder: Path) -> dict[str, str]:
    """The values of ``{ranks}``, ``{nodes}``, ``{hosts}`` (the task's nodes, comma-separated,
    each once), ``{ranks_per_node}`` (the most ranks it has on one node, for launchers that
    want ``--ppn``) and ``{hostfile}`` (a file in the task folder with one line per rank:
    the node it should run on) for a task placed on ``group``."""
    hosts = group.hosts[:shape.ranks]
    unique = list(dict.fromkeys(hosts))
    hostfile = folder / "hostfile"
    hostfile.write_text("".join(f"{host}\n" for host in hosts))
    return {"ranks": str(shape.ranks), "nodes": str(len(unique)), "hosts": ",".join(unique),
            "ranks_per_node": str(max(hosts.count(host) for host in unique)), "hostfile": str(hostfile)}


def launcher_for(launcher: tuple[str, ...] | None, nodes: str, shape: Shape) -> tuple[str, ...]:
    """The launcher line put before a parallel task's command: the study's or the site's
    (``[model] launcher``, ``task_launcher``), else the bundled ``mpiexec -n {ranks}``, given
    ``-f {hostfile}`` when the task spans several nodes. A task of several ranks with GPUs
    has each rank take its own share of them first (:mod:`mexplore.rank_gpus`), unless the
    launcher is empty (the command starts its ranks itself)."""
    if launcher is None:
        launcher = ("{mpiexec}", "-n", "{ranks}") if nodes == "1" else ("{mpiexec}", "-f", "{hostfile}", "-n", "{ranks}")
    if launcher and shape.gpus > 0 and shape.ranks > 1:
        return (*launcher, "{python}", "-m", "mexplore.rank_gpus")
    return launcher
