"""What ``ctx.load`` costs: a parent task saves an array of 1, 10 or 100 MB on its node, and
children read it by the parent's id (issue 19, data between tasks).

    python benchmarks/load_outputs.py            # about a minute

One run, end to end through ``mexplore run -n 4`` (1 master + 3 workers on one node). For
each size, three times, a parent task saves the array (``ctx.save``); then six children
are submitted one at a time, and each times its ``ctx.load``. Each child's load is classed by where the data
came from, which follows from the ranks and the order (the journal says which rank ran
what):

- **another worker**: the first child on a rank other than the parent's; the master asks
  the parent's worker, which reads its node-local cache and sends the data over MPI
  through the master (two messages);
- **the master**: a later child on a third rank; the master kept what it forwarded;
- **its own cache**: a child on the parent's rank reads its node-local log.

A repeat load in the same task is also timed: the worker keeps what it loaded, so it costs
a dict lookup. Medians over the children of each class and size.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES_MB = (1, 10, 100)
ROUNDS = 3
CHILDREN = 6

MODEL = '''
import time

import numpy as np


def model(params, ctx):
    if params["parent"] < 0:
        ctx.save("w", np.random.default_rng(ctx.task_id).random(params["mb"] * 2**20 // 8))
        return {"objective": 0.0}
    started = time.perf_counter()
    weights = ctx.load(params["parent"], "w")
    loaded = time.perf_counter()
    ctx.load(params["parent"], "w")
    again = time.perf_counter()
    return {"objective": loaded - started, "seconds": loaded - started, "repeat": again - loaded,
            "nbytes": weights.nbytes}
'''

STEER = f'''
def steer(queue, space, options):
    for mb in {SIZES_MB!r}:
        for _ in range({ROUNDS}):
            parent = queue.submit({{"mb": mb, "parent": -1}}).result()
            for _ in range({CHILDREN}):
                queue.submit({{"mb": mb, "parent": parent.task_id}}).result()
'''


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "model.py").write_text(MODEL)
        (folder / "steer.py").write_text(STEER)
        (folder / "study.toml").write_text(f"""
[study]
name = "load-bench"
budget = {len(SIZES_MB) * ROUNDS * (CHILDREN + 1)}
output = "{folder / 'out'}"
[model]
python = "{folder / 'model.py'}:model"
[algorithm]
name = "{folder / 'steer.py'}:steer"
[space]
mb = {{ type = "int", low = 1, high = 1000 }}
parent = {{ type = "int", low = -1, high = 100000 }}
""")
        subprocess.run([sys.executable, "-m", "mexplore", "run", str(folder / "study.toml"), "-n", "4",
                        "--progress", "off"], check=True, capture_output=True, text=True)
        lines = [json.loads(line) for line in (folder / "out" / "journal.jsonl").read_text().splitlines()]
        journal_bytes = (folder / "out" / "journal.jsonl").stat().st_size
    records = sorted((r for r in lines if "id" in r), key=lambda r: r["id"])
    rank_of = {r["id"]: r["rank"] for r in records}
    timings: dict[tuple[int, str], list[float]] = {}
    repeats: list[float] = []
    seen: dict[int, set[int]] = {}
    for record in records:
        parent = record["params"]["parent"]
        if parent < 0:
            continue
        ranks = seen.setdefault(parent, set())
        if record["rank"] == rank_of[parent]:
            where = "its own cache"
        elif not ranks - {rank_of[parent]}:
            where = "another worker"
        elif record["rank"] in ranks:
            continue  # this worker holds it already: a dict lookup, timed below as the repeat
        else:
            where = "the master"
        ranks.add(record["rank"])
        timings.setdefault((record["params"]["mb"], where), []).append(record["metrics"]["seconds"])
        repeats.append(record["metrics"]["repeat"])
    print("| size | from | loads | median ms | MB/s |")
    print("|---|---|---|---|---|")
    for (mb, where), seconds in sorted(timings.items()):
        median = statistics.median(seconds)
        print(f"| {mb} MB | {where} | {len(seconds)} | {median * 1e3:.1f} | {mb / median:,.0f} |")
    print(f"\nrepeat load in the same task: median {statistics.median(repeats) * 1e6:.1f} µs; "
          f"journal: {journal_bytes / 1024:.1f} kB for {len(records)} tasks")


if __name__ == "__main__":
    main()
