import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm import JOB_TABLE, slurm  # noqa: F401  (the session-wide test Slurm cluster)

STARTED = pytest.StashKey[float]()


def pytest_collection_modifyitems(items):
    """The ``slow`` tests first: started last, one of them would keep a test process busy
    long after the other had finished."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionstart(session):
    """A job table from an earlier session must not pass for this one's."""
    if not hasattr(session.config, "workerinput"):  # the controlling process, not an xdist worker
        JOB_TABLE.unlink(missing_ok=True)
        session.config.stash[STARTED] = time.time()


def pytest_sessionfinish(session):
    """Remove the MPICH shared-memory segments this session's killed jobs left in /dev/shm:
    MPICH unlinks its segments when a job ends, but nothing does after a SIGKILL, and the
    kill tests leave about 60 of them (180 MB of RAM) per run. Only segments made during
    this session and mapped by no process are removed: a running job's are in use, and
    older ones are not this session's to judge."""
    if hasattr(session.config, "workerinput") or STARTED not in session.config.stash:
        return
    shm = Path("/dev/shm")
    left = [path for path in shm.glob("mpich_shm_*") if path.stat().st_mtime >= session.config.stash[STARTED]]
    if not left:
        return
    mapped: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(line.rsplit(None, 1)[-1] for line in maps.read_text().splitlines() if "/dev/shm/" in line)
        except OSError:  # a process that ended meanwhile, or one we may not read
            continue
    for path in left:
        if str(path) not in mapped:
            path.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    """The Slurm jobs this session ran, with their states and exit codes, in the run's log."""
    if JOB_TABLE.exists():
        terminalreporter.write_sep("-", "Slurm")
        terminalreporter.write_line(JOB_TABLE.read_text().rstrip())
