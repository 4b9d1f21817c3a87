"""The default policy's dispatch rate as users get it (issue 17 item 1): whole ``mexplore
run`` commands, beside the raw mpi4py loop in the same run.

    python benchmarks/cli_rate.py                    # about a minute

1 master + 3 workers (``-n 4``), no-op Python tasks, ``random`` (an algorithm that does not
learn) and the default ``async`` policy, nothing set. Each command is timed whole (start-up,
the run, results.csv and results.h5) at two budgets, interleaved, 3 times; the rate is
(N2 - N1) / (t2 - t1) of the medians, so start-up cancels out and the end-of-run writing
of the extra tasks counts. The raw blocking mpi4py loop (``raw_mpi4py.py``: one message
per task, no bookkeeping, its idle ranks spinning) runs the same task counts in the same
rounds, for the ratio.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N1, N2, REPEATS, RANKS = 10_000, 60_000, 3, 4


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "m.py").write_text("def f(params, ctx):\n    return params['x']\n")
        (folder / "s.toml").write_text(f'[study]\nname = "rate"\n[model]\npython = "{folder / "m.py"}:f"\n'
                                       '[algorithm]\nname = "random"\n[space]\nx = { type = "float", low = 0.0, high = 1.0 }\n')
        times: dict[tuple[str, int], list[float]] = {}
        for _ in range(REPEATS):
            for budget in (N1, N2):
                shutil.rmtree(folder / "out", ignore_errors=True)
                times.setdefault(("mexplore", budget), []).append(timed(
                    [sys.executable, "-m", "mexplore", "run", str(folder / "s.toml"), "-n", str(RANKS), "-o",
                     str(folder / "out"), "--progress", "off", "--set", f"study.budget={budget}"]))
                times.setdefault(("raw", budget), []).append(timed(
                    [mpiexec, "-n", str(RANKS), sys.executable, str(HERE / "raw_mpi4py.py"), "--tasks", str(budget)]))
    rates = {name: (N2 - N1) / (statistics.median(times[name, N2]) - statistics.median(times[name, N1]))
             for name in ("mexplore", "raw")}
    print(f"| | tasks/s, whole commands ({N1:,} and {N2:,} tasks) | run of {N2:,} tasks (s) |")
    print("|---|---|---|")
    for name, label in (("mexplore", "mexplore run, default policy"), ("raw", "raw blocking mpi4py loop")):
        print(f"| {label} | {rates[name]:,.0f} | {statistics.median(times[name, N2]):.2f} |")
    print(f"\nmexplore / raw: {rates['mexplore'] / rates['raw']:.2f}")


if __name__ == "__main__":
    main()
