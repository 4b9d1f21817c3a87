"""An MPI simulation: the 1-D heat equation u_t = alpha u_xx on [0, 1], u = 0 at both ends,
u(x, 0) = sin(pi x), by explicit finite differences, the grid split among the ranks.

Each rank owns a contiguous block of points and trades one ghost point with each
neighbour per step (``Sendrecv``). Every point is updated with the same arithmetic as in
a serial run, so the final field, gathered on rank 0, is bit for bit the serial one
whatever the number of ranks: ``checksum`` (the sum of the field, in grid order) proves the
decomposition right. ``max_error`` is the distance to the exact solution
exp(-pi^2 alpha t) sin(pi x); an unstable time step (alpha dt / dx^2 > 1/2) blows up and
is reported as nan, a failed task.

Two ways to run it, both used by ``studies/heat-mpi.toml``:

- as a program under a launcher, ``mpiexec -n 4 python heat_mpi.py ALPHA NX DT T_END``
  (what a command model with ``ranks`` does), printing ``MEXPLORE_RESULT {...}``;
- as a Python model, ``heat_mpi.py:model``, on the task's ranks with ``ctx.comm``.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np


def solve(comm, alpha: float, nx: int, dt: float, t_end: float) -> dict | None:
    """Run the simulation on ``comm``'s ranks; rank 0 returns the result, the others None."""
    rank, size = comm.Get_rank(), comm.Get_size()
    if nx < max(3, size):
        raise ValueError(f"nx = {nx}: expected at least 3 points and one per rank ({size} ranks)")
    dx = 1.0 / (nx - 1)
    r = alpha * dt / (dx * dx)
    first, last = rank * nx // size, (rank + 1) * nx // size  # this rank's points [first, last)
    x = np.arange(first - 1, last + 1) * dx  # with one ghost point on each side
    u = np.sin(math.pi * x)
    _hold_boundaries(u, first == 0, last == nx)
    left = rank - 1 if rank > 0 else None
    right = rank + 1 if rank < size - 1 else None
    steps = round(t_end / dt)
    for _ in range(steps):
        _trade_ghosts(comm, u, left, right)
        inner = u[1:-1] + r * (u[:-2] - 2 * u[1:-1] + u[2:])
        u[1:-1] = inner
        _hold_boundaries(u, first == 0, last == nx)
    field = comm.gather(u[1:-1], root=0)
    if rank != 0:
        return None
    u_all = np.concatenate(field)
    exact = math.exp(-math.pi**2 * alpha * steps * dt) * np.sin(math.pi * np.arange(nx) * dx)
    error = float(np.max(np.abs(u_all - exact))) if np.all(np.isfinite(u_all)) else float("nan")
    return {"max_error": error, "checksum": float(np.sum(u_all)), "ranks": size, "steps": steps, "r": r}


def _hold_boundaries(u: np.ndarray, at_zero: bool, at_one: bool) -> None:
    """u = 0 at x = 0 and x = 1 (sin(pi) is not exactly 0 in floating point)."""
    if at_zero:
        u[1] = 0.0
    if at_one:
        u[-2] = 0.0


def _trade_ghosts(comm, u: np.ndarray, left: int | None, right: int | None) -> None:
    """Send this block's edge points to the neighbours and take theirs into the ghosts."""
    from mpi4py import MPI

    null = MPI.PROC_NULL
    ghost = np.empty(1)
    comm.Sendrecv(u[1:2], dest=null if left is None else left, recvbuf=ghost,
                  source=null if right is None else right)
    if right is not None:
        u[-1] = ghost[0]
    comm.Sendrecv(u[-2:-1], dest=null if right is None else right, recvbuf=ghost,
                  source=null if left is None else left)
    if left is not None:
        u[0] = ghost[0]


def model(params: dict, ctx) -> dict | None:
    """The Python-model form: every rank of the task calls it; ``ctx.comm`` is theirs."""
    return solve(ctx.comm, params["alpha"], params["nx"], params["dt"], params["t_end"])


if __name__ == "__main__":
    from mpi4py import MPI

    alpha, nx, dt, t_end = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    result = solve(MPI.COMM_WORLD, alpha, nx, dt, t_end)
    if result is not None:
        print("MEXPLORE_RESULT " + json.dumps(result))
