"""A run as an Optuna journal-file storage, for ``optuna-dashboard`` and ``optuna.load_study``.

Users of this field know Optuna's dashboard; a mexplore run becomes one Optuna study in a
journal file (Optuna's ``JournalStorage`` over a ``JournalFileBackend``), written through
Optuna's own storage API so the format is always the one the installed Optuna reads. Each
finished task is one trial:

- ``ok`` with finite objective values -> ``COMPLETE`` with those values; ``pruned`` ->
  ``PRUNED``; anything else (``failed``, ``timeout``, ``lost``, ``cancelled``, or an ``ok``
  task whose objective Optuna cannot use, such as NaN) -> ``FAIL``;
- the parameters of the study's ``[space]`` with their distributions (constants are the same
  in every task: they are a study attribute instead);
- the intermediate ``(step, value)`` reports as intermediate values (Optuna keeps integer
  steps and finite values);
- user attributes: ``task_id``, ``status`` (mexplore's), ``rank``, ``host``, ``attempt``,
  ``duration`` (seconds), ``gpu`` when set, each metric as ``m:<name>``, and ``error`` (the
  one-line reason) for a task that did not finish ok.

The distributions are given by the caller (the Optuna adapter maps a space to them, and
this room may not import ``algorithms/``), so this module only moves results into trials.
:class:`OptunaExporter` adds results as they come and skips tasks it already holds, so the
master can keep a file up to date during a run and a resumed run can add what a kill left
out. Optuna is imported here only when an export is made.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MexploreError
from ..failures import reason_of
from ..objectives import Direction
from ..types import Result, Status
from .atomic import atomic_path
from .journal import _spelled, read_results

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

TASK_ID = "task_id"
"""The user attribute that holds a trial's task id (trial numbers are Optuna's own)."""


class ExportError(MexploreError):
    """The export cannot be written as asked (the file exists, the run holds no space...)."""


@dataclass(frozen=True)
class StudyHeader:
    """What the Optuna study is made with: its name, objective names (shown by the dashboard
    as metric names), directions, the distributions of the space's parameters, and study
    attributes (the constants, where the run lives)."""

    name: str
    objectives: Sequence[str]
    directions: Sequence[Direction]
    distributions: Mapping[str, BaseDistribution]
    attrs: Mapping[str, Any]


@dataclass
class Added:
    """What :meth:`OptunaExporter.add` did: trials added per Optuna state, tasks already
    there (skipped), and tasks left out because their parameters are not in the space
    (the study changed on a resume)."""

    states: dict[str, int]
    already: int = 0
    outside: int = 0

    @property
    def trials(self) -> int:
        return sum(self.states.values())


class OptunaExporter:
    """Adds results to one study of an Optuna journal file, as finished trials.

    Open one with :meth:`open` (it creates the study, or finds the one an earlier export or
    run left and the task ids it holds); then :meth:`add` each batch of results, in any
    order, as often as wanted: a task already in the study is skipped, so adding the whole
    journal again after a resume adds only what is missing.
    """

    def __init__(self, study: optuna.Study, header: StudyHeader, task_ids: set[int]) -> None:
        self.study = study
        self.header = header
        self.task_ids = task_ids

    @classmethod
    def open(cls, path: Path, header: StudyHeader) -> OptunaExporter:
        """The study ``header.name`` in the journal file at ``path``, created (with the file)
        if absent. An existing study must have the same directions."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # else a line per study and trial
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        directions = [Direction(d).value for d in header.directions]
        study = optuna.create_study(study_name=header.name, storage=storage, directions=directions,
                                    load_if_exists=True)
        if [d.name.lower() for d in study.directions] != directions:
            raise ExportError(f"{path}: study {header.name!r} has directions "
                              f"{[d.name.lower() for d in study.directions]}, this run {directions}")
        with warnings.catch_warnings():  # "experimental": not the user's concern
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(header.objectives))
        for key, value in header.attrs.items():
            study.set_user_attr(key, value)
        held = {t.user_attrs.get(TASK_ID) for t in study.get_trials(deepcopy=False)}
        return cls(study, header, {i for i in held if isinstance(i, int)})

    def add(self, results: Iterable[Result]) -> Added:
        """Add each result not yet in the study as a finished trial, in one storage call.
        An auxiliary kind's task (a surrogate's training) is no trial of the study."""
        added = Added(states={})
        trials = []
        for result in results:
            if result.kind is not None:
                continue
            if result.task_id in self.task_ids:
                added.already += 1
                continue
            trial = self._trial(result)
            if trial is None:
                added.outside += 1
                continue
            trials.append(trial)
            self.task_ids.add(result.task_id)
            added.states[trial.state.name] = added.states.get(trial.state.name, 0) + 1
        self.study.add_trials(trials)
        return added

    def _trial(self, result: Result) -> optuna.trial.FrozenTrial | None:
        """The trial of one result; None when its parameters do not fit the distributions."""
        import optuna

        state = optuna.trial.TrialState
        values = self._values(result)
        status = state.COMPLETE if values is not None else (
            state.PRUNED if result.status is Status.PRUNED else state.FAIL)
        distributions = dict(self.header.distributions)
        try:
            trial = optuna.trial.create_trial(
                state=status, values=values, distributions=distributions,
                params={name: result.params[name] for name in distributions},
                intermediate_values={int(step): float(value) for step, value in result.reports
                                     if math.isfinite(value)},
                user_attrs=_user_attrs(result, usable=values is not None),
            )
        except (KeyError, ValueError):  # a parameter missing, or outside its distribution
            return None
        if result.started:  # else (never ran: cancelled) Optuna's "now" stays
            trial.datetime_start = datetime.fromtimestamp(result.started)
            trial.datetime_complete = datetime.fromtimestamp(max(result.ended, result.started))
        return trial

    def _values(self, result: Result) -> list[float] | None:
        """The objective values of an ``ok`` result, if Optuna can use them (finite numbers,
        one per direction), else None."""
        objective = result.objective
        values = objective if isinstance(objective, list) else [objective]
        if result.status is not Status.OK or len(values) != len(self.header.directions):
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in values):
            return None
        return [float(v) for v in values]


def export_journal(journal: Path, target: Path, header: StudyHeader, *, replace: bool = False) -> Added:
    """Write every task of ``journal`` into a new Optuna journal file at ``target``.

    The file is written beside ``target`` under a hidden name and renamed onto it at the
    end, so a kill or an error never leaves half an export (nor harms an earlier one). An
    existing ``target`` is refused unless ``replace``: it may be an Optuna storage holding
    other studies, which a replace would lose.
    """
    if target.exists() and not replace:
        raise ExportError(f"{target} exists; pass --replace to write it anew (a dashboard "
                          "showing it must then be restarted)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial:
        exporter = OptunaExporter.open(partial, header)
        # in task id order, as Optuna numbers trials in the order it proposes them
        return exporter.add(sorted(read_results(journal), key=lambda result: result.task_id))


def _user_attrs(result: Result, usable: bool) -> dict[str, Any]:
    """Where and how the task ran, its metrics (``m:<name>``), and why it did not finish ok.
    Non-finite numbers are written as the journal writes them (``"NaN"``...), since the
    dashboard sends these to a browser as JSON, which has no NaN."""
    attrs: dict[str, Any] = {
        TASK_ID: result.task_id, "status": result.status.value, "rank": result.rank,
        "host": result.host, "attempt": result.attempt,
        "duration": round(max(result.ended - result.started, 0.0), 6),
    }
    if result.gpu is not None:
        attrs["gpu"] = result.gpu
    attrs.update({f"m:{name}": value for name, value in _spelled(result.metrics).items()})
    if result.status is not Status.OK:
        attrs["error"] = reason_of(result.status, result.error)
    elif not usable:
        attrs["error"] = f"objective {result.objective!r} is not one finite number per direction"
    return attrs
