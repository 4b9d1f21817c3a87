"""Per-task overhead of mexplore's command runner against a bare ``subprocess.run``.

    python benchmarks/command_overhead.py [--tasks 200]

Both run the same tiny program (``sh -c 'echo MEXPLORE_RESULT 1'``), interleaved in one
process so drift in the machine hits both alike. mexplore's runner also makes the task
folder, writes the params file, starts the program in its own process group, copies both
streams to bounded files, reads the result and kills what the program left behind. The
figure is the median time per task of each, and their difference (target: < 5 ms).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from mexplore.models import ModelSpec, build_model
from mexplore.types import Status, Task

PROGRAM = ("sh", "-c", "echo MEXPLORE_RESULT 1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as local:
        model = build_model(ModelSpec(("objective",), local, command=PROGRAM), 1, "bench", lambda *a: None)
        bare, runner = [], []
        for task_id in range(args.tasks):
            started = time.perf_counter()
            subprocess.run(PROGRAM, capture_output=True, check=True)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = model(Task(task_id, {"x": task_id}))
            runner.append(time.perf_counter() - started)
            assert result.status is Status.OK, result.error
    bare_ms, runner_ms = statistics.median(bare) * 1e3, statistics.median(runner) * 1e3
    print(f"| bare subprocess.run | {bare_ms:.2f} ms |")
    print(f"| mexplore command runner | {runner_ms:.2f} ms |")
    print(f"| overhead | {runner_ms - bare_ms:.2f} ms (target < 5 ms) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
