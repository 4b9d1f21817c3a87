"""What the end of a run costs (issue 17 item 5): results.csv and results.h5 from the journal.

    python benchmarks/end_of_run.py                       # 10^4, 10^5 and 10^6 tasks, about a minute
    python benchmarks/end_of_run.py --tasks 10000 100000
    git archive <commit> src | tar -x -C /tmp/before      # the earlier code, untouched
    python benchmarks/end_of_run.py --before /tmp/before/src   # both, interleaved, on the same journals

A journal of N finished tasks (4 float parameters, a categorical, a constant, 2 metrics,
timings, as ``mexplore run`` writes them) is written once; then the steps the master
takes at the end of every run are timed, as it calls them: ``results_frame`` (one read of
the journal), then ``write_results`` (results.csv and results.h5 together; an earlier tree
without it writes one after the other). Reported: seconds for each and µs per task in all, best of 3, so the growth with N shows. With
``--before``, each timing also runs the earlier code (a process whose ``PYTHONPATH`` is that
``src``), alternating with this one, so both meet the same noise of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mexplore.store.journal import JOURNAL_NAME, JournalWriter
from mexplore.store.results_file import write_results_h5
from mexplore.store.table import results_frame, write_results_csv
from mexplore.types import Result, Status


def write_journal(output: Path, tasks: int) -> None:
    rng = random.Random(17)
    journal = JournalWriter.open(output / JOURNAL_NAME)
    batch = []
    for task_id in range(tasks):
        params = {"lr": rng.random(), "units": rng.randrange(16, 256), "drop": rng.random(), "wd": rng.random(),
                  "act": rng.choice(["relu", "tanh"]), "epochs": 20}
        batch.append(Result(task_id=task_id, status=Status.OK, params=params, objective=rng.random(),
                            metrics={"acc": rng.random(), "seconds": rng.random() * 10},
                            started=1e9 + task_id, ended=1e9 + task_id + 1, rank=1 + task_id % 64, host="node"))
        if len(batch) == 1000:
            journal.append(batch)
            batch = []
    journal.append(batch)
    journal.close()


def timed(output: Path) -> dict[str, float]:
    started = time.perf_counter()
    frame = results_frame(output / JOURNAL_NAME, ("objective",), ("minimize",))
    read = time.perf_counter()
    try:
        from mexplore.store.results_file import write_results
    except ImportError:  # an earlier tree: the two files one after the other
        write_results_csv(frame, output)
        write_results_h5(output, frame)
    else:
        write_results(output, frame)
    written = time.perf_counter()
    return {"read": read - started, "write": written - read, "all": written - started}


def timed_by(src: Path, output: Path) -> dict[str, float]:
    """:func:`timed` in a fresh process running the code of ``src``, its libraries imported
    first (the master has pandas and h5py loaded by the end of a run)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = (f"import sys, json, pandas, h5py, orjson; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import end_of_run; "
            f"print(json.dumps(end_of_run.timed(end_of_run.Path({str(output)!r}))))")
    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                     text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--before", type=Path, help="src/ of the earlier code, timed beside this one")
    args = parser.parse_args()
    sides = {"now": Path(__file__).resolve().parents[1] / "src"} | ({"before": args.before} if args.before else {})
    side_column = "| code " if args.before else ""
    print(f"{side_column}| tasks | read the journal (s) | results.csv and results.h5 (s) | all (s) | µs per task |")
    print(f"{'|---' if args.before else ''}|---|---|---|---|---|")
    for tasks in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            output = Path(tmp)
            write_journal(output, tasks)
            runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
            for _ in range(3):
                for side, src in sides.items():
                    runs[side].append(timed_by(src, output))
            for side in sides:
                best = min(runs[side], key=lambda figures: figures["all"])
                label = f"| {side} " if args.before else ""
                print(f"{label}| {tasks:,} | {best['read']:.2f} | {best['write']:.2f} | "
                      f"{best['all']:.2f} | {best['all'] / tasks * 1e6:.1f} |")


if __name__ == "__main__":
    main()
