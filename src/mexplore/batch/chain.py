"""Job chains: ``mexplore submit --chain N`` queues N jobs of one script, each starting
after the one before it ends (``afterany``: however it ended), each resuming the study.

A campaign longer than one walltime then needs no one to resubmit it. The chain is recorded
in ``<output>/chain.json`` (the scheduler and the job ids, in order). A job whose run ends
with the study finished (``mexplore run`` exits 0) cancels the jobs queued after it, so
they do not start, find nothing to do and spend allocation; the script calls
``python -m mexplore.batch.chain OUTPUT JOB_ID`` for that. ``mexplore status`` shows the chain.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..store.atomic import atomic_write

CHAIN_FILE = "chain.json"
DEPENDS = {"slurm": ("--dependency=afterany:{job}",), "pbs": ("-W", "depend=afterany:{job}")}
"""The submit options that start a job once job ``{job}`` has ended, however it ended."""
CANCEL = {"slurm": "scancel", "pbs": "qdel"}
TIMEOUT = 60.0


def after(scheduler: str, job: str) -> list[str]:
    """The options that make a job wait for ``job`` to end."""
    return [option.format(job=job) for option in DEPENDS[scheduler]]


def record(output: Path, scheduler: str, jobs: list[str]) -> None:
    """Write the chain (atomically: a job may read it while ``submit`` still writes)."""
    atomic_write(output / CHAIN_FILE, json.dumps({"scheduler": scheduler, "jobs": jobs}) + "\n")


def read(output: Path) -> dict[str, Any] | None:
    """The recorded chain, or None (no chain, or an unreadable file)."""
    try:
        chain = json.loads((output / CHAIN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return chain if isinstance(chain, dict) and isinstance(chain.get("jobs"), list) else None


def same_job(a: str, b: str) -> bool:
    """PBS ids come as ``123.server`` or ``123``; Slurm's as ``123`` (or ``123;cluster``)."""
    return a.split(".")[0].split(";")[0] == b.split(".")[0].split(";")[0]


def cancel_rest(output: Path, job: str) -> list[str]:
    """Cancel the jobs of the chain after ``job``; returns their ids (none when ``job`` is
    not in the chain: a script resubmitted by hand cancels nothing)."""
    chain = read(output)
    if chain is None or not job:
        return []
    jobs = [str(j) for j in chain["jobs"]]
    at = next((i for i, j in enumerate(jobs) if same_job(j, job)), None)
    rest = [] if at is None else jobs[at + 1:]
    command = shutil.which(CANCEL.get(chain.get("scheduler", ""), ""))
    if rest and command is not None:
        subprocess.run([command, *rest], capture_output=True, timeout=TIMEOUT, check=False)  # ended ones: fine
    return rest


def states(chain: dict[str, Any]) -> dict[str, str]:
    """Each job's state as the scheduler tells it now (Slurm's ``squeue``); a job it no
    longer lists has ended. Empty where it cannot be asked (PBS, or not on a login node)."""
    squeue = shutil.which("squeue")
    if chain.get("scheduler") != "slurm" or squeue is None:
        return {}
    jobs = [str(j) for j in chain["jobs"]]
    try:
        done = subprocess.run([squeue, "-h", "-j", ",".join(jobs), "-o", "%i %T"], capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    listed = dict(line.split(None, 1) for line in done.stdout.splitlines() if " " in line)
    return {job: listed.get(job, "ENDED").strip().lower() for job in jobs}


def main(argv: list[str] | None = None) -> int:
    """In a job: ``python -m mexplore.batch.chain OUTPUT JOB_ID`` after the study finished."""
    output, job = (sys.argv[1:] if argv is None else argv)[:2]
    rest = cancel_rest(Path(output), job)
    if rest:
        print(f"mexplore: the study is finished: cancelled the rest of its chain (jobs {', '.join(rest)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
