"""``mexplore export OUTPUT --optuna FILE``: a run as an Optuna journal file, for
``optuna-dashboard FILE`` and ``optuna.load_study``.

This verb composes what the rooms below keep apart: the run as recorded (``store/run``),
its ``[space]`` rebuilt (``config``), the Optuna distributions of that space (the Optuna
adapter's own mapping, so an export and a search see the same distributions), and the
writer (``store/optuna_export``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MexploreError

if TYPE_CHECKING:
    from ..store.optuna_export import StudyHeader
    from ..store.run import Run


def export_command(args: argparse.Namespace) -> int:
    from ..store.journal import JOURNAL_NAME
    from ..store.optuna_export import export_journal
    from ..store.run import load_run

    try:
        run = load_run(Path(args.output))
        added = export_journal(run.output / JOURNAL_NAME, Path(args.optuna), optuna_header(run),
                               replace=args.replace)
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(added.states.items())) or "none"
    print(f"{args.optuna}: study {run.name!r}, {added.trials} trials ({states})")
    if added.outside:
        print(f"note: {added.outside} tasks left out: their parameters are not in the run's "
              "[space] (it changed on a resume)")
    print(f"look at it with: optuna-dashboard {args.optuna}")
    return 0


def optuna_header(run: Run) -> StudyHeader:
    """The Optuna study a run becomes (see :func:`mexplore.runtime.optuna_live.optuna_header`),
    from what the run recorded: its study.toml's name, objectives and ``[space]``."""
    from ..config import space_from_table
    from ..runtime.optuna_live import optuna_header as header_of
    from ..store.study_as_run import STUDY_AS_RUN

    space = space_from_table(run.space, str(run.output / STUDY_AS_RUN))
    return header_of(run.name, run.objectives, run.directions, space, run.output,
                     str(run.algorithm.get("name", "")))
