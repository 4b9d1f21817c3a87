"""``[study] optuna_journal = true``: the master keeps ``<output>/optuna-journal.log``, an
Optuna journal file, up to date as tasks finish, so ``optuna-dashboard`` shows the run live.

Optuna writes and fsyncs the file once per trial (0.3-0.7 ms each, docs/export.md), about
thirty times what the master spends on a task, so the master only puts each journaled
batch on a queue and a thread adds it. The file is never the source of truth: a batch is
put there after it is in the journal, and a resume first adds whatever of the journal the
file lacks (the exporter skips tasks it holds), so a kill loses nothing from it for long.
A filesystem that refuses the file is said once; the run goes on.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ..algorithms.optuna_adapter import distributions
from ..objectives import Direction
from ..space import Space
from ..store.optuna_export import OptunaExporter, StudyHeader
from ..types import Result

OPTUNA_JOURNAL = "optuna-journal.log"


def optuna_header(name: str, objectives: Sequence[str], directions: Sequence[Direction], space: Space,
                  output: Path, algorithm: str) -> StudyHeader:
    """The Optuna study a run becomes: its name, objectives and directions, the Optuna
    distributions of its parameters (the ``optuna.*`` algorithms' own mapping), and its
    constants, output and algorithm as study attributes."""
    return StudyHeader(
        name=name, objectives=list(objectives), directions=[Direction(d) for d in directions],
        distributions=distributions(space, "export"),
        attrs={"mexplore.output": str(output.resolve()), "mexplore.constants": dict(space.constants),
               "mexplore.algorithm": algorithm},
    )


class LiveOptunaExport:
    """A thread that adds the batches :meth:`add` is given to the Optuna file, in order."""

    def __init__(self, path: Path, exporter: OptunaExporter) -> None:
        self.path = path
        self._exporter = exporter
        self._batches: queue.SimpleQueue[list[Result] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="mexplore-optuna-journal", daemon=True)

    @classmethod
    def start(cls, output: Path, header: StudyHeader, journaled: Sequence[Result]) -> LiveOptunaExport | None:
        """Open (or create) the file and start the thread; ``journaled`` (a resumed run's
        journal) is added first. None, with a warning, when the file cannot be opened."""
        path = output / OPTUNA_JOURNAL
        try:
            exporter = OptunaExporter.open(path, header)
        except Exception as error:  # Optuna's own errors, a full disk: the run does not need it
            print(f"mexplore: warning: no live {path}: {type(error).__name__}: {error}", file=sys.stderr)
            return None
        live = cls(path, exporter)
        live._thread.start()
        if journaled:
            live.add(journaled)
        return live

    def add(self, results: Sequence[Result]) -> None:
        """Called by the master after ``results`` are journaled; returns at once."""
        self._batches.put(list(results))

    def close(self) -> None:
        """Add what is queued, then stop the thread (the end of the run waits for it)."""
        self._batches.put(None)
        self._thread.join()

    def _drain(self) -> None:
        while (batch := self._batches.get()) is not None:
            try:
                self._exporter.add(batch)
            except Exception as error:
                print(f"mexplore: warning: {self.path} is no longer kept up to date: "
                      f"{type(error).__name__}: {error}", file=sys.stderr)
                while self._batches.get() is not None:  # let close() return
                    pass
                return
