"""Active learning against its baseline, end to end through ``mexplore run`` (issue 19).

    python benchmarks/active_learning.py            # about a minute

Runs ``studies/active-learning.toml`` (a surrogate retrained on its own worker every 8
results steers 500 waiting candidates) and the same study with ``steer = false`` (the
same candidates in random order), for seeds 1..5, 4 workers (``-n 5``: 3 simulation
workers and the trainer), each simulation sleeping 20 ms. Prints, per variant, the median
over seeds of the best cost after 16, 32 and 64 simulations, and of the simulations it
took to come within 0.01 of the landscape's minimum (-0.0161, from a 2001 x 2001 grid).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEEDS = range(1, 6)
MINIMUM = -0.0161
WITHIN = 0.01


def run(seed: int, steer: bool, folder: Path) -> list[float]:
    """The costs of the simulations in the order they finished."""
    output = folder / f"{'steer' if steer else 'random'}-{seed}"
    command = [sys.executable, "-m", "mexplore", "run", "studies/active-learning.toml", "-n", "5", "-o", str(output),
               "--progress", "off", "--set", f"algorithm.seed={seed}",
               "--set", f"algorithm.options.steer={'true' if steer else 'false'}"]
    env = {**os.environ, "SIMULATE_SECONDS": "0.02"}
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    records = [json.loads(line) for line in (output / "journal.jsonl").read_text().splitlines()]
    simulations = sorted((r for r in records if "kind" not in r), key=lambda r: r["ended"])
    return [r["objective"] for r in simulations if r["status"] == "ok"]


def best_after(costs: list[float], n: int) -> float:
    return min(costs[:n])


def to_reach(costs: list[float]) -> int | None:
    best = float("inf")
    for count, cost in enumerate(costs, 1):
        best = min(best, cost)
        if best <= MINIMUM + WITHIN:
            return count
    return None


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        rows = []
        for steer in (True, False):
            runs = [run(seed, steer, folder) for seed in SEEDS]
            reached = [to_reach(costs) for costs in runs]
            rows.append((
                "surrogate (every 8 results)" if steer else "random order (baseline)",
                *(statistics.median(best_after(costs, n) for costs in runs) for n in (16, 32, 64)),
                statistics.median(r if r is not None else 65 for r in reached),
                sum(r is not None for r in reached),
            ))
    print("| variant | best after 16 | after 32 | after 64 | simulations to within 0.01 (median) | seeds that got there |")
    print("|---|---|---|---|---|---|")
    for name, b16, b32, b64, reach, got in rows:
        print(f"| {name} | {b16:.4f} | {b32:.4f} | {b64:.4f} | {reach:g} | {got} of {len(SEEDS)} |")


if __name__ == "__main__":
    main()
