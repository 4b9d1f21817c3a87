"""Search quality and master overhead of the built-in algorithms (issue 5's targets).

Quality: on Branin (2-D), Hartmann-6 and Rosenbrock (10-D), the median over seeds of the
best value after 200 evaluations for
  - mexplore ``optuna.tpe`` with 8 asynchronous workers,
  - plain sequential Optuna TPE (``optuna.create_study().optimize``, the same budget),
  - mexplore ``random``.
The 8 workers are SIMULATED in-process, not started under MPI: 8 tasks are in flight, each
"runs" for a random duration (uniform 0.5-1.5 time units, seeded), and results are told
in the order they finish, with a new task asked for at once, as the ``async`` policy does.
Only the order and the information available to each proposal matter for quality, so
the simulation measures the same thing as an MPI run would, without its time.
The sequential baseline is Optuna's default ``TPESampler(seed=s)``, whatever options the
async runs are given. Besides the medians, the table gives how many evaluations sequential
TPE needs for its median best to reach the async median: a parallel efficiency, readable
where a ratio of values is not (Rosenbrock's best values span orders of magnitude).
``--options`` runs ``optuna.tpe`` with ``[algorithm.options]`` (JSON), once per setting.

Overhead: the time the master spends in ``ask`` + ``tell`` per task (``ask(1)``, one
result told at a time, as with ``async``): for ``random``, ``sobol`` and ``grid`` over 10^5
tasks; for the Optuna samplers, at 100, 1,000 and 5,000 results (median of the 20 tasks
before each mark in one run of that length).

    .venv/bin/python benchmarks/quality.py            # full: about 5 minutes on 2 cores
    .venv/bin/python benchmarks/quality.py --quick    # 3 seeds, Optuna marks up to 1,000
    .venv/bin/python benchmarks/quality.py --quality-only --seeds 20 \
        --options '{}' --options '{"n_ei_candidates": 100}'   # compare TPE settings
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import optuna

from mexplore.algorithms.base import StudyInfo
from mexplore.algorithms.base import Algorithm
from mexplore.errors import AlgorithmError
from mexplore.queue.build import build_algorithm
from mexplore.space import Float, Grid, Space
from mexplore.types import Result, Status

BUDGET, WORKERS = 200, 8


def branin(x: np.ndarray) -> float:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return float(a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s)


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


PROBLEMS: dict[str, tuple[Callable[[np.ndarray], float], Space, float]] = {
    "Branin (2-D)": (branin, Space({"x0": Float(-5.0, 10.0), "x1": Float(0.0, 15.0)}, {}), 0.397887),
    "Hartmann-6": (hartmann6, Space({f"x{i}": Float(0.0, 1.0) for i in range(6)}, {}), -3.32237),
    "Rosenbrock (10-D)": (rosenbrock, Space({f"x{i}": Float(-5.0, 10.0) for i in range(10)}, {}), 0.0),
}


def point(params: dict, space: Space) -> np.ndarray:
    return np.array([params[name] for name in space.parameters])


def simulated_async(algorithm: Algorithm, f: Callable, space: Space, seed: int) -> float:
    """Best value after BUDGET evaluations by WORKERS simulated asynchronous workers."""
    rng = np.random.default_rng(seed + 1000)
    clock, order, best, running = 0.0, 0, math.inf, []
    for params in algorithm.propose(range(WORKERS)):
        heapq.heappush(running, (clock + rng.uniform(0.5, 1.5), order, params))
        order += 1
    for _ in range(BUDGET):
        clock, task_id, params = heapq.heappop(running)
        value = f(point(params, space))
        best = min(best, value)
        algorithm.tell([Result(task_id=task_id, params=params, status=Status.OK, objective=value)])
        if order < BUDGET:
            (params,) = algorithm.propose(range(order, order + 1))
            heapq.heappush(running, (clock + rng.uniform(0.5, 1.5), order, params))
            order += 1
    algorithm.close()
    return best


def sequential_optuna(f: Callable, space: Space, seed: int) -> list[float]:
    """Best value so far after each of BUDGET evaluations by Optuna's default sequential TPE."""
    names = list(space.parameters)

    def objective(trial: optuna.Trial) -> float:
        return f(np.array([trial.suggest_float(n, space.parameters[n].low, space.parameters[n].high)
                           for n in names]))

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=BUDGET)
    return np.minimum.accumulate([trial.value for trial in study.trials]).tolist()


def evaluations_to_match(curves: list[list[float]], target: float) -> str:
    """How many evaluations the median of ``curves`` (best so far) needs to reach ``target``."""
    median_curve = [statistics.median(values) for values in zip(*curves)]
    return next((str(n) for n, value in enumerate(median_curve, 1) if value <= target), f"> {BUDGET}")


def quality(seeds: int, settings: list[dict]) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"## Search quality: median over {seeds} seeds of the best value after {BUDGET} evaluations\n")
    print(f"mexplore runs use {WORKERS} workers SIMULATED in-process (async order from random task "
          "durations), not MPI ranks. Regret = best - known minimum.\n")
    print("Within 10%, two readings: of the value (|async - sequential| <= 10% of |sequential|), and "
          "of the regret (async regret <= 1.1 x sequential regret, stricter near the optimum). "
          "Sequential evaluations to match: how many evaluations sequential TPE needs for its median "
          f"best so far to reach the async median ({BUDGET} or fewer: the async run is as good).\n")
    print("| Problem (minimum) | `optuna.tpe` options | mexplore optuna.tpe, 8 async | sequential Optuna TPE | "
          "mexplore random | value within 10% | regret ratio async ÷ sequential | regret within 10% | "
          "better than random | sequential evaluations to match |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (f, space, minimum) in PROBLEMS.items():
        curves = [sequential_optuna(f, space, seed) for seed in range(seeds)]
        sequential = statistics.median(curve[-1] for curve in curves)
        random = statistics.median(
            simulated_async(build_algorithm("random", space, StudyInfo(seed=seed), {}), f, space, seed) for seed in range(seeds))
        for options in settings:
            parallel = statistics.median(
                simulated_async(build_algorithm("optuna.tpe", space, StudyInfo(seed=seed), dict(options)), f, space, seed)
                for seed in range(seeds))
            regret = {"async": parallel - minimum, "sequential": sequential - minimum, "random": random - minimum}
            ratio = regret["async"] / regret["sequential"] if regret["sequential"] > 0 else math.inf
            close = abs(parallel - sequential) <= 0.1 * abs(sequential)
            print(f"| {name} ({minimum:g}) | `{json.dumps(options)}` | {parallel:.4g} | {sequential:.4g} | "
                  f"{random:.4g} | {'yes' if close else 'no'} | {ratio:.2f} | {'yes' if ratio <= 1.10 else 'no'} | "
                  f"{'yes' if regret['async'] < regret['random'] else 'no'} | {evaluations_to_match(curves, parallel)} |")
            sys.stdout.flush()


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


def tpe_options(text: str) -> dict:
    """An ``--options`` value: a JSON object, as ``[algorithm.options]`` would be."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"n_ei_candidates\": 100}}', got {text!r}")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds; Optuna marks 100 and 1,000 only")
    parser.add_argument("--seeds", type=int, help="seeds per median (default 10, 3 with --quick)")
    parser.add_argument("--options", type=tpe_options, action="append", metavar="JSON",
                        help="[algorithm.options] of optuna.tpe as a JSON object; repeat to compare "
                             "settings (default: {}, the adapter's defaults)")
    parser.add_argument("--quality-only", action="store_true", help="skip the master overhead tables")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    for options in args.options or []:  # a misspelt option fails now, not minutes into the run
        try:
            build_algorithm("optuna.tpe", PROBLEMS["Branin (2-D)"][1], StudyInfo(seed=0), dict(options)).close()
        except AlgorithmError as exc:
            parser.error(str(exc))
    started = time.time()
    print(f"Python {platform.python_version()}, Optuna {optuna.__version__}, "
          f"{'quick run' if args.quick else 'full run'}, {seeds} seeds\n")
    quality(seeds, args.options or [{}])
    if not args.quality_only:
        overhead((100, 1000) if args.quick else (100, 1000, 5000))
    print(f"\n(took {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
