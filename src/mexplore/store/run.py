"""A finished (or running) study read back from its output directory: the record and the
journal, as one object ``mexplore results`` and ``mexplore report`` share.

Only the files are read, never the study file the run started from: the record holds the
study as it ran (defaults resolved), so a report made months later, or from a copy of the
output directory, shows what actually happened.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MexploreError

if TYPE_CHECKING:
    import pandas as pd


class NoRunError(MexploreError):
    """The directory holds no run (or an unreadable record): nothing to report on."""


@dataclass(frozen=True)
class Run:
    """What a report needs: the record (``study.toml`` as a dict) and the results table."""

    output: Path
    record: dict[str, Any]
    objectives: list[str]
    directions: list[str]
    frame: pd.DataFrame

    @property
    def name(self) -> str:
        return str(self.record.get("study", {}).get("name", self.output.name))

    @property
    def space(self) -> dict[str, Any]:
        return self.record.get("space", {})

    @property
    def algorithm(self) -> dict[str, Any]:
        return self.record.get("algorithm", {})

    @property
    def constants(self) -> set[str]:
        """Space entries that are not parameter tables: the same in every task."""
        return {name for name, entry in self.space.items() if not isinstance(entry, dict)}

    @property
    def workers(self) -> int:
        """Worker ranks of the run: the recorded rank count less the master, or the ranks
        seen in the journal if more (a resumed run may have had more ranks before)."""
        ranks = self.record.get("provenance", {}).get("ranks")
        recorded = ranks - 1 if isinstance(ranks, int) else 0
        seen = 0 if self.frame.empty else self.frame.loc[self.frame["rank"] >= 0, "rank"].nunique()
        return max(recorded, seen)

    @property
    def ok(self) -> pd.DataFrame:
        """The rows that have objective values: finished ``ok``."""
        if self.frame.empty:
            return self.frame
        return self.frame[self.frame["status"] == "ok"]


def load_run(output: Path) -> Run:
    """Read ``output``'s record and journal; :class:`NoRunError` when either is missing or
    the record is not TOML, with a message naming the file."""
    from ..runtime.record import STUDY_RECORD
    from .journal import JOURNAL_NAME
    from .table import results_frame

    record_path, journal = output / STUDY_RECORD, output / JOURNAL_NAME
    if not record_path.exists() or not journal.exists():
        raise NoRunError(f"{output} holds no run ({STUDY_RECORD} and {JOURNAL_NAME} expected)")
    try:
        record = tomllib.loads(record_path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise NoRunError(f"{record_path}: not a readable study record: {error}") from None
    study = record.get("study", {})
    objectives = _as_list(study.get("objective", "objective"))
    directions = _as_list(study.get("direction", "minimize"))
    if len(directions) != len(objectives):
        directions = directions[:1] * len(objectives)
    frame = results_frame(journal, objectives, directions)
    return Run(output, record, objectives, directions, frame)


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
