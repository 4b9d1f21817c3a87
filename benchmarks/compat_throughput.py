"""What the EMEWS faces cost: tasks per second through ``mexplore run`` when the algorithm
is an EQ/Py module, a program over the JSON-lines protocol (Python or R client), an
imperative Python function, or a points file (issue 15).

    python benchmarks/compat_throughput.py            # about 2 minutes; R rows need Rscript + jsonlite

Every algorithm proposes generations of 16 points and waits for each generation's results
before the next (what a GA does), except ``points``, which streams a file and learns
nothing (so the default policy queues tasks ahead). The model is a no-op Python function,
so the figures are the hand-off costs alone. Each configuration runs end to end through
the CLI (1 master + 2 workers, ``-n 3``) at two budgets, interleaved, 3 times; tasks/s is
(N2 - N1) / (t2 - t1) from the medians, so start-up (MPI, imports, R) cancels out.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N1, N2, REPEATS = 320, 4800, 3

MODEL = "def noop(params, ctx):\n    return params['x']\n"

IMPERATIVE = '''
def run(queue, space, options):
    i = 0
    while True:
        queue.map([{"x": float(i + j)} for j in range(16)])
        i += 16
'''

EQPY = '''
import eqpy

def run():
    i = 0
    while True:
        eqpy.OUT_put(";".join('{"x": %d.0}' % (i + j) for j in range(16)))
        eqpy.IN_get()
        i += 16
'''

PYTHON_CLIENT = '''
from mexplore.compat.client import Session

session = Session()
i = 0
while session.map([{"x": float(i + j)} for j in range(16)]) is not None:
    i += 16
'''

R_CLIENT = '''
source(Sys.getenv("MEXPLORE_R_CLIENT"))
study <- mx_start()
i <- 0
repeat {
  if (is.null(mx_map(lapply(0:15, function(j) list(x = i + j))))) break
  i <- i + 16
}
'''


def study(folder: Path, name: str, budget: int) -> Path:
    algorithm = {
        "points": f'name = "points"\nfile = "{folder / "points.jsonl"}"',
        "imperative": f'name = "{folder / "imperative.py"}:run"',
        "eqpy": f'eqpy = "{folder / "me_eqpy.py"}"',
        "protocol, Python client": f'command = ["{{python}}", "{folder / "client.py"}"]',
        "protocol, R client": f'command = ["Rscript", "{folder / "client.R"}"]',
    }[name]
    path = folder / f"{name.replace(', ', '-').replace(' ', '-')}-{budget}.toml"
    path.write_text(f'[study]\nname = "bench"\nbudget = {budget}\n[model]\npython = "{folder / "model.py"}:noop"\n'
                    f'[algorithm]\n{algorithm}\n[space]\nx = {{ type = "float", low = 0.0, high = 1e9 }}\n')
    return path


def timed(path: Path, output: Path) -> float:
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mexplore", "run", str(path), "-n", "3", "-o", str(output),
                    "--progress", "off"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    names = ["points", "imperative", "eqpy", "protocol, Python client"]
    r_ok = shutil.which("Rscript") and subprocess.run(["Rscript", "-e", "library(jsonlite)"],
                                                      capture_output=True).returncode == 0
    if r_ok:
        names.append("protocol, R client")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "model.py").write_text(MODEL)
        (folder / "imperative.py").write_text(IMPERATIVE)
        (folder / "me_eqpy.py").write_text(EQPY)
        (folder / "client.py").write_text(PYTHON_CLIENT)
        (folder / "client.R").write_text(R_CLIENT)
        (folder / "points.jsonl").write_text("".join(f'{{"x": {i}.0}}\n' for i in range(N2)))
        times: dict[tuple[str, int], list[float]] = {}
        for _ in range(REPEATS):
            for name in names:
                for budget in (N1, N2):
                    times.setdefault((name, budget), []).append(timed(study(folder, name, budget), folder / "out"))
    print(f"| algorithm | tasks/s | run of {N1} tasks (s) | run of {N2} tasks (s) |")
    print("|---|---|---|---|")
    for name in names:
        t1, t2 = statistics.median(times[name, N1]), statistics.median(times[name, N2])
        print(f"| {name} | {(N2 - N1) / (t2 - t1):,.0f} | {t1:.2f} | {t2:.2f} |")


if __name__ == "__main__":
    main()
