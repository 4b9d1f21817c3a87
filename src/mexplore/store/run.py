"""A finished (or running) study read back from its output directory: the study as it ran
(``study.toml``), the journal and the sessions (``sessions.jsonl``), as one object
``mexplore results`` and ``mexplore report`` share.

Only the files are read, never the study file the run started from: ``study.toml`` holds
the study as it ran (defaults resolved), so a report made months later, or from a copy of
the output directory, shows what actually happened.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MexploreError
from ..objectives import Direction
from .sessions import Session, SessionRecord, read_session_records, split_sessions
from .table import kind_rows

if TYPE_CHECKING:
    import pandas as pd


class NoRunError(MexploreError):
    """The directory holds no run (or an unreadable ``study.toml``): nothing to show."""


@dataclass(frozen=True)
class Run:
    """What a report needs: the study as it ran (``study.toml`` as a dict), the results
    table and the recorded sessions."""

    output: Path
    as_run: dict[str, Any]
    objectives: list[str]
    directions: list[Direction]
    frame: pd.DataFrame
    session_records: tuple[SessionRecord, ...] = ()

    @property
    def name(self) -> str:
        return str(self.as_run.get("study", {}).get("name", self.output.name))

    @property
    def space(self) -> dict[str, Any]:
        return self.as_run.get("space", {})

    @property
    def algorithm(self) -> dict[str, Any]:
        return self.as_run.get("algorithm", {})

    @property
    def constants(self) -> set[str]:
        """Space entries that are not parameter tables: the same in every task."""
        return {name for name, entry in self.space.items() if not isinstance(entry, dict)}

    @property
    def workers(self) -> int:
        """Worker ranks of the run: the recorded rank count less the master, or the ranks
        seen in the journal if more (a resumed run may have had more ranks before)."""
        ranks = self.as_run.get("provenance", {}).get("ranks")
        recorded = ranks - 1 if isinstance(ranks, int) else 0
        seen = 0 if self.frame.empty else self.frame.loc[self.frame["rank"] >= 0, "rank"].nunique()
        return max(recorded, seen)

    @cached_property
    def sessions(self) -> list[Session]:
        """The run's sessions in order, each with its tasks (see :mod:`.sessions`): one
        for a run never resumed, or one from before sessions were recorded."""
        return split_sessions(list(self.session_records), self.frame, self.workers)

    def objective_kind(self) -> Run:
        """This run with its objective kind's tasks only, in a study of several kinds
        (``[models.<kind>]``): the search's own rows, without the auxiliary kinds' tasks
        and their params and metrics columns."""
        if self.frame.empty or "kind" not in self.frame:
            return self
        return replace(self, frame=kind_rows(self.frame, None))

    @property
    def ok(self) -> pd.DataFrame:
        """The rows that have objective values: finished ``ok``."""
        if self.frame.empty:
            return self.frame
        return self.frame[self.frame["status"] == "ok"]


def load_run(output: Path) -> Run:
    """Read ``output``'s ``study.toml`` and journal; :class:`NoRunError` when either is
    missing or ``study.toml`` is not TOML, with a message naming the file."""
    from .journal import JOURNAL_NAME
    from .study_as_run import STUDY_AS_RUN
    from .table import results_frame

    as_run_path, journal = output / STUDY_AS_RUN, output / JOURNAL_NAME
    if not as_run_path.exists() or not journal.exists():
        raise NoRunError(f"{output} holds no run ({STUDY_AS_RUN} and {JOURNAL_NAME} expected)")
    try:
        as_run = tomllib.loads(as_run_path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise NoRunError(f"{as_run_path}: not readable as TOML: {error}") from None
    study = as_run.get("study", {})
    objectives = _as_list(study.get("objective", "objective"))
    try:
        directions = [Direction(d) for d in _as_list(study.get("direction", Direction.MINIMIZE))]
    except ValueError as error:
        raise NoRunError(f"{as_run_path}: {error}") from None
    if len(directions) != len(objectives):
        directions = directions[:1] * len(objectives)
    frame = results_frame(journal, objectives, directions)
    return Run(output, as_run, objectives, directions, frame, tuple(read_session_records(output)))


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
