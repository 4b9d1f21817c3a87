"""mpi4py.futures, used the usual way: ``MPIPoolExecutor().map(fn, iterable)``.

Run as ``mpiexec -n N python -m mpi4py.futures benchmarks/futures_bench.py --tasks T``:
rank 0 runs this script, ranks 1..N-1 are the pool's workers. ``executor.map`` (the form
the mpi4py.futures examples use) with its default ``chunksize=1`` sends one task per
message, as ``submit`` + ``as_completed`` would; a larger chunksize would batch tasks, at
the price of handing out work in fixed chunks.

Prints one JSON line: :func:`timing.summarize` of the (started, ended) timestamps each
task returns from the worker.
"""

from __future__ import annotations

import argparse
import json
import time

from mpi4py.futures import MPIPoolExecutor

from timing import summarize


def timed_noop(task_id: int) -> tuple[float, float]:
    """A no-op task that says when it ran, on the worker's clock."""
    started = time.time()
    return started, time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True)
    args = parser.parse_args()
    with MPIPoolExecutor() as executor:
        workers = executor.num_workers
        intervals = list(executor.map(timed_noop, range(args.tasks), chunksize=1))
    print(json.dumps(summarize(intervals, workers)), flush=True)


if __name__ == "__main__":
    main()
