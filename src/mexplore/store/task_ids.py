"""``<output>/task_ids.json``: task ids handed out, so a resumed run never reuses one.

The journal holds only finished tasks; the ids of tasks in flight when a job was killed are
in no file, and a resume numbering from the journal alone would give them to other points,
whose outputs and task folders would then be mistaken for theirs. The master reserves ids
in blocks before handing them out (one small atomic write per block, not per task) and a
resume starts after the last reserved block: ids may skip, never repeat.
"""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import atomic_write

TASK_IDS_NAME = "task_ids.json"


def read_reserved(output: Path) -> int:
    """The first id no earlier session may have handed out (0 for a new run, or one that
    predates this file, or a damaged file: the journal's ids then decide alone)."""
    try:
        below = json.loads((output / TASK_IDS_NAME).read_text()).get("reserved_below", 0)
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return 0
    return below if isinstance(below, int) and below >= 0 else 0


def write_reserved(output: Path, below: int) -> None:
    """Record that ids below ``below`` may be in use, before any of them is handed out."""
    atomic_write(output / TASK_IDS_NAME, json.dumps({"reserved_below": below}) + "\n")
