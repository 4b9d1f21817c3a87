"""Many real ranks on this machine (issue 17 item 3): ``mexplore run -n N`` with sleep tasks.

    python benchmarks/many_ranks.py                  # 32, 64 and 128 ranks on this machine's cores
    python benchmarks/many_ranks.py --ranks 256 --budget 1024

Each run is the default policy, end to end through the CLI, with tasks that sleep
``--seconds`` (so the workers hold no core while they run). Reported per rank count:
whether the budget was met exactly (ids unique, all ``ok``), the time to the first result
and until every worker had started its first task (from the command's start: the
start-up of N Python processes on few cores is most of it), the whole run, and the CPU
all processes used against the wall time: sleeping workers and idle ranks that do not
spin keep it low. Each rank count also runs with one task per worker: the difference
between the two runs is the steady state without the start-up, and its CPU per wall
second is what N ranks cost while the tasks sleep (the idle cost). ``--imports`` lists the
modules a worker rank imported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "import time\n\ndef nap(params, ctx):\n    time.sleep(params['seconds'])\n    return params['x']\n"


def run(ranks: int, budget: int, seconds: float, folder: Path) -> dict[str, float]:
    (folder / "model.py").write_text(MODEL)
    study = folder / "study.toml"
    study.write_text(f'[study]\nname = "many"\nbudget = {budget}\n[model]\npython = "{folder / "model.py"}:nap"\n'
                     f'[space]\nx = {{ type = "float", low = 0.0, high = 1.0 }}\nseconds = {seconds}\n')
    output = folder / "out"
    shutil.rmtree(output, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    subprocess.run([sys.executable, "-m", "mexplore", "run", str(study), "-n", str(ranks), "-o", str(output),
                    "--progress", "off"], check=True, capture_output=True,
                   env={**os.environ, "MEXPLORE_LOCAL_DIR": str(folder / "local")})
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = [json.loads(line) for line in (output / "journal.jsonl").read_text().splitlines() if line.strip()]
    ids = [r["id"] for r in records]
    first_task = {}
    for record in records:
        first_task[record["rank"]] = min(first_task.get(record["rank"], record["started"]), record["started"])
    return {
        "exact": len(ids) == budget == len(set(ids)) and all(r["status"] == "ok" for r in records),
        "first_result": min(r["ended"] for r in records) - started,
        "all_busy": max(first_task.values()) - started if len(first_task) == ranks - 1 else float("nan"),
        "wall": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def worker_imports(folder: Path) -> list[str]:
    """The top-level modules a worker rank (rank 1) imported, from ``-X importtime``."""
    (folder / "model.py").write_text(MODEL)
    study = folder / "study.toml"
    study.write_text(f'[study]\nname = "imports"\nbudget = 4\n[model]\npython = "{folder / "model.py"}:nap"\n'
                     '[space]\nx = { type = "float", low = 0.0, high = 1.0 }\nseconds = 0.0\n')
    mpiexec = Path(sys.executable).parent / "mpiexec"
    subprocess.run([str(mpiexec), "-n", "2", "-errfile-pattern", str(folder / "err-%r.txt"), sys.executable,
                    "-X", "importtime", "-m", "mexplore", "run", str(study), "-o", str(folder / "imports-out"),
                    "--progress", "off"], check=True, capture_output=True,
                   env={**os.environ, "MEXPLORE_LOCAL_DIR": str(folder / "local")})
    names = set()
    for line in (folder / "err-1.txt").read_text().splitlines():
        if line.startswith("import time:") and "|" in line and not line.rstrip().endswith("imported package"):
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return sorted(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--budget", type=int, default=0, help="tasks per run (default: 4 per worker)")
    parser.add_argument("--seconds", type=float, default=0.5, help="each task's sleep")
    parser.add_argument("--imports", action="store_true", help="also list the modules a worker imports")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; tasks sleep {args.seconds} s\n")
    print("| ranks | tasks | exact | first result (s) | all workers busy (s) | run (s) | CPU (s) | "
          "cores used, steady state |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in args.ranks:
            budget = args.budget or 4 * (ranks - 1)
            start_up = run(ranks, ranks - 1, args.seconds, Path(tmp))  # one task per worker
            figures = run(ranks, budget, args.seconds, Path(tmp))
            steady = (figures["cpu"] - start_up["cpu"]) / max(figures["wall"] - start_up["wall"], 1e-9)
            print(f"| {ranks} | {budget} | {'yes' if figures['exact'] and start_up['exact'] else 'NO'} | "
                  f"{figures['first_result']:.1f} | {figures['all_busy']:.1f} | {figures['wall']:.1f} | "
                  f"{figures['cpu']:.1f} | {steady:.2f} |")
        if args.imports:
            modules = worker_imports(Path(tmp))
            heavy = sorted(set(modules) & {"numpy", "pandas", "optuna", "matplotlib", "scipy", "h5py", "pydantic"})
            print(f"\nA worker rank imported {len(modules)} top-level modules; of the heavy ones: {heavy or 'none'}")
            print(" ".join(name for name in modules if not name.startswith("_")))


if __name__ == "__main__":
    main()
