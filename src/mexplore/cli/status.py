"""``mexplore status OUTPUT``: how a run is going, from its files alone.

It reads the journal (what finished, and why tasks failed), ``status.json`` (what the master runs now, and the last
flush) and the flushed cache files; it imports neither MPI nor pandas and writes nothing, so
it is safe to call from a login node while the run goes on, as often as one likes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ..failures import FailureTally, is_failure
from ..node import node_name
from ..objectives import Direction, best_result, first_objective
from ..types import Result

STALE_AFTER = 180.0
"""A run whose master has not rewritten status.json for this long is probably gone."""
REASONS_SHOWN = 5
"""Failure reasons shown (the most frequent); ``mexplore results --failed`` lists every task."""


def status_command(args: argparse.Namespace) -> int:
    from ..runtime.live import HEARTBEAT, read_status
    from ..store.cache import CACHE_DIR
    from ..store.journal import JOURNAL_NAME
    from ..store.study_as_run import STUDY_AS_RUN

    output = Path(args.output)
    if not (output / STUDY_AS_RUN).exists():
        print(f"mexplore: error: {output} holds no run ({STUDY_AS_RUN} expected)", file=sys.stderr)
        return 2
    study = tomllib.loads((output / STUDY_AS_RUN).read_text())["study"]
    objective = _first(study.get("objective", "objective"))
    direction = Direction(_first(study.get("direction", Direction.MINIMIZE)))
    counts, best, failures = _tally(output / JOURNAL_NAME, direction)
    live = read_status(output)
    print(f"study {study.get('name')!r} in {output}: {_state(live, HEARTBEAT)}")
    done = sum(counts.values())
    budget = f"/{study['budget']}" if "budget" in study else ""
    split = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    running = f", {live['running']} running" if live and live.get("state") == "running" else ""
    print(f"  done {done}{budget}" + (f" ({split})" if split else "") + running)
    if best is not None:
        print(f"  best {objective} = {first_objective(best):.6g} (task {best.task_id})")
    if failures.total:
        print(f"  failures by reason ({failures.total} tasks):")
        for reason in failures.most_common(REASONS_SHOWN):
            print(f"    {reason.describe()}")
        if len(failures) > REASONS_SHOWN:
            print(f"    ({len(failures) - REASONS_SHOWN} more reasons: `mexplore results {output} --failed`)")
    flushed = [path for path in (output / CACHE_DIR).glob("*.h5")] if (output / CACHE_DIR).is_dir() else []
    if flushed:
        newest = max(path.stat().st_mtime for path in flushed)
        size = sum(path.stat().st_size for path in flushed)
        print(f"  last flush {_when(newest)}: {len(flushed)} cache file(s), {size / 1e6:.1f} MB in {output / CACHE_DIR}")
    else:
        print("  no flush yet")
    _print_chain(output)
    return 0


def _print_chain(output: Path) -> None:
    """The jobs of ``mexplore submit --chain``, with their states where the scheduler says."""
    from ..batch.chain import read, states

    chain = read(output)
    if chain is None:
        return
    known = states(chain)
    jobs = [f"{job} ({known[str(job)]})" if str(job) in known else str(job) for job in chain["jobs"]]
    print(f"  chain of {len(jobs)} {chain.get('scheduler', '')} jobs: {', '.join(jobs)}")


def _tally(journal: Path, direction: Direction) -> tuple[Counter[str], Result | None, FailureTally]:
    """Tasks by status, the best task and the failures by reason, in one pass that never
    holds the whole journal: this runs on login nodes, against journals of any size."""
    from ..store.journal import iter_records

    counts: Counter[str] = Counter()
    failures = FailureTally()

    def results() -> Iterator[Result]:
        for record in iter_records(journal) if journal.exists() else ():
            counts[record["status"]] += 1
            if is_failure(record["status"]):
                failures.add(record["id"], record["status"], record.get("error"))
            yield Result.from_record(record)

    return counts, best_result(results(), direction), failures


def _state(live: dict | None, heartbeat: float) -> str:
    if live is None:
        return "no status.json (a run from before it existed, or one that never started)"
    if live.get("state") != "running":
        return f"{live['state']} {_when(live['updated'])}"
    age = time.time() - live["updated"]
    where = f"master pid {live['pid']} on {live['host']}, {live['workers']} worker(s)"
    if live.get("host") == node_name() and not _alive(live.get("pid")):
        return (f"killed: its master ({where}) is gone; `mexplore run` on the same study resumes it")
    if age > max(STALE_AFTER, 3 * heartbeat):
        return (f"running, but not heard from for {age / 60:.0f} min ({where}): probably killed; "
                "`mexplore run` on the same study resumes it")
    return f"running ({where}, updated {age:.0f} s ago)"


def _alive(pid: object) -> bool:
    """Whether process ``pid`` exists on this host (a pid we may not signal does)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("at %Y-%m-%d %H:%M:%S")


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else value
