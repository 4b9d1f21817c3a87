"""The default policy before and after it knew whether the algorithm learns, end to end.

    git archive <commit> src | tar -x -C /tmp/before      # the earlier code, untouched
    python benchmarks/policy_choice.py --before /tmp/before/src [--quick]

Each case runs ``mexplore run STUDY -n 4`` (1 master + 3 workers) with the default policy,
once with the earlier code (``PYTHONPATH`` pointing at ``--before``) and once with this
tree, interleaved ``repeats`` times so that drift on a shared machine hits both alike; the
table shows medians. Compare the two columns of one run, not figures of different runs.

- ``random``, no-op tasks (it does not learn): tasks/s over the journal's span (first start
  to last end, as :mod:`throughput` counts) and over the whole command (launch to exit,
  results.csv and results.h5 written).
- ``optuna.tpe``, 50 ms and 10 ms tasks (it learns): the lag, mean and largest, and utilization.

The lag is the journal's ``lag`` where recorded; the earlier code did not record it, so both
columns also show it estimated from timestamps alike: for each task, the earlier tasks
still running when it started (a lower bound: tasks that ended between its proposal and its
start are missed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
WORKERS = 3


def study(folder: Path, algorithm: str, budget: int, seconds: float | None) -> Path:
    constant = "" if seconds is None else f"seconds = {seconds}\n"
    model = "noop" if seconds is None else "sleep"
    path = folder / "study.toml"
    path.write_text(f"""[study]
name = "bench"
budget = {budget}
objective = "value"
output = "out"

[model]
python = "{HERE / 'models.py'}:{model}"

[algorithm]
name = "{algorithm}"
seed = 1

[space]
x = {{ type = "float", low = 0.0, high = 1.0 }}
{constant}""")
    return path


def run_case(src: Path | None, algorithm: str, budget: int, seconds: float | None) -> dict:
    """One run; the figures of its journal."""
    with tempfile.TemporaryDirectory(prefix="mexplore-policy-") as tmp:
        folder = Path(tmp)
        path = study(folder, algorithm, budget, seconds)
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        started = time.perf_counter()
        done = subprocess.run([PYTHON, "-m", "mexplore", "run", str(path), "-n", str(WORKERS + 1),
                               "--progress", "off"], cwd=folder, env=env, capture_output=True, text=True, check=False,
                              timeout=600)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{algorithm} failed:\n{done.stderr}")
        records = [json.loads(line) for line in (folder / "out" / "journal.jsonl").read_text().splitlines()]
    return figures(records, wall)


def figures(records: list[dict], wall: float) -> dict:
    records.sort(key=lambda r: r["id"])
    first, last = min(r["started"] for r in records), max(r["ended"] for r in records)
    busy = sum(r["ended"] - r["started"] for r in records)
    estimated = [sum(1 for earlier in records[max(0, i - 200):i] if earlier["ended"] > r["started"])
                 for i, r in enumerate(records)]
    recorded = [r["lag"] for r in records if "lag" in r]
    return {
        "span tasks/s": len(records) / (last - first),
        "command tasks/s": len(records) / wall,
        "utilization": busy / (WORKERS * (last - first)),
        "lag, mean": statistics.mean(recorded) if recorded else None,
        "lag, max": max(recorded) if recorded else None,
        "lag estimated, mean": statistics.mean(estimated),
        "lag estimated, max": max(estimated),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="src/ of the earlier code")
    parser.add_argument("--quick", action="store_true", help="fewer tasks and one repeat")
    args = parser.parse_args()
    repeats, budget = (1, 4000) if args.quick else (3, 20_000)
    cases = {"random, no-op": ("random", budget, None), "optuna.tpe, 50 ms": ("optuna.tpe", 60, 0.05), "optuna.tpe, 10 ms": ("optuna.tpe", 60, 0.01)}
    print(f"{WORKERS} workers, default policy; median of {repeats} interleaved runs\n")
    print("| case | figure | before | after |\n|---|---|---|---|")
    for name, (algorithm, tasks, seconds) in cases.items():
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(repeats):
            runs["before"].append(run_case(args.before, algorithm, tasks, seconds))
            runs["after"].append(run_case(None, algorithm, tasks, seconds))
        for figure in runs["after"][0]:
            cells = []
            for side in ("before", "after"):
                values = [run[figure] for run in runs[side] if run[figure] is not None]
                cells.append(f"{statistics.median(values):,.2f}" if values else "not recorded")
            print(f"| {name} ({tasks} tasks) | {figure} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
