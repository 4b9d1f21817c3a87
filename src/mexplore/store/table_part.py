"""Helper processes that read parts of a long journal at the same time as the master
(:func:`~.table.read_in_parts`), for the end of a run.

Each is ``python -m mexplore.store.table_part``: it reads ``(journal, span, objectives)``
pickled on its standard input, and writes the :class:`~.table.JournalTable` of those lines
pickled on its standard output, or None when a block of them needs care (its warnings then
come from the master, which knows the line numbers). It never imports MPI, exits as soon
as it is done, and is killed with the master.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..node import die_with_parent, helper_environment
from .journal import gc_paused
from .table import JournalTable, part_table


class Helper:
    """One helper process, reading one part; :meth:`table` waits for what it read."""

    def __init__(self, journal: Path, span: tuple[int, int], objectives: Sequence[str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,  # it fails: the
                                        env=helper_environment())  # master reads the part, and warns of its lines
        try:
            self.process.stdin.write(pickle.dumps((journal, span, tuple(objectives))))  # type: ignore[union-attr]
            self.process.stdin.close()  # type: ignore[union-attr]
        except OSError:  # it died as it started: table() says None
            pass

    def table(self) -> JournalTable | None:
        """Its part's table; None when it could not read it (or found a block that needs care)."""
        with self.process:
            data = self.process.stdout.read()  # type: ignore[union-attr]
        if self.process.returncode != 0:
            return None
        try:
            table = pickle.loads(data)
        except Exception:  # cut short: read the part again, here
            return None
        return table if isinstance(table, JournalTable) else None


def start_helpers(journal: Path, spans: Sequence[tuple[int, int]], objectives: Sequence[str]) -> list[Helper]:
    """A helper per span, all started now."""
    return [Helper(journal, span, objectives) for span in spans]


def main() -> None:
    die_with_parent()  # a master killed mid-read leaves no helper reading on
    journal, span, objectives = pickle.load(sys.stdin.buffer)
    with gc_paused():
        table = part_table(journal, span, objectives, first_line=1, sound_only=True)
    sys.stdout.buffer.write(pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
