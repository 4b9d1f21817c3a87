"""Master overhead of the built-in algorithms: the time the master spends in ``ask`` + ``tell``
per task (``ask(1)``, one result told at a time, as with ``async``).

For ``random``, ``sobol``, ``lhs`` and ``grid`` over 10^5 tasks (target < 50 µs); for the Optuna
samplers at 100, 1,000 and 5,000 results (median of the 20 tasks before each mark in one
run of that length).

    .venv/bin/python benchmarks/algorithm_overhead.py           # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/algorithm_overhead.py --quick   # Optuna marks up to 1,000
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import optuna

from mexplore.algorithms.base import Algorithm, StudyInfo
from mexplore.errors import AlgorithmError
from mexplore.queue.build import build_algorithm
from mexplore.space import Float, Grid, Space
from mexplore.types import Result, Status


def per_task_us(algorithm: Algorithm, tasks: int, marks: tuple[int, ...] = ()) -> dict[int, float]:
    """Mean ask+tell time per task over ``tasks`` (key ``tasks``), and the median over the 20
    tasks before each mark; in microseconds."""
    times = np.empty(tasks)
    clock = time.perf_counter
    for i in range(tasks):
        start = clock()
        (params,) = algorithm.propose(range(i, i + 1))
        algorithm.tell([Result(task_id=i, params=params, status=Status.OK, objective=1.0 + (i % 7) * 0.1)])
        times[i] = clock() - start
    algorithm.close()
    out = {mark: float(np.median(times[mark - 20:mark])) * 1e6 for mark in marks}
    out.setdefault(tasks, float(times.mean()) * 1e6)
    return out


def overhead(marks: tuple[int, ...]) -> None:
    floats = Space({f"x{i}": Float(0.0, 1.0) for i in range(6)}, {})
    grid = Space({f"g{i}": Grid(tuple(range(10))) for i in range(5)}, {})  # 10^5 points
    grid_small = Space({f"g{i}": Grid(tuple(range(5))) for i in range(6)}, {})  # 15,625 points
    print("\n## Master overhead: ask + tell per task (ask(1), one result told at a time)\n")
    print("Sweeps and `random` over 10^5 tasks (mean; target < 50 µs), 6 float parameters or a "
          "5-parameter grid of 10^5 points:\n")
    print("| Algorithm | tasks | µs per task | < 50 µs |")
    print("|---|---|---|---|")
    for name, space in (("random", floats), ("sobol", floats), ("lhs", floats), ("grid", grid)):
        us = per_task_us(build_algorithm(name, space, StudyInfo(seed=1), {}), 100_000)[100_000]
        print(f"| `{name}` | 100,000 | {us:.1f} | {'yes' if us < 50 else 'no'} |")
    print("\nOptuna samplers, 6 float parameters (`optuna.grid`: a 6-parameter grid of 15,625 "
          "points), median of the 20 tasks before each mark, in ms per task:\n")
    print("| Algorithm | " + " | ".join(f"at {m:,} results" for m in marks) + " |")
    print("|---|" + "---|" * len(marks))
    for name in ("optuna.tpe", "optuna.cmaes", "optuna.nsga2", "optuna.nsga3", "optuna.qmc",
                 "optuna.random", "optuna.grid", "optuna.gp"):
        try:
            algorithm = build_algorithm(name, grid_small if name == "optuna.grid" else floats, StudyInfo(seed=1), {})
        except AlgorithmError as exc:  # optuna.gp without PyTorch
            print(f"| `{name}` | " + " | ".join(["not run"] * (len(marks) - 1)) + f" | not run: {exc} |")
            continue
        us = per_task_us(algorithm, max(marks), marks)
        print(f"| `{name}` | " + " | ".join(f"{us[m] / 1000:.2f}" for m in marks) + " |")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Optuna marks 100 and 1,000 only")
    args = parser.parse_args()
    started = time.time()
    print(f"Python {platform.python_version()}, Optuna {optuna.__version__}")
    overhead((100, 1000) if args.quick else (100, 1000, 5000))
    print(f"\n(took {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
