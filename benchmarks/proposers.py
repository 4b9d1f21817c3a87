"""The algorithm off the master's critical path (issue 17 item 4): ``[algorithm] proposers``.

8 workers run 100 ms tasks for ``optuna.tpe`` warm-started (``[algorithm] from``) with 5,000
results of a 6-parameter problem, so each proposal costs TPE tens of milliseconds: with the
master computing them (``proposers = 1``, the default) the algorithm, not the workers, limits
the run. Each number of proposer processes runs ``--repeats`` times, interleaved, end to end
through ``mexplore run -n 9``. From each run's results.csv:

- hand-off: the gap between a task's end and the start of the next task on the same
  worker (median and 90th percentile): how long a worker waited for its next proposal;
- waiting share: those gaps over the gaps and the tasks after each worker's first, so the
  start (the first proposals, each copy learning the 5,000 results) does not count;
- tasks/s over that span, and the whole command's wall time.

    .venv/bin/python benchmarks/proposers.py                       # 1 and 2 proposers, about 3 minutes
    .venv/bin/python benchmarks/proposers.py --proposers 1 2 4 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mexplore.store.journal import JOURNAL_NAME, JournalWriter
from mexplore.types import Result, Status

DIMENSION, WARM, WORKERS = 6, 5000, 8


def earlier_run(folder: Path) -> Path:
    """An output directory holding WARM finished results, for ``[algorithm] from``."""
    folder.mkdir()
    (folder / "study.toml").write_text('[study]\nname = "earlier"\nobjective = "value"\ndirection = "minimize"\n')
    rng = np.random.default_rng(0)
    writer = JournalWriter.open(folder / JOURNAL_NAME)
    points = rng.uniform(0.0, 1.0, size=(WARM, DIMENSION))
    writer.append([Result(task_id=i, params={f"x{j}": float(v) for j, v in enumerate(point)}, status=Status.OK,
                          objective=float(np.sum((point - 0.3) ** 2)), started=0.0, ended=0.0)
                   for i, point in enumerate(points)])
    writer.close()
    return folder


def study(folder: Path, earlier: Path, budget: int, proposers: int) -> Path:
    (folder / "model.py").write_text("import time\n\ndef f(params, ctx):\n    time.sleep(0.1)\n"
                                     "    return sum((params[f'x{i}'] - 0.3) ** 2 for i in range(6))\n")
    space = "\n".join(f'x{i} = {{ type = "float", low = 0.0, high = 1.0 }}' for i in range(DIMENSION))
    path = folder / "study.toml"
    path.write_text(f"""[study]
name = "proposers"
objective = "value"
budget = {budget}

[model]
python = "{folder / 'model.py'}:f"

[algorithm]
name = "optuna.tpe"
seed = 1
proposers = {proposers}
from = "{earlier}"

[space]
{space}
""")
    return path


def measure(path: Path, output: Path) -> dict[str, float]:
    import pandas as pd

    started = time.perf_counter()
    command = [str(Path(sys.executable).parent / "mexplore"), "run", str(path), "-n", str(WORKERS + 1),
               "-o", str(output), "--progress", "off"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    frame = pd.read_csv(output / "results.csv").sort_values("started")
    gaps, busy = [], 0.0
    for _, tasks in frame.groupby("rank"):
        gaps += (tasks["started"].to_numpy()[1:] - tasks["ended"].to_numpy()[:-1]).tolist()
        busy += float(tasks["duration"].to_numpy()[1:].sum())
    span = frame["ended"].max() - frame["started"].min()
    return {"handoff_median": float(np.median(gaps)), "handoff_p90": float(np.percentile(gaps, 90)),
            "waiting": sum(gaps) / (sum(gaps) + busy), "rate": len(frame) / span, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=240)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mexplore-proposers-") as scratch:
        root = Path(scratch)
        earlier = earlier_run(root / "earlier")
        figures: dict[int, list[dict[str, float]]] = {count: [] for count in args.proposers}
        for repeat in range(args.repeats):
            for count in args.proposers:
                folder = root / f"{count}-{repeat}"
                folder.mkdir()
                figures[count].append(measure(study(folder, earlier, args.budget, count), folder / "out"))
                print(f"proposers={count} repeat {repeat}: {figures[count][-1]}", file=sys.stderr)
    print(f"optuna.tpe warm-started with {WARM:,} results, {WORKERS} workers, 100 ms tasks, {args.budget} tasks, "
          f"median of {args.repeats} runs\n")
    print("| `proposers` | hand-off, median (ms) | hand-off, 90th percentile (ms) | workers waiting | "
          "tasks/s | whole command (s) |")
    print("|---|---|---|---|---|---|")
    for count, runs in figures.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"| {count} | {1000 * med['handoff_median']:.0f} | {1000 * med['handoff_p90']:.0f} | "
              f"{100 * med['waiting']:.0f}% | {med['rate']:.1f} | {med['wall']:.1f} |")


if __name__ == "__main__":
    main()
