"""Population-based training against independent training, end to end (issue 19).

    python benchmarks/pbt.py            # a few minutes

Runs ``studies/mlp-pbt.toml`` (weights passed from parent to child tasks by reference:
``ctx.share`` -> ``parent`` -> ``ctx.get``), the same search with every task trained from
scratch (``inherit = false``), and independent training (``exploit = false``: every member
trains on alone with its first hyperparameters, the same epochs and tasks), seeds 1..5,
``-n 5``. Prints, per variant, the median over seeds of the best validation loss of the
last generation (what the population ends with) and of every task, and the largest
journal (the weights never enter it). Extra arguments go to every ``mexplore run``.
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


VARIANTS = {
    "PBT, weights passed by reference": [],
    "the same search, every task from scratch": ["--set", "algorithm.options.inherit=false"],
    "independent training (no exploit)": ["--set", "algorithm.options.exploit=false"],
}
POPULATION = 4


def run(seed: int, variant: str, folder: Path, extra: list[str]) -> tuple[float, float, int]:
    output = folder / f"{list(VARIANTS).index(variant)}-{seed}"
    command = [sys.executable, "-m", "mexplore", "run", "studies/mlp-pbt.toml", "-n", "5", "-o", str(output),
               "--progress", "off", "--set", f"algorithm.seed={seed}", *VARIANTS[variant], *extra]
    subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True, capture_output=True,
                   timeout=900)
    journal = output / "journal.jsonl"
    records = sorted((json.loads(line) for line in journal.read_text().splitlines()), key=lambda r: r["id"])
    losses = [r["objective"] for r in records if r["status"] == "ok"]
    return min(losses[-POPULATION:]), min(losses), journal.stat().st_size


def main() -> None:
    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as scratch:
        rows = []
        for variant in VARIANTS:
            runs = [run(seed, variant, Path(scratch), extra) for seed in SEEDS]
            rows.append((variant, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                         max(r[2] for r in runs)))
    print("| variant | best val_loss, last generation | best val_loss, any task | largest journal |")
    print("|---|---|---|---|")
    for name, last, best, size in rows:
        print(f"| {name} | {last:.4f} | {best:.4f} | {size / 1000:.0f} kB |")


if __name__ == "__main__":
    main()
