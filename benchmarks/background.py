"""The algorithm off the master loop (issue 17 item 4): ``[algorithm] background`` off and on.

8 workers run 100 ms tasks for ``optuna.tpe`` warm-started (``[algorithm] from``) with 5,000
results of a 6-parameter problem, so each proposal costs TPE about 44 ms: the algorithm,
not the workers, limits the run. Each setting runs ``--repeats`` times, interleaved, end
to end through ``mexplore run -n 9``. From each run's results.csv:

- hand-off: the gap between a task's end and the start of the next task on the same
  worker (median and 90th percentile): how long a worker waited for its next proposal;
- waiting share: 1 - busy time / (8 x the span from the first start to the last end);
- tasks/s over that span, and the whole command's wall time.

    .venv/bin/python benchmarks/background.py               # about 2 minutes
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


def study(folder: Path, earlier: Path, budget: int, background: bool) -> Path:
    (folder / "model.py").write_text("import time\n\ndef f(params, ctx):\n    time.sleep(0.1)\n"
                                     "    return sum((params[f'x{i}'] - 0.3) ** 2 for i in range(6))\n")
    space = "\n".join(f'x{i} = {{ type = "float", low = 0.0, high = 1.0 }}' for i in range(DIMENSION))
    path = folder / "study.toml"
    path.write_text(f"""[study]
name = "background"
objective = "value"
budget = {budget}

[model]
python = "{folder / 'model.py'}:f"

[algorithm]
name = "optuna.tpe"
seed = 1
background = {'true' if background else 'false'}
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
    gaps = []
    for _, tasks in frame.groupby("rank"):
        gaps += (tasks["started"].to_numpy()[1:] - tasks["ended"].to_numpy()[:-1]).tolist()
    span = frame["ended"].max() - frame["started"].min()
    return {"handoff_median": float(np.median(gaps)), "handoff_p90": float(np.percentile(gaps, 90)),
            "waiting": 1 - float(frame["duration"].sum()) / (WORKERS * span),
            "rate": len(frame) / span, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--budget", type=int, default=80)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mexplore-background-") as scratch:
        root = Path(scratch)
        earlier = earlier_run(root / "earlier")
        figures: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for repeat in range(args.repeats):
            for background in (False, True):
                folder = root / f"{'on' if background else 'off'}-{repeat}"
                folder.mkdir()
                figures[background].append(measure(study(folder, earlier, args.budget, background), folder / "out"))
                print(f"background={background} repeat {repeat}: {figures[background][-1]}", file=sys.stderr)
    print(f"optuna.tpe warm-started with {WARM:,} results, {WORKERS} workers, 100 ms tasks, {args.budget} tasks, "
          f"median of {args.repeats} runs\n")
    print("| `background` | hand-off, median (ms) | hand-off, 90th percentile (ms) | workers waiting | "
          "tasks/s | whole command (s) |")
    print("|---|---|---|---|---|---|")
    for background, runs in figures.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"| {'true' if background else 'false'} | {1000 * med['handoff_median']:.0f} | "
              f"{1000 * med['handoff_p90']:.0f} | {100 * med['waiting']:.0f}% | {med['rate']:.1f} | {med['wall']:.1f} |")


if __name__ == "__main__":
    main()
