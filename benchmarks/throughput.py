"""Throughput benchmark of mexplore against plain mpi4py and mpi4py.futures.

    python benchmarks/throughput.py            # the full run (about 4 minutes)
    python benchmarks/throughput.py --quick    # a smoke run (under a minute)
    git archive <commit> src | tar -x -C /tmp/before
    python benchmarks/throughput.py --before /tmp/before/src   # and that code's no-op rows, same rounds

Every variant runs as its own ``mpiexec`` job (with a timeout), at 1 worker (``-n 2``) and
3 workers (``-n 4``) unless said otherwise, and the script prints one Markdown table. On a
small shared machine absolute timings drift from run to run: compare the ratios printed in
the same table, not figures from different runs.

Figures (see ``docs/benchmarks.md``):

* **tasks/s** = tasks / (max ended - min started) over the workers' own timestamps taken
  around each model call (:mod:`timing`); launch, imports and shut-down are left out.
* **utilization** = sum of (ended - started) / (workers x (max ended - min started)).
* **CPU, whole job** = user + sys time of the whole job (mpiexec, its proxy and every rank,
  from ``getrusage(RUSAGE_CHILDREN)`` before and after) / (wall time x ranks).
* **CPU, mid-run window** = the same share over a window while tasks run (from /proc), so
  that start-up and shut-down are left out.
* **wall** = the whole command, launch to exit.

The no-op and 5-15 ms variants run ``repeats`` times, interleaved so that drift in the
machine hits them all alike; the table shows the median run and the range.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from timing import summarize  # beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
MPIEXEC = str(BIN / "mpiexec")
MEXPLORE = str(BIN / "mexplore")
QUICKSTART = REPO / "studies" / "quickstart.toml"

TARGET_TASKS_PER_S = 25_000
TARGET_VS_FUTURES = 4.0
TARGET_VS_RAW = 0.5
TARGET_UTILIZATION = 0.97
TARGET_IDLE_CPU = 0.10
TARGET_HELP_S = 0.3
TARGET_FIRST_RESULT_S = 2.0


@dataclass(frozen=True)
class Sizes:
    """How much work each variant does; ``quick`` is a smoke run, not a measurement."""

    raw: int               # no-op tasks, raw mpi4py loop
    futures: int           # no-op tasks, mpi4py.futures
    mexplore: int          # no-op tasks, mexplore (each policy)
    sleep: int             # 5-15 ms tasks, 3 workers
    idle_per_worker: int   # 1 s tasks per worker, 7 workers
    repeats: int           # runs of each no-op and 5-15 ms variant; the median is shown
    help_repeats: int      # runs of `mexplore --help`; the median is shown
    timeout: float         # seconds allowed to one mpiexec job


FULL = Sizes(raw=100_000, futures=5_000, mexplore=50_000, sleep=1_500, idle_per_worker=3,
             repeats=3, help_repeats=5, timeout=180)
QUICK = Sizes(raw=5_000, futures=500, mexplore=2_000, sleep=300, idle_per_worker=2,
              repeats=1, help_repeats=3, timeout=60)


# --------------------------------------------------------------------------- running jobs


@dataclass
class Job:
    """One finished (or killed) command: its exit, output, wall time and CPU time."""

    argv: list[str]
    returncode: int | None   # None: killed at the timeout
    stdout: str
    stderr: str
    wall: float              # seconds, launch to exit
    cpu: float               # user + sys seconds of the command and all its descendants

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        return "timed out" if self.returncode is None else f"exit {self.returncode}"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


Watch = Callable[[subprocess.Popen], None]
"""Called once the command has started, while it runs (e.g. to sample its CPU time)."""


def run_job(argv: Sequence[str], timeout: float, cwd: Path = REPO, watch: Watch | None = None,
            env: dict[str, str] | None = None) -> Job:
    """Run ``argv`` (in ``env``, else this environment); past ``timeout``, stop it and every
    process it started (:func:`stop_tree`).

    Output goes to temporary files, so a ``watch`` that takes its time cannot block the
    command on a full pipe.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=err, text=True, env=env)
        if watch is not None:
            watch(process)
        try:
            returncode: int | None = process.wait(timeout=max(timeout - (time.perf_counter() - started), 1))
        except subprocess.TimeoutExpired:
            stop_tree(process)
            returncode = None
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        out.seek(0)
        err.seek(0)
        job = Job(list(argv), returncode, out.read(), err.read(), wall, cpu)
    if not job.ok:
        tail = "\n".join(job.stderr.splitlines()[-15:])
        print(f"benchmark: {' '.join(job.argv)}: {job.why()}\n{tail}", file=sys.stderr)
    return job


def _proc_stats() -> dict[int, list[str]]:
    """``/proc/PID/stat`` of every process, as the fields after the command name."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                    stats[int(entry.name)] = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
    return stats


def process_tree(root: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """``root`` and its live descendants (mpiexec, its proxy, the ranks: hydra gives each
    of them a session of its own, so a process group or session does not cover them)."""
    stats = _proc_stats() if stats is None else stats
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: the parent's pid
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + sys seconds so far of ``root`` and its live descendants."""
    stats = _proc_stats()
    ticks = sum(int(stats[pid][11]) + int(stats[pid][12]) for pid in process_tree(root, stats) if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_tree(process: subprocess.Popen) -> None:
    """SIGTERM to mpiexec (it forwards it to the ranks); after 5 s, SIGKILL to whatever of
    its process tree is left."""
    tree = process_tree(process.pid)
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def wait_for_line(path: Path, process: subprocess.Popen, timeout: float) -> float | None:
    """Poll until ``path`` holds a whole line; the time it did (perf_counter), or None."""
    deadline = time.perf_counter() + timeout
    while process.poll() is None and time.perf_counter() < deadline:
        try:
            with open(path, "rb") as lines:
                if b"\n" in lines.read(65536):
                    return time.perf_counter()
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    return None


@dataclass
class SteadyCpu:
    """A :data:`Watch`: the job's CPU share over ``window`` seconds in mid-run.

    The window opens 0.1 s after ``journal`` gets its first line (tasks are running and
    results coming back), or, without a journal, ``delay`` seconds after launch. ``share``
    is CPU seconds of all the job's processes / (window x ranks); None if the job ended
    before the window closed.
    """

    ranks: int
    window: float
    journal: Path | None = None
    delay: float = 0.0
    share: float | None = None

    def __call__(self, process: subprocess.Popen) -> None:
        if self.journal is not None:
            if wait_for_line(self.journal, process, timeout=120) is None:
                return
            time.sleep(0.1)
        else:
            time.sleep(self.delay)
        cpu_before, opened = tree_cpu_seconds(process.pid), time.perf_counter()
        time.sleep(self.window)
        cpu, closed = tree_cpu_seconds(process.pid), time.perf_counter()
        if process.poll() is None:
            self.share = (cpu - cpu_before) / ((closed - opened) * self.ranks)


# --------------------------------------------------------------------------- one measurement


@dataclass
class Measure:
    """What one variant gave: the :func:`timing.summarize` figures plus the job's costs."""

    tasks_per_s: float = float("nan")
    utilization: float = float("nan")
    span: float = float("nan")
    wall: float = float("nan")
    cpu: float = float("nan")
    failed: str = ""

    @classmethod
    def of(cls, job: Job, summary: dict | None) -> Measure:
        if not job.ok or summary is None:
            return cls(wall=job.wall, cpu=job.cpu, failed=job.why() if not job.ok else "no timings")
        return cls(summary["tasks_per_s"], summary["utilization"], summary["span"], job.wall, job.cpu)


def _summary_line(job: Job) -> dict | None:
    """The JSON summary a helper script prints as its last stdout line."""
    lines = job.stdout.strip().splitlines()
    return json.loads(lines[-1]) if job.ok and lines else None


def raw_mpi4py(workers: int, tasks: int, timeout: float, model: str = "noop",
               seconds: float | None = None, watch: Watch | None = None) -> Measure:
    """The blocking send/recv loop of ``raw_mpi4py.py``."""
    argv = [MPIEXEC, "-n", str(workers + 1), PYTHON, str(HERE / "raw_mpi4py.py"),
            "--tasks", str(tasks), "--model", model]
    if seconds is not None:
        argv += ["--seconds", str(seconds)]
    job = run_job(argv, timeout, watch=watch)
    return Measure.of(job, _summary_line(job))


def futures(workers: int, tasks: int, timeout: float) -> Measure:
    """``MPIPoolExecutor.map`` of no-op tasks (``futures_bench.py``)."""
    argv = [MPIEXEC, "-n", str(workers + 1), PYTHON, "-m", "mpi4py.futures",
            str(HERE / "futures_bench.py"), "--tasks", str(tasks)]
    job = run_job(argv, timeout)
    return Measure.of(job, _summary_line(job))


@dataclass(frozen=True)
class StudySpec:
    """A benchmark study: random search over one float, ``budget = tasks``."""

    tasks: int
    policy: str
    model: str = "noop"
    backlog: int = 32
    seconds: float | None = None  # a constant `seconds` parameter (models.sleep sleeps it)

    @property
    def name(self) -> str:
        return f"bench-{self.model}-{self.policy}{self.backlog}"

    def write(self, folder: Path) -> Path:
        """Write the TOML into ``folder``; the study's output is ``folder / name``."""
        constant = "" if self.seconds is None else f"seconds = {self.seconds!r}\n"
        path = folder / f"{self.name}.toml"
        path.write_text(
            f'[study]\nname = "{self.name}"\nbudget = {self.tasks}\nobjective = "objective"\n'
            f'output = "{folder / self.name}"\n\n'
            f'[model]\npython = "{HERE / "models.py"}:{self.model}"\n\n'
            f'[algorithm]\nname = "random"\npolicy = "{self.policy}"\nbacklog = {self.backlog}\n'
            f'seed = 1\n\n'
            f'[space]\nx = {{ type = "float", low = 0.0, high = 1.0 }}\n{constant}'
        )
        return path


def journal_summary(output: Path, workers: int) -> dict | None:
    """:func:`timing.summarize` of a mexplore journal's started/ended stamps."""
    journal = output / "journal.jsonl"
    if not journal.exists():
        return None
    with open(journal, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    return summarize(((r["started"], r["ended"]) for r in records), workers)


def mexplore(workers: int, spec: StudySpec, timeout: float,
             watch: Callable[[Path], Watch] | None = None, src: Path | None = None) -> Measure:
    """``mexplore run STUDY -n workers+1`` of ``spec``, in a fresh temporary directory.

    ``watch``, if given, is called with the study's output directory and returns the
    :data:`Watch` for the job. ``src``: run the mexplore of that source tree instead (an
    earlier commit's ``src``, put first on ``PYTHONPATH``).
    """
    env = None if src is None else {**os.environ, "PYTHONPATH": str(src)}
    with tempfile.TemporaryDirectory(prefix="mexplore-bench-") as tmp:
        output = Path(tmp) / spec.name
        study = spec.write(Path(tmp))
        job = run_job([MEXPLORE, "run", str(study), "-n", str(workers + 1), "--progress", "off"],
                      timeout, cwd=Path(tmp), watch=None if watch is None else watch(output), env=env)
        return Measure.of(job, journal_summary(output, workers))


def help_seconds(repeats: int) -> list[float]:
    """Wall times of ``mexplore --help``."""
    return [run_job([MEXPLORE, "--help"], 30).wall for _ in range(repeats)]


def first_result_seconds(timeout: float) -> float | None:
    """Seconds from launching the quickstart at ``-n 2`` (from the repository root) to the
    first line of its journal; the study then runs to its end (it is short)."""
    with tempfile.TemporaryDirectory(prefix="mexplore-bench-") as tmp:
        output = Path(tmp) / "out"
        seen: list[float | None] = []

        def watch(process: subprocess.Popen) -> None:
            seen.append(wait_for_line(output / "journal.jsonl", process, timeout))

        started = time.perf_counter()
        run_job([MEXPLORE, "run", str(QUICKSTART), "-n", "2", "--output", str(output),
                 "--progress", "off"], timeout, cwd=REPO, watch=watch)
        return None if not seen or seen[0] is None else seen[0] - started


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    variant: str
    workers: str
    tasks: str
    figure: str
    span: str = ""
    wall: str = ""
    target: str = ""
    met: str = ""


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "**no**")


def _seconds(value: float) -> str:
    return "" if value != value else f"{value:.2f}"


def median_of(runs: Sequence[Measure], key: Callable[[Measure], float]) -> Measure:
    """The run with the median ``key`` (failed runs dropped; if all failed, the first)."""
    good = sorted((m for m in runs if not m.failed), key=key)
    return good[len(good) // 2] if good else runs[0]


def repeated(repeats: int, measures: dict[str, Callable[[], Measure]]) -> dict[str, list[Measure]]:
    """Run every measure ``repeats`` times, interleaved, so drift in the machine hits all."""
    runs: dict[str, list[Measure]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            runs[name].append(measure())
    return runs


def _ratio(over: float, under: float) -> float:
    return over / under if under > 0 else float("nan")


def _of_n(runs: Sequence[Measure], key: Callable[[Measure], float], form: str) -> str:
    """`` (median of N: low–high)`` over the runs that did not fail; empty for one run."""
    values = sorted(key(m) for m in runs if not m.failed)
    if len(runs) < 2 or not values:
        return ""
    return f" (median of {len(runs)}: {format(values[0], form)}–{format(values[-1], form)})"


RAW, FUTURES = "raw mpi4py loop (blocking send/recv)", "mpi4py.futures (`map`, chunksize 1)"
QUEUE = "mexplore, policy `queue` (backlog 32)"
QUEUE_DEFAULT = "mexplore, policy `queue` (backlog 8, its default)"
ASYNC = "mexplore, policy `async` (default; random does not learn: tasks queued ahead)"
EARLIER = ", earlier code (--before)"


def noop_rows(sizes: Sizes, before: Path | None = None) -> list[Row]:
    """Variants a-c: no-op tasks/s at 1 and 3 workers, and mexplore's ratios to the others;
    with ``before`` (an earlier tree's ``src``), its mexplore rows too, in the same rounds."""
    timeout = sizes.timeout
    studies = {QUEUE: StudySpec(sizes.mexplore, "queue"), QUEUE_DEFAULT: StudySpec(sizes.mexplore, "queue", backlog=8),
               ASYNC: StudySpec(sizes.mexplore, "async")}
    trees = {"": None} | ({EARLIER: before} if before is not None else {})
    counts = {RAW: sizes.raw, FUTURES: sizes.futures} | {f"{name}{tree}": sizes.mexplore
                                                         for name in studies for tree in trees}
    measures: dict[str, Callable[[], Measure]] = {}
    for workers in (1, 3):
        measures |= {
            f"{RAW}|{workers}": partial(raw_mpi4py, workers, sizes.raw, timeout),
            f"{FUTURES}|{workers}": partial(futures, workers, sizes.futures, timeout),
        }
        measures |= {f"{name}{tree}|{workers}": partial(mexplore, workers, spec, timeout, src=src)
                     for name, spec in studies.items() for tree, src in trees.items()}
    runs = repeated(sizes.repeats, measures)
    medians = {key: median_of(ms, key=lambda m: m.tasks_per_s) for key, ms in runs.items()}
    rows = []
    for name in counts:
        for workers in (1, 3):
            measure = medians[f"{name}|{workers}"]
            target, met = "", None
            if name in (QUEUE, ASYNC) and workers == 3:  # ASYNC: the default policy, as users get it
                target = f"≥ {TARGET_TASKS_PER_S:,} tasks/s"
                met = measure.tasks_per_s >= TARGET_TASKS_PER_S
            spread = _of_n(runs[f"{name}|{workers}"], lambda m: m.tasks_per_s, ",.0f")
            figure = measure.failed or f"{measure.tasks_per_s:,.0f} tasks/s{spread}"
            rows.append(Row(name, str(workers), f"{counts[name]:,}", figure, _seconds(measure.span),
                            _seconds(measure.wall), target, _met(None if measure.failed else met)))
    for tree in trees:
        queue_3 = medians[f"{QUEUE}{tree}|3"].tasks_per_s
        for other, target in ((FUTURES, TARGET_VS_FUTURES), (RAW, TARGET_VS_RAW)):
            ratio = _ratio(queue_3, medians[f"{other}|3"].tasks_per_s)
            rows.append(Row(f"mexplore `queue`{tree} ÷ {other.split(' (')[0]}", "3", "", f"{ratio:.2f}×",
                            target=f"≥ {target:g}×" if not tree else "",
                            met=_met(ratio >= target) if not tree and ratio == ratio else ""))
    return rows


def sleep_rows(sizes: Sizes) -> list[Row]:
    """Variant d: utilization at 3 workers with 5-15 ms tasks: mexplore `async` (the
    target; with ``random``, which does not learn, it queues tasks ahead on each worker,
    sized by the measured task length and hand-off), and for comparison the raw loop and
    mexplore `queue` with ``backlog = 1``, which always holds one task prefetched."""
    timeout, tasks = sizes.timeout, sizes.sleep
    measures = {
        "mexplore `async` (queued ahead), sleep 5–15 ms": partial(mexplore, 3, StudySpec(tasks, "async", "sleep"), timeout),
        "raw mpi4py loop, sleep 5–15 ms": partial(raw_mpi4py, 3, tasks, timeout, "sleep"),
        "mexplore `queue` backlog 1 (always 1 prefetched), sleep 5–15 ms":
            partial(mexplore, 3, StudySpec(tasks, "queue", "sleep", backlog=1), timeout),
    }
    rows = []
    for name, runs in repeated(sizes.repeats, measures).items():
        measure = median_of(runs, key=lambda m: m.utilization)
        has_target = name.startswith("mexplore `async`")
        rows.append(Row(
            name, "3", f"{tasks:,}",
            measure.failed or f"{measure.utilization:.1%} utilization{_of_n(runs, lambda m: m.utilization, '.1%')}",
            _seconds(measure.span), _seconds(measure.wall),
            f"≥ {TARGET_UTILIZATION:.0%}" if has_target else "",
            _met(measure.utilization >= TARGET_UTILIZATION) if has_target and not measure.failed else "",
        ))
    return rows


def idle_rows(sizes: Sizes) -> list[Row]:
    """Variant e: CPU of 1 master + 7 workers on 2 cores while tasks sleep 1 s.

    With hand-offs under 2 ms, 1 s tasks are long enough that `async` queues nothing ahead
    (:data:`mexplore.queue.policies.NEGLIGIBLE_SHARE`): one task per worker here.

    Two shares per job: of the whole job (launch to exit: the target), and of a window in
    mid-run (:class:`SteadyCpu`), where start-up and shut-down are left out.
    """
    ranks, tasks = 8, 7 * sizes.idle_per_worker
    window = max(sizes.idle_per_worker - 1.5, 0.4)
    steady_mx = SteadyCpu(ranks, window)

    def watch_journal(output: Path) -> SteadyCpu:
        steady_mx.journal = output / "journal.jsonl"
        return steady_mx

    mx = mexplore(7, StudySpec(tasks, "async", "sleep", seconds=1.0), sizes.timeout, watch=watch_journal)
    steady_raw = SteadyCpu(ranks, window, delay=1.2)
    raw = raw_mpi4py(7, tasks, sizes.timeout, "sleep", seconds=1.0, watch=steady_raw)
    rows = []
    for name, measure, steady, has_target in (("mexplore `async`, sleep 1 s", mx, steady_mx, True),
                                              ("raw mpi4py loop, sleep 1 s", raw, steady_raw, False)):
        share = measure.cpu / (measure.wall * ranks)
        rows.append(Row(
            f"{name}: whole job", "7", str(tasks),
            measure.failed or f"{share:.1%} CPU ({measure.cpu:.1f} CPU-s)",
            _seconds(measure.span), _seconds(measure.wall),
            f"≤ {TARGET_IDLE_CPU:.0%}" if has_target else "",
            _met(share <= TARGET_IDLE_CPU) if has_target and not measure.failed else "",
        ))
        rows.append(Row(
            f"{name}: mid-run window", "7", str(tasks),
            "not measured" if steady.share is None else f"{steady.share:.1%} CPU over {window:g} s",
        ))
    return rows


def startup_rows(sizes: Sizes) -> list[Row]:
    """Variant f: `mexplore --help`, and launch to the quickstart's first journal line."""
    helps = help_seconds(sizes.help_repeats)
    help_s = statistics.median(helps)
    first = first_result_seconds(sizes.timeout)
    return [
        Row("`mexplore --help`", "", "", f"{help_s:.3f} s (median of {len(helps)})",
            target=f"< {TARGET_HELP_S} s", met=_met(help_s < TARGET_HELP_S)),
        Row("quickstart `-n 2`: launch → first journal line", "1", "",
            "not seen" if first is None else f"{first:.2f} s",
            target=f"< {TARGET_FIRST_RESULT_S:g} s",
            met=_met(first is not None and first < TARGET_FIRST_RESULT_S)),
    ]


def markdown(rows: Sequence[Row]) -> str:
    header = ["Variant", "Workers", "Tasks", "Figure", "Span s", "Wall s", "Target", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.variant, row.workers, row.tasks, row.figure, row.span, row.wall, row.target, row.met]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mpi_version() -> str:
    """mpi4py's and the MPI library's versions, as the helper scripts see them."""
    job = run_job([PYTHON, "-c", "import mpi4py; from mpi4py import MPI; "
                   "print(f'mpi4py {mpi4py.__version__},', MPI.Get_library_version().split(chr(10))[0])"], 60)
    return " ".join(job.stdout.split()) if job.ok else "MPI version unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Throughput benchmark of mexplore (Markdown table).")
    parser.add_argument("--quick", action="store_true", help="fewer tasks: a smoke run")
    parser.add_argument("--before", type=Path, help="src/ of earlier code: its no-op rows too, in the same rounds")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows = noop_rows(sizes, args.before) + sleep_rows(sizes) + idle_rows(sizes) + startup_rows(sizes)
    elapsed = time.perf_counter() - started
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"mexplore throughput benchmark{' (--quick)' if args.quick else ''}: {when}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {_mpi_version()}; "
          f"took {elapsed:.0f} s; 1-min load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
