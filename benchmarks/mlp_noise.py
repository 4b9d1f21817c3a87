"""Noise-study benchmark (issue 6): the 6 x 5 label-noise sweep of studies/mlp-noise.toml.

    python benchmarks/mlp_noise.py            # from the repository root
    python benchmarks/mlp_noise.py --quick    # 3 epochs per training: a smoke run, not a measurement

Target: ``mexplore run studies/mlp-noise.toml -n 3`` (1 master, 2 workers) runs its 30
trainings in under 120 s of wall time on a 2-core machine, start-up and flush included.

It runs the study as shipped twice, into fresh folders under /tmp/mexplore-bench-mlp-noise:
with ``OMP_NUM_THREADS=1`` (one BLAS thread per rank, as docs/howto-noise.md advises) and
with numpy's default threads (the variables removed), so the cost of oversubscribing the
cores shows. For each it prints the wall time of the whole command, the mean task
duration, and the load average before and after (the machine may be shared); then the
accuracy curve of the first run: the mean validation accuracy per noise level with its 95%
interval over the 5 repeats (the figures ``mexplore report`` plots).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = Path("/tmp/mexplore-bench-mlp-noise")
TARGET_SECONDS = 120.0
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_study(name: str, one_thread: bool, overrides: list[str]) -> tuple[Path, float]:
    """``mexplore run studies/mlp-noise.toml -n 3`` into ROOT/name; its output and wall time."""
    output = ROOT / name
    shutil.rmtree(output, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["MEXPLORE_LOCAL_DIR"] = str(ROOT / "local")
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "mexplore", "run", "studies/mlp-noise.toml", "-n", "3",
               "-o", str(output), "--progress", "off"]
    for override in overrides:
        command += ["--set", override]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return output, time.perf_counter() - started


def main() -> None:
    import pandas as pd

    from mexplore.report.tables import sweep_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs per training (a smoke run)")
    args = parser.parse_args()
    overrides = ["space.epochs=3"] if args.quick else []

    print(f"{'variant':<22} {'wall s':>7} {'task s':>7} {'load before':>12} {'load after':>11}")
    outputs = []
    for name, one_thread in (("one-thread", True), ("default-threads", False)):
        before = os.getloadavg()[0]
        output, wall = run_study(name, one_thread, overrides)
        table = pd.read_csv(output / "results.csv")
        assert len(table) == 30 and set(table.status) == {"ok"}, table.status.value_counts()
        target = "ok" if wall < TARGET_SECONDS else f"over the {TARGET_SECONDS:.0f} s target"
        print(f"{name:<22} {wall:>7.1f} {table.duration.mean():>7.2f} {before:>12.2f} "
              f"{os.getloadavg()[0]:>11.2f}  {target}")
        outputs.append(table)

    curve = sweep_table(outputs[0], "val_accuracy", "p:label_noise")
    print("\nvalidation accuracy (one-thread run): mean and 95% interval over the repeats")
    print(curve[["p:label_noise", "n", "mean", "low", "high"]].to_string(index=False, float_format="%.3f"))
    shutil.rmtree(ROOT)


if __name__ == "__main__":
    main()
