"""Search quality through the real engine (issue 16): ``mexplore run`` under mpiexec with the
default policy, beside sequential Optuna TPE, Optuna's ``optimize(n_jobs=8)`` and random search.

Problems (``problems.py``): Branin, Hartmann-6 and 10-D Rosenbrock, and COCO's BBOB suite
(24 functions; dimensions, instances and seeds chosen on the command line). Each run has a
budget of 50 x D evaluations; a seed ``s`` runs instance ``s + 1`` of a BBOB function.

- ``mexplore``: ``mexplore run study.toml -n WORKERS+1`` with ``optuna.tpe`` and nothing else
  set (the default ``async`` policy), tasks sleeping 20-60 ms (``problems.evaluate``).
  Evaluations are counted in the order results finished; time runs from the first task's
  start. ``--variant LABEL=JSON`` adds runs with other ``[algorithm]`` keys (``name``,
  ``options``), e.g. ``--variant liar-off='{"options": {"constant_liar": false}}'``.
- ``sequential``: ``optuna.create_study(sampler=TPESampler(seed=s)).optimize``, one
  evaluation after the other; its time is the sum of the same task lengths plus Optuna's
  own time, measured (no sleeping: the tasks would only add their lengths).
- ``n_jobs``: ``study.optimize(..., n_jobs=WORKERS)`` with the same TPE and sleeping tasks:
  Optuna's own parallel answer, threads sharing one in-memory study.
- ``random``: uniform draws from the box (seeded): the floor every search must beat.

Every run appends one JSON line to ``--raw`` (default ``runs/quality.jsonl``); a rerun
skips what the file already holds, so a long run can be stopped and resumed, or spread over
several sessions, and ``--report-only`` prints the tables from the file alone.

    .venv/bin/pip install coco-experiment       # BBOB's functions (not a mexplore dependency)
    .venv/bin/python benchmarks/quality.py --dims 2 5 10 --seeds 3     # about an hour on 2 cores
    .venv/bin/python benchmarks/quality.py --dims 2 --seeds 1 --functions 1 8 --no-classic  # smoke
    .venv/bin/python benchmarks/quality.py --dims 2 5 10 20 --seeds 15   # larger: a node, hours

Regret is best - f_opt, floored at 1e-8 (COCO's final target precision). The report, per
function and dimension: median regret of each method, the ratio mexplore / sequential,
whether mexplore is within 1.25x of sequential and ahead of ``n_jobs``, and how much sooner
8 workers reach sequential TPE's final best than sequential TPE did (speed-up; 0 where
they never reach it within the budget).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from problems import (  # noqa: E402
    CLASSIC,
    TASK_HIGH,
    TASK_LOW,
    Problem,
    bbob_name,
    point,
    problem,
    task_seconds,
)

FLOOR = 1e-8
"""Regrets below this count as solved (COCO's final target precision)."""
WITHIN = 1.25
"""The issue's target: mexplore's median regret within this factor of sequential TPE's."""
EXTEND = 2
"""mexplore runs this many times the budget, so the time to reach sequential TPE's final
best is measured even where 8 workers need more evaluations than one; quality is judged
on the first ``budget`` results (in the order they finished), at equal evaluations."""


def study_text(chosen: Problem, seed: int, algorithm: dict) -> str:
    """The study file of one mexplore run on ``chosen``; ``algorithm`` adds [algorithm] keys."""
    space = "\n".join(f"x{i} = {{ type = \"float\", low = {lo!r}, high = {hi!r} }}"
                      for i, (lo, hi) in enumerate(zip(chosen.lower, chosen.upper)))
    options = algorithm.get("options", {})
    option_lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in options.items())
    return f"""[study]
name = "quality"
objective = "value"
budget = {EXTEND * chosen.budget}

[model]
python = "{HERE / 'problems.py'}:evaluate"

[algorithm]
name = "{algorithm.get('name', 'optuna.tpe')}"
seed = {seed}

[algorithm.options]
{option_lines}

[space]
problem = "{chosen.name}"
seed = {seed}
{space}
"""


def run_mexplore(chosen: Problem, seed: int, workers: int, algorithm: dict) -> dict:
    """One ``mexplore run`` as a user starts it; values in the order results finished."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="mexplore-quality-") as scratch:
        study = Path(scratch) / "study.toml"
        study.write_text(study_text(chosen, seed, algorithm))
        command = [str(Path(sys.executable).parent / "mexplore"), "run", str(study), "-n", str(workers + 1),
                   "-o", str(Path(scratch) / "out"), "--progress", "off"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        frame = pd.read_csv(Path(scratch) / "out" / "results.csv").sort_values("ended", kind="stable")
    start = frame["started"].min()
    return {"values": frame["value"].astype(float).tolist(), "times": (frame["ended"] - start).tolist(),
            "lags": frame["lag"].astype(int).tolist()}


def _objective(chosen: Problem, seed: int, sleep: bool):
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params = {f"x{i}": trial.suggest_float(f"x{i}", lo, hi)
                  for i, (lo, hi) in enumerate(zip(chosen.lower, chosen.upper))}
        if sleep:
            time.sleep(task_seconds(seed, trial.number))
        return chosen.f(point(params, chosen.dimension))
    return objective


def run_sequential(chosen: Problem, seed: int, workers: int, algorithm: dict) -> dict:
    """Sequential TPE; time = the tasks' lengths plus Optuna's measured time, one after the other."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    started = time.perf_counter()
    study.optimize(_objective(chosen, seed, sleep=False), n_trials=chosen.budget)
    optuna_time = (time.perf_counter() - started) / chosen.budget  # per trial, f included (tiny)
    lengths = np.cumsum([task_seconds(seed, i) + optuna_time for i in range(chosen.budget)])
    return {"values": [trial.value for trial in study.trials], "times": lengths.tolist()}


def run_n_jobs(chosen: Problem, seed: int, workers: int, algorithm: dict) -> dict:
    """Optuna's own parallel TPE: ``optimize(n_jobs=workers)``, threads, tasks sleeping."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    started = time.time()
    study.optimize(_objective(chosen, seed, sleep=True), n_trials=chosen.budget, n_jobs=workers)
    trials = sorted(study.trials, key=lambda trial: trial.datetime_complete)
    return {"values": [trial.value for trial in trials],
            "times": [trial.datetime_complete.timestamp() - started for trial in trials]}


def run_random(chosen: Problem, seed: int, workers: int, algorithm: dict) -> dict:
    rng = np.random.default_rng(seed)
    points = rng.uniform(chosen.lower, chosen.upper, size=(chosen.budget, chosen.dimension))
    return {"values": [chosen.f(x) for x in points]}


RUNNERS = {"sequential": run_sequential, "n_jobs": run_n_jobs, "random": run_random}


def regret(record: dict) -> float:
    """The best value of the run's first ``budget`` evaluations, less the optimum."""
    return max(min(record["values"][:record.get("budget")]) - record["minimum"], FLOOR)


def reached(record: dict, target: float, clock: str) -> float | None:
    """When ``record`` first reached ``target`` (its best so far at or below it), or None:
    on its clock of seconds (``clock="times"``) or in evaluations (``"evaluations"``)."""
    best = np.minimum.accumulate(record["values"])
    hits = np.nonzero(best <= target)[0]
    if not hits.size:
        return None
    return float(record["times"][hits[0]]) if clock == "times" else float(hits[0] + 1)


def problems_of(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(group, problem name, seed) for every run asked for: a group is what a median is over
    (a function in one dimension, its instances and seeds together)."""
    runs = []
    if args.classic:
        runs += [(name, name, seed) for name in CLASSIC for seed in range(args.seeds)]
    for dimension in args.dims:
        for function in args.functions:
            group = f"f{function:02d} {dimension}-D"
            runs += [(group, bbob_name(function, dimension, seed + 1), seed) for seed in range(args.seeds)]
    return runs


def collect(args: argparse.Namespace, methods: dict[str, tuple]) -> None:
    """Run every (problem, seed, method) the raw file lacks, appending as each ends."""
    raw = Path(args.raw[0])
    raw.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["problem"], r["seed"], r["method"]) for r in read_raw(raw)}
    todo = [(group, name, seed, method) for group, name, seed in problems_of(args) for method in methods
            if (name, seed, method) not in done]
    print(f"{len(todo)} runs to do ({len(done)} already in {raw})", file=sys.stderr)
    for count, (group, name, seed, method) in enumerate(todo, 1):
        runner, algorithm = methods[method]
        chosen = problem(name)
        started = time.time()
        record = runner(chosen, seed, args.workers, algorithm)
        record.update(problem=name, group=group, seed=seed, method=method, minimum=chosen.minimum,
                      budget=chosen.budget, workers=args.workers, wall=time.time() - started)
        with raw.open("a") as out:
            out.write(json.dumps(record) + "\n")
        print(f"[{count}/{len(todo)}] {name} seed {seed} {method}: regret "
              f"{regret(record):.3g} ({record['wall']:.1f} s)", file=sys.stderr)


def read_raw(raw: Path) -> list[dict]:
    if not raw.exists():
        return []
    return [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]


def report(records: list[dict], workers: int) -> None:
    by = defaultdict(dict)  # (group, problem, seed) -> method -> record
    for r in records:
        if r.get("workers", workers) == workers:
            by[(r["group"], r["problem"], r["seed"])][r["method"]] = r
    mexplore_methods = sorted({m for runs in by.values() for m in runs if m.startswith(("mexplore", "sim:"))})
    groups = sorted({key[0] for key in by}, key=_group_order)
    summaries = {}
    for method in mexplore_methods:
        print(f"\n### `{method}` against the baselines, {workers} workers\n")
        print("| function | runs | median regret: mexplore | sequential TPE | `n_jobs` | random | "
              "mexplore ÷ sequential | within 1.25× | ahead of `n_jobs` | speed-up to sequential's best | "
              "the same, long tasks | mean lag |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        tally = defaultdict(lambda: defaultdict(list))  # family -> what -> values
        for group in groups:
            runs = [runs for key, runs in by.items() if key[0] == group and method in runs and "sequential" in runs]
            if not runs:
                continue
            med = {m: statistics.median(regret(r[m]) for r in runs if m in r)
                   if any(m in r for r in runs) else math.nan for m in (method, "sequential", "n_jobs", "random")}
            ratio = med[method] / med["sequential"]
            within, ahead = ratio <= WITHIN, med[method] <= med["n_jobs"]
            extended = all(len(r[method]["values"]) > r[method]["budget"] for r in runs)
            speedup = statistics.median(_speedup(r[method], r["sequential"]) for r in runs) if extended else math.nan
            by_evaluations = (statistics.median(_speedup(r[method], r["sequential"], "evaluations") for r in runs)
                              if extended else math.nan)
            lags = [np.mean(r[method]["lags"]) for r in runs if "lags" in r[method]]
            for family in ("classic",) if group in CLASSIC else (f"BBOB {group.split()[1]}", "BBOB, all"):
                t = tally[family]
                t["within"].append(within)
                if extended:
                    t["speedup"].append(speedup)
                    t["by evaluations"].append(by_evaluations)
                t["to sequential"] += [math.log(regret(r[method]) / regret(r["sequential"])) for r in runs]
                if not math.isnan(med["n_jobs"]):
                    t["ahead"].append(ahead)
                    t["to n_jobs"] += [math.log(regret(r[method]) / regret(r["n_jobs"])) for r in runs if "n_jobs" in r]
            print(f"| {group} | {len(runs)} | {med[method]:.3g} | {med['sequential']:.3g} | {med['n_jobs']:.3g} | "
                  f"{med['random']:.3g} | {ratio:.2f} | {'yes' if within else 'no'} | {'yes' if ahead else 'no'} | "
                  f"{_times(speedup)} | {_times(by_evaluations)} | {np.mean(lags) if lags else math.nan:.1f} |")
        summaries[method] = tally
    print("\n### Summary\n")
    print("Per problem family: the share of functions whose median regret is within 1.25× of sequential "
          "TPE's, and ahead of (or tied with) `n_jobs`'s; the geometric mean over runs of the regret "
          "ratio, paired by problem and seed (± one standard error, as a factor); the median speed-up to "
          "sequential's best and the share of functions where it is at least 5×.\n")
    print("| method | problems | functions | within 1.25× | ahead of `n_jobs` | regret ÷ sequential | "
          "regret ÷ `n_jobs` | speed-up | ≥ 5× | speed-up, long tasks | ≥ 5× |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for baseline in ("n_jobs", "random"):  # what parallelism costs Optuna's own TPE; the floor
        tally = defaultdict(lambda: defaultdict(list))
        for (group, _, _), runs in by.items():
            if baseline in runs and "sequential" in runs:
                for family in ("classic",) if group in CLASSIC else (f"BBOB {group.split()[1]}", "BBOB, all"):
                    tally[family]["to sequential"].append(
                        math.log(regret(runs[baseline]) / regret(runs["sequential"])))
        summaries[baseline] = tally
    for method, tally in summaries.items():
        for family in sorted(tally, key=_family_order):
            t = tally[family]
            n = len(t["within"]) or "–"
            print(f"| `{method}` | {family} | {n} | {_share(t['within'])} | {_share(t['ahead'])} | "
                  f"{_geomean(t['to sequential'])} | {_geomean(t['to n_jobs'])} | "
                  f"{_times(statistics.median(t['speedup']) if t['speedup'] else math.nan)} | "
                  f"{_share([s >= 5 for s in t['speedup']])} | "
                  f"{_times(statistics.median(t['by evaluations']) if t['by evaluations'] else math.nan)} | "
                  f"{_share([s >= 5 for s in t['by evaluations']])} |")


def _times(speedup: float) -> str:
    """A speed-up; – where not measured (runs not extended past the budget: simulations)."""
    return "–" if math.isnan(speedup) else f"{speedup:.1f}×"


def _share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} ({100 * sum(flags) / len(flags):.0f}%)" if flags else "–"


def _geomean(logs: list[float]) -> str:
    """exp(mean) of log ratios, with its standard error as a factor."""
    if len(logs) < 2:
        return "–"
    return f"{math.exp(statistics.fmean(logs)):.2f} (×/÷ {math.exp(statistics.stdev(logs) / math.sqrt(len(logs))):.2f})"


def noise_ceiling(records: list[dict], seeds: int = 5, draws: int = 200) -> None:
    """How often sequential TPE is within 1.25x of itself: its runs of each function split at
    random into two sets of ``seeds``, medians compared (the share a method exactly as good as
    sequential TPE would score on the within-1.25x test)."""
    by = defaultdict(dict)
    for r in records:
        if r["method"] == "sequential":
            by[r["group"]][r["seed"]] = regret(r)
    usable = {group: runs for group, runs in by.items() if len(runs) >= 2 * seeds}
    if not usable:
        print(f"\n(no function has {2 * seeds} sequential runs: no noise ceiling)")
        return
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(draws):
        within = 0
        for runs in usable.values():
            values = rng.permutation(list(runs.values()))
            within += np.median(values[:seeds]) <= WITHIN * np.median(values[seeds:2 * seeds])
        shares.append(within / len(usable))
    low, high = np.percentile(shares, [5, 95])
    print(f"\nNoise ceiling: sequential TPE against itself ({seeds} seeds per median, {len(usable)} functions, "
          f"{draws} random splits) is within 1.25× on {100 * np.mean(shares):.0f}% of functions "
          f"(5th-95th percentile {100 * low:.0f}-{100 * high:.0f}%).")


def _speedup(mine: dict, sequential: dict, clock: str = "times") -> float:
    """How much sooner ``mine`` reached sequential TPE's final best than sequential TPE did
    (0: never): in seconds, or with ``clock="evaluations"`` as ``workers`` x the ratio of
    evaluations, what tasks long enough to dwarf the master's costs would give."""
    target = min(sequential["values"])
    theirs, ours = reached(sequential, target, clock), reached(mine, target, clock)
    if not ours:
        return 0.0
    return theirs / ours if clock == "times" else mine.get("workers", 1) * theirs / ours


def _family_order(family: str) -> tuple:
    """classic, then BBOB by dimension, then all of BBOB."""
    if family == "classic":
        return (0, 0)
    dimension = family.split()[1].split("-")[0]
    return (1, int(dimension)) if dimension.isdigit() else (2, 0)


def _group_order(group: str) -> tuple:
    if group in CLASSIC:
        return (0, list(CLASSIC).index(group), 0)
    function, dimension = group.split()
    return (1, int(dimension.split("-")[0]), int(function[1:]))


def variant(text: str) -> tuple[str, dict]:
    label, _, spec = text.partition("=")
    try:
        algorithm = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: not JSON after '=' ({exc})") from None
    if not label or not isinstance(algorithm, dict) or set(algorithm) - {"name", "options"}:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected LABEL={{\"name\": ..., \"options\": {{...}}}}")
    return label, algorithm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=[2, 5, 10], help="BBOB dimensions (default 2 5 10)")
    parser.add_argument("--functions", type=int, nargs="*", default=list(range(1, 25)), help="BBOB functions 1-24")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (and BBOB instances) per function")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-classic", dest="classic", action="store_false", help="skip Branin, Hartmann-6, Rosenbrock")
    parser.add_argument("--variant", type=variant, action="append", default=[], metavar="LABEL=JSON",
                        help="also run mexplore with these [algorithm] keys, as method mexplore:LABEL")
    parser.add_argument("--only", nargs="*", help="run only these methods (mexplore, mexplore:LABEL, sequential, ...)")
    parser.add_argument("--raw", action="append", help="the JSON-lines file runs are appended to "
                        "(default runs/quality.jsonl); repeat to report on several (the first is written)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--ceiling-seeds", type=int, default=5,
                        help="seeds per median of the noise ceiling (it needs twice as many sequential runs)")
    args = parser.parse_args()
    args.raw = args.raw or ["runs/quality.jsonl"]
    methods = {"mexplore": (run_mexplore, {}), **{f"mexplore:{label}": (run_mexplore, algorithm)
                                                  for label, algorithm in args.variant}}
    methods.update({name: (runner, {}) for name, runner in RUNNERS.items()})
    if args.only:
        methods = {name: methods[name] for name in args.only}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.time()
    if not args.report_only:
        collect(args, methods)
    print(f"Python {platform.python_version()}, Optuna {optuna.__version__}, {args.workers} workers, "
          f"tasks {1000 * TASK_LOW:.0f}-{1000 * TASK_HIGH:.0f} ms, budget 50 x D; "
          f"raw runs in {', '.join(args.raw)}")
    records = [record for raw in args.raw for record in read_raw(Path(raw))]
    report(records, args.workers)
    noise_ceiling(records, seeds=args.ceiling_seeds)
    print(f"\n(took {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
