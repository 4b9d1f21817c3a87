"""Tasks of several ranks, end to end through ``mexplore run`` (issue 14's targets).

    python benchmarks/parallel_tasks.py [--quick]

Two measurements, each with the default policy, real MPI ranks, timings from the journal:

1. **Packing.** 8 worker slots (``-n 9``), a random search whose tasks need 1, 2 or 4
   ranks (``ranks = "{n}"``, chosen by the algorithm) and sleep 0.2-0.6 s. Slot
   utilization is slot-seconds of the tasks over 8 x the makespan (first start to last
   end); against "ideal packing" it is divided by the best utilization any schedule could
   reach, whose makespan is at least max(slot-seconds / 8, longest task). The target is
   >= 90 % of ideal.
2. **Start-up of a 4-rank task.** No-op Python tasks of 4 ranks (``-n 5``: each takes
   every slot, so they run one after the other) against no-op tasks of 1 rank on one
   worker (``-n 2``); per task, the makespan over the task count. The difference is what
   the communicator (``MPI_Comm_create_group``, freed after) and the 4-way hand-off cost.
   The target is <= 5 ms. Runs alternate, ``repeats`` times; medians are shown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PYTHON = sys.executable

MODEL = '''
import random
import time


def sleepy(params, ctx):
    """Every rank sleeps the task's seconds (seeded by its id), as a parallel model would work."""
    time.sleep(random.Random(ctx.task_id).uniform(0.2, 0.6))
    return params["x"]


def noop(params, ctx):
    return params["x"]
'''


def study(folder: Path, model: str, budget: int, ranks: str, sizes: tuple[int, ...]) -> Path:
    (folder / "bench_model.py").write_text(MODEL)
    size_line = f"n = {{ type = \"categorical\", choices = {list(sizes)} }}" if len(sizes) > 1 else f"n = {sizes[0]}"
    path = folder / "study.toml"
    path.write_text(f"""[study]
name = "parallel-bench"
budget = {budget}
output = "out"

[model]
python = "{folder / 'bench_model.py'}:{model}"
ranks = {ranks}

[algorithm]
name = "random"
seed = 7

[space]
x = {{ type = "float", low = 0.0, high = 1.0 }}
{size_line}
""")
    return path


def run(path: Path, ranks: int) -> list[dict]:
    output = path.parent / "out"
    subprocess.run(["rm", "-rf", str(output)], check=True)
    done = subprocess.run([PYTHON, "-m", "mexplore", "run", str(path), "-n", str(ranks), "--progress", "off"],
                          cwd=path.parent, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"mexplore run failed:\n{done.stderr}")
    return [json.loads(line) for line in (output / "journal.jsonl").read_text().splitlines() if line.strip()]


def packing(records: list[dict], slots: int) -> tuple[float, float]:
    """(slot utilization, share of the ideal packing's utilization)."""
    start = min(r["started"] for r in records)
    makespan = max(r["ended"] for r in records) - start
    work = sum(len(r.get("slots") or [r["rank"]]) * (r["ended"] - r["started"]) for r in records)
    longest = max(r["ended"] - r["started"] for r in records)
    best_makespan = max(work / slots, longest)
    return work / (slots * makespan), best_makespan / makespan


def per_task(records: list[dict]) -> float:
    return (max(r["ended"] for r in records) - min(r["started"] for r in records)) / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, smaller budgets")
    args = parser.parse_args()
    repeats, budget, noops = (1, 40, 200) if args.quick else (3, 120, 1000)
    with tempfile.TemporaryDirectory(prefix="mexplore-parallel-bench-") as folder:
        root = Path(folder)
        for name in ("mix", "four", "one"):
            (root / name).mkdir()
        mix = study(root / "mix", "sleepy", budget, '"{n}"', (1, 2, 4))
        four = study(root / "four", "noop", noops, "4", (4,))
        one = study(root / "one", "noop", noops, '"{n}"', (1,))
        utilization, ideal, four_ms, one_ms = [], [], [], []
        for _ in range(repeats):
            used, share = packing(run(mix, 9), 8)
            utilization.append(used)
            ideal.append(share)
            four_ms.append(per_task(run(four, 5)) * 1e3)
            one_ms.append(per_task(run(one, 2)) * 1e3)
    median = statistics.median
    print(f"packing, 8 slots, {budget} tasks of 1/2/4 ranks, 0.2-0.6 s: slot utilization {median(utilization):.1%}, "
          f"{median(ideal):.1%} of ideal packing (runs: {', '.join(f'{x:.1%}' for x in ideal)})")
    print(f"no-op task, per task: 4 ranks {median(four_ms):.2f} ms, 1 rank {median(one_ms):.2f} ms, "
          f"start-up of a 4-rank task {median(four_ms) - median(one_ms):+.2f} ms over a 1-rank one")


if __name__ == "__main__":
    main()
