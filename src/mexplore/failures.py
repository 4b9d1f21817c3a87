"""Why tasks failed, grouped by reason: one rule for the live progress, ``mexplore status``,
``mexplore results --failed`` and the report.

A run whose model cannot work (a misspelled objective key, a missing input file) fails every
task for the same reason; a user must see that reason at once and once, not a count of
failures. A task's *reason* is the last line of its error (the exception of a traceback, the
message a command model's failure ends with), or its status when it has no error text; tasks
with the same reason are counted together, with the first few task ids to look up. Standard
library only, so any room may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .types import Status, error_summary

REASON_LENGTH = 300
"""Reasons are cut to this many characters: one line on a screen, and a bound on memory
when every failure's text is different."""
EXAMPLES = 3
"""How many task ids are kept per reason."""
DISTINCT = 1000
"""At most this many distinct reasons are kept; later new ones are counted under one entry,
so a model whose every error text differs cannot make the tally grow without end."""
OTHERS = "(other reasons)"


def reason_of(status: Status | str, error: str | None) -> str:
    """The one-line reason a task did not finish ok: its error's last line, or its status."""
    summary = error_summary(error)
    if summary is None:
        return Status(status).value
    return summary if len(summary) <= REASON_LENGTH else summary[: REASON_LENGTH - 1] + "…"


@dataclass
class Reason:
    """One reason, how many tasks failed for it, and the first of their ids."""

    text: str
    count: int = 0
    task_ids: list[int] = field(default_factory=list)

    def describe(self) -> str:
        """``12 × the model returned no 'loss' (tasks 0, 1, 2)``."""
        ids = ", ".join(str(i) for i in self.task_ids)
        more = ", …" if self.count > len(self.task_ids) else ""
        noun = "task" if len(self.task_ids) == 1 else "tasks"
        return f"{self.count} × {self.text} ({noun} {ids}{more})"


class FailureTally:
    """Counts failed tasks by reason. :meth:`add` says when a reason is new, so a live
    display can print each reason the first time it is seen and only count it afterwards."""

    def __init__(self) -> None:
        self._reasons: dict[str, Reason] = {}
        self.total = 0

    def add(self, task_id: int, status: Status | str, error: str | None) -> Reason | None:
        """Count one task that did not finish ok (pruned tasks are not failures: leave them
        out, see :func:`is_failure`). Returns its :class:`Reason` when this is the first task with it, else None."""
        text = reason_of(status, error)
        self.total += 1
        reason = self._reasons.get(text)
        new = reason is None
        if new:
            if len(self._reasons) >= DISTINCT:
                text, new = OTHERS, OTHERS not in self._reasons
            reason = self._reasons.setdefault(text, Reason(text))
        reason.count += 1
        if len(reason.task_ids) < EXAMPLES:
            reason.task_ids.append(task_id)
        return reason if new else None

    def most_common(self, n: int | None = None) -> list[Reason]:
        """The reasons, most frequent first (ties: the one seen first)."""
        ranked = sorted(self._reasons.values(), key=lambda reason: -reason.count)
        return ranked if n is None else ranked[:n]

    def __len__(self) -> int:
        return len(self._reasons)


_FAILURES = frozenset([Status.FAILED, Status.TIMEOUT, Status.LOST, "failed", "timeout", "lost"])
"""The statuses as members and as text: looked up, not converted (this runs once per task on
the master's loop, and making a Status of a text costs ten lookups' worth)."""


def is_failure(status: Status | str) -> bool:
    """Whether a task with this status counts as failed: ``failed``, ``timeout`` or ``lost``
    (``pruned`` and ``cancelled`` tasks were stopped on purpose)."""
    return status in _FAILURES
