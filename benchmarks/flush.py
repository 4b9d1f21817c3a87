"""Node-local cache and flush benchmark (issue 4).

    python benchmarks/flush.py            # the full run: 10,000 outputs of 100 KB (~1 GB)
    python benchmarks/flush.py --quick    # a smoke run, not a measurement

Why these figures: a worker saves each task's outputs into one HDF5 file on node-local
storage (``TaskCache.save``, on the worker's critical path), and a flush copies that file to
the output directory in one large sequential write. The claim to check is that this costs
about what copying one big file costs (target: the flush of 3 workers at once takes at most
2x the copy of one file of the same total size), beside what peers do, one file per task. The master journals every result (``JournalWriter.append``, target < 50 us per
task), also on the critical path of every hand-off.

Every worker is its own process (``spawn``) with its own ``TaskCache`` under
``/tmp/mexplore-bench-flush/local``; the output directory is ``/tmp/mexplore-bench-flush/output``,
on the same filesystem. The I/O variants run ``repeats`` times, interleaved so that drift in
the shared machine hits each alike (each repeat rotates the order by one); the table shows the median and the range, and ratios of
medians from the same run. Before each I/O measurement dirty pages are written back and,
where allowed (root), the page cache is dropped, so every variant reads its source from disk
and finds nothing earlier left to write back. Each measurement writes into a folder of its
own; everything under the temporary folder (about 20 GB in the full run) is removed at the
end.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mexplore.store.cache import TaskCache, copy_atomically
from mexplore.store.journal import JournalWriter
from mexplore.types import Result, Status

ROOT = Path("/tmp/mexplore-bench-flush")
TASK_BYTES = 102_400          # one task's output: 12,800 float64
WORKERS = 3
TARGET_FLUSH_RATIO = 2.0
TARGET_JOURNAL_US = 50.0
COLD_PAUSE = 0.002            # the sleep before each call of the "cold" journal variant


@dataclass(frozen=True)
class Sizes:
    """How much work each part does; ``quick`` is a smoke run, not a measurement."""

    tasks: int          # task outputs, spread over the workers
    journal: int        # results journaled per variant
    cold_journal: int   # results journaled one per call, each after COLD_PAUSE
    repeats: int        # runs of each variant; the median is shown


FULL = Sizes(tasks=10_000, journal=20_000, cold_journal=2_000, repeats=3)
QUICK = Sizes(tasks=600, journal=2_000, cold_journal=200, repeats=1)


# --------------------------------------------------------------------------- the workers


def worker(rank: int, task_ids: range, conn) -> None:
    """One worker process: fills its cache when told (and answers with each save's seconds),
    then flushes it or writes one file per task into the output folder each command names
    (and answers None once done, which is what the caller times)."""
    cache = TaskCache(ROOT / "local" / f"rank{rank}", lambda: f"bench-r{rank}.h5")
    values: list[np.ndarray] = []
    for command, output in iter(conn.recv, ("stop", None)):
        if command == "fill":
            rng = np.random.default_rng(rank)  # random: nothing compresses
            values = [rng.random(TASK_BYTES // 8) for _ in task_ids]
            saves = []
            for task_id, value in zip(task_ids, values):
                started = time.perf_counter()
                cache.save(task_id, "weights", value)
                cache.commit(task_id)  # as the worker does when the task's model returns
                saves.append(time.perf_counter() - started)
            conn.send(saves)
        elif command == "flush":
            cache.flush(output)
            conn.send(None)
        else:  # "files" or "files-fsync": what peers do, one file per task
            for task_id, value in zip(task_ids, values):
                with open(output / f"{task_id}.bin", "wb") as file:
                    file.write(value)
                    if command == "files-fsync":
                        file.flush()
                        os.fsync(file.fileno())
            conn.send(None)
    cache.close(remove=True)


def start_workers(tasks: int) -> list:
    """``WORKERS`` spawned processes, ``tasks`` split between them; their pipes."""
    context = mp.get_context("spawn")
    bounds = np.linspace(0, tasks, WORKERS + 1).astype(int)
    conns = []
    for rank in range(WORKERS):
        ours, theirs = context.Pipe()
        context.Process(target=worker, args=(rank, range(bounds[rank], bounds[rank + 1]), theirs),
                        daemon=True).start()
        conns.append(ours)
    return conns


def on_all(conns: list, command: str, output: Path | None) -> list:
    """Send ``command`` to every worker at once, wait for all, and return their replies."""
    for conn in conns:
        conn.send((command, output))
    return [conn.recv() for conn in conns]


# --------------------------------------------------------------------------- the I/O variants


def drop_caches() -> bool:
    """Write dirty pages back and, when allowed, empty the page cache, so that a measurement
    neither pays for an earlier one's write-back nor reads a source still in memory."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def fresh_output(name: str) -> Path:
    """A new, empty output folder: nothing is deleted before the end, so that no measurement
    runs while the blocks of an earlier one's files are being freed."""
    output = ROOT / "output" / name
    output.mkdir(parents=True)
    return output


def random_file(path: Path, nbytes: int) -> Path:
    rng = np.random.default_rng(99)
    with open(path, "wb") as file:
        file.writelines(rng.bytes(min(16 << 20, nbytes - start)) for start in range(0, nbytes, 16 << 20))
    return path


def copy_at_once(parts: list[Path], output: Path) -> None:
    """The flush's I/O pattern without HDF5: every part copied by ``copy_atomically`` at once,
    one thread each (the copy loop releases the GIL), to tell the cost of the cache's format
    from the gain of several streams."""
    threads = [threading.Thread(target=copy_atomically, args=(part, output / part.name)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def measure_io(conns: list, payload: int, repeats: int) -> tuple[dict[str, list[float]], int, bool]:
    """Seconds of each I/O variant per repeat, the bytes one flush wrote, and whether the page
    cache could be dropped. The copies' sources are random files of ``payload`` bytes in all."""
    one = random_file(ROOT / "local" / "one.bin", payload)
    parts = [random_file(ROOT / "local" / f"part{rank}.bin", payload // WORKERS) for rank in range(WORKERS)]
    variants = {
        "copy": lambda output: copy_atomically(one, output / one.name),
        "copy-parts": lambda output: copy_at_once(parts, output),
        "flush": lambda output: on_all(conns, "flush", output),
        "files-fsync": lambda output: on_all(conns, "files-fsync", output),
        "files": lambda output: on_all(conns, "files", output),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    flushed, dropped = 0, True
    for repeat in range(repeats):
        names = list(variants)
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            output = fresh_output(f"{repeat}-{name}")
            dropped &= drop_caches()
            started = time.perf_counter()
            variants[name](output)
            seconds[name].append(time.perf_counter() - started)
            print(f"repeat {repeat + 1}: {name}: {seconds[name][-1]:.2f} s", file=sys.stderr)
            if name == "flush":
                flushed = sum(path.stat().st_size for path in (output / "cache").iterdir())
    shutil.rmtree(ROOT / "output")
    return seconds, flushed, dropped


# --------------------------------------------------------------------------- the journal


def results(count: int) -> list[Result]:
    """Realistic finished results: 5 params, one objective, 2 metrics, timestamps, rank, host."""
    rng = np.random.default_rng(7)
    now = time.time()
    return [
        Result(task_id=i, status=Status.OK,
               params={"lr": float(rng.random()), "depth": int(rng.integers(1, 12)),
                       "dropout": float(rng.random()), "activation": "relu", "seed": i},
               objective=float(rng.random()),
               metrics={"loss": float(rng.random()), "epochs": int(rng.integers(1, 100))},
               started=now + i, ended=now + i + float(rng.random()), rank=1 + i % WORKERS,
               host="node-0042")
        for i in range(count)
    ]


def journal_us(batch: list[Result], per_call: int, pause: float = 0.0) -> float:
    """Microseconds per result of appending ``batch``, ``per_call`` results per call, with
    ``close`` (one fsync, as the once-a-second fsync would add) included. With ``pause``,
    each call comes after that long a sleep, as in the master's loop, where the code is cold;
    only the calls are timed."""
    path = ROOT / "journal.jsonl"
    path.unlink(missing_ok=True)
    writer = JournalWriter.open(path)
    spent = 0.0
    for start in range(0, len(batch), per_call):
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        writer.append(batch[start:start + per_call])
        spent += time.perf_counter() - started
    started = time.perf_counter()
    writer.close()
    spent += time.perf_counter() - started
    path.unlink()
    return spent / len(batch) * 1e6


# --------------------------------------------------------------------------- the table


def spread(values: list[float], unit: str, digits: int) -> str:
    text = f"{statistics.median(values):,.{digits}f} {unit}"
    if len(values) > 1:
        text += f" (median of {len(values)}: {min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    sizes = QUICK if parser.parse_args().quick else FULL
    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "local").mkdir(parents=True)
    try:
        conns = start_workers(sizes.tasks)
        saves = []
        for conn in conns:  # one at a time: a save is timed without the others competing
            saves += on_all([conn], "fill", None)[0]
        payload = sizes.tasks * TASK_BYTES
        seconds, flushed, dropped = measure_io(conns, payload, sizes.repeats)
        for conn in conns:
            conn.send(("stop", None))
        batch = results(sizes.journal)
        journal: dict[str, list[float]] = {"1": [], "8": [], "cold": []}
        for _ in range(sizes.repeats):
            journal["1"].append(journal_us(batch, 1))
            journal["8"].append(journal_us(batch, 8))
            journal["cold"].append(journal_us(batch[:sizes.cold_journal], 1, COLD_PAUSE))
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)

    copy = statistics.median(seconds["copy"])
    ratio = {variant: statistics.median(values) / copy for variant, values in seconds.items()}
    gb = payload / 1e9
    rows = [
        ("copy one file (`copy_atomically`: 16 MiB writes + fsync)", "", f"{gb:.2f} GB",
         spread(seconds["copy"], "s", 2) + f", {gb / copy:.2f} GB/s", "", ""),
        (f"copy {WORKERS} files of a third at once (threads)", "", f"{gb:.2f} GB",
         spread(seconds["copy-parts"], "s", 2) + f" ({ratio['copy-parts']:.2f}× the copy)", "", ""),
        (f"flush, {WORKERS} workers at once (`TaskCache.flush`)", f"{sizes.tasks:,}",
         f"{flushed / 1e9:.2f} GB (HDF5)", spread(seconds["flush"], "s", 2), "", ""),
        ("flush ÷ one-file copy", "", "", f"{ratio['flush']:.2f}×",
         f"≤ {TARGET_FLUSH_RATIO:g}×", "yes" if ratio["flush"] <= TARGET_FLUSH_RATIO else "no"),
        (f"flush ÷ {WORKERS}-file copy", "", "", f"{ratio['flush'] / ratio['copy-parts']:.2f}×", "", ""),
        (f"one file per task, {WORKERS} workers, fsync per file", f"{sizes.tasks:,}", f"{gb:.2f} GB",
         spread(seconds["files-fsync"], "s", 2) + f" ({ratio['files-fsync']:.2f}× the copy)", "", ""),
        (f"one file per task, {WORKERS} workers, close only (no fsync)", f"{sizes.tasks:,}",
         f"{gb:.2f} GB", spread(seconds["files"], "s", 2) + f" ({ratio['files']:.2f}× the copy)", "", ""),
        ("`TaskCache.save` of a 100 KB array", f"{sizes.tasks:,}", "",
         (f"{statistics.median(saves) * 1e6:,.0f} µs median, {statistics.mean(saves) * 1e6:,.0f} µs mean, "
          f"{np.percentile(saves, 99) * 1e6:,.0f} µs p99"), "", ""),
        ("`JournalWriter.append`, 1 result per call", f"{sizes.journal:,}", "",
         spread(journal["1"], "µs/task", 1), f"< {TARGET_JOURNAL_US:g} µs",
         "yes" if statistics.median(journal["1"]) < TARGET_JOURNAL_US else "no"),
        ("`JournalWriter.append`, 8 results per call", f"{sizes.journal:,}", "",
         spread(journal["8"], "µs/task", 1), "", ""),
        (f"`JournalWriter.append`, 1 per call, each after a {COLD_PAUSE * 1e3:g} ms sleep",
         f"{sizes.cold_journal:,}", "", spread(journal["cold"], "µs/task", 1), "", ""),
    ]
    print(f"{sizes.tasks:,} tasks × {TASK_BYTES:,} B over {WORKERS} workers; page cache "
          + ("dropped before each I/O measurement" if dropped else "NOT dropped (not allowed)"))
    print()
    print("| Variant | Tasks | Bytes | Figure | Target | Met |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
