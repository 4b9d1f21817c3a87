import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm import slurm  # noqa: F401  (the session-wide test Slurm cluster)


def pytest_collection_modifyitems(items):
    """The ``slow`` tests first: started last, one of them would keep a test process busy
    long after the other had finished."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
