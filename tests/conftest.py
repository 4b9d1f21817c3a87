import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm import JOB_TABLE, slurm  # noqa: F401  (the session-wide test Slurm cluster)


def pytest_collection_modifyitems(items):
    """The ``slow`` tests first: started last, one of them would keep a test process busy
    long after the other had finished."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionstart(session):
    """A job table from an earlier session must not pass for this one's."""
    if not hasattr(session.config, "workerinput"):  # the controlling process, not an xdist worker
        JOB_TABLE.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    """The Slurm jobs this session ran, with their states and exit codes, in the run's log."""
    if JOB_TABLE.exists():
        terminalreporter.write_sep("-", "Slurm")
        terminalreporter.write_line(JOB_TABLE.read_text().rstrip())
