"""The baseline: the simplest master/worker loop mpi4py allows.

Run as ``mpiexec -n N python benchmarks/raw_mpi4py.py --tasks T [--model noop|sleep]
[--seconds S]``.
Rank 0 sends one small task (a pickled dict) to each worker with a blocking ``comm.send``,
then, for every ``comm.recv(source=ANY_SOURCE)`` result, sends the next task to the worker
that answered; workers ``recv`` / run / ``send`` in a loop until they receive ``None``.
No batching, no prefetch, no bookkeeping: the floor of what one message per task costs.

Rank 0 prints one JSON line: :func:`timing.summarize` of the workers' (started, ended)
timestamps. Note that an MPICH blocking receive spins its core while it waits.
"""

from __future__ import annotations

import argparse
import json
import time

from mpi4py import MPI

from models import sleep_seconds
from timing import summarize


def run_task(task: dict, model: str, seconds: float | None) -> dict:
    """Run one task; the reply carries the id, a value and the worker's timestamps.

    ``sleep`` sleeps ``seconds``, or else 5-15 ms seeded by the task id, as
    ``models.sleep`` does for mexplore.
    """
    started = time.time()
    if model == "sleep":
        time.sleep(sleep_seconds(task["id"]) if seconds is None else seconds)
    value = task["params"]["x"]
    return {"id": task["id"], "value": value, "started": started, "ended": time.time()}


def master(comm, tasks: int) -> list[dict]:
    workers = comm.Get_size() - 1
    status = MPI.Status()
    results = []
    sent = 0
    for worker in range(1, min(workers, tasks) + 1):
        comm.send({"id": sent, "params": {"x": 0.5}}, dest=worker)
        sent += 1
    while len(results) < tasks:
        results.append(comm.recv(source=MPI.ANY_SOURCE, status=status))
        if sent < tasks:
            comm.send({"id": sent, "params": {"x": 0.5}}, dest=status.Get_source())
            sent += 1
    for worker in range(1, workers + 1):
        comm.send(None, dest=worker)
    return results


def worker(comm, model: str, seconds: float | None) -> None:
    while (task := comm.recv(source=0)) is not None:
        comm.send(run_task(task, model, seconds), dest=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--model", choices=["noop", "sleep"], default="noop")
    parser.add_argument("--seconds", type=float, default=None, help="a fixed sleep per task")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    if comm.Get_rank() != 0:
        worker(comm, args.model, args.seconds)
        return
    results = master(comm, args.tasks)
    summary = summarize(((r["started"], r["ended"]) for r in results), comm.Get_size() - 1)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
