"""What the master shows while a run goes on: a live bar on a terminal, log lines elsewhere.

Both say the same things: done / failed / pruned / running, the best objective so far, the lag
(how many tasks were pending when the latest finished one was proposed, and the mean over the
session: results a learning algorithm could not see), tasks per second and the time left, and a line when workers wait for the algorithm's proposals
(:mod:`.bottleneck`). Failures are shown by reason (:mod:`mexplore.failures`): each reason gets
a line with a task id the first time a task fails for it, then a number, and the counts per
number ride on the progress line; the final summary lists the most frequent reasons in full.
A user whose model cannot work sees why at the first failure, once, not a growing count.
Updates are cheap counters; drawing is throttled, so a run of tiny tasks does not spend its
time printing.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TextIO

from ..failures import FailureTally, is_failure
from ..objectives import Direction, first_objective
from ..types import Result, Status
from .bottleneck import verdict, window

LOG_EVERY = 10.0
"""Seconds between log lines, and between two looks at whether workers wait for proposals."""
REDRAW_EVERY = 0.25
ON_THE_LINE = 3
"""Reasons whose counts the progress line shows (the most frequent); the rest are summed."""
IN_THE_SUMMARY = 5
"""Reasons the final summary lists in full."""
LIVE_REASONS = 20
"""New reasons shown as they come; past this many (a model whose every error text differs),
later ones are only counted, so the screen is not one line per task."""


class Progress:
    """Counts results and reports them; ``mode`` is ``bar``, ``log`` or ``off``."""

    def __init__(
        self,
        total: int | None,
        objectives: tuple[str, ...],
        direction: Direction | str,
        mode: str = "log",
        resumed: Sequence[Result] = (),
        stream: TextIO | None = None,
        workers: int = 1,
    ) -> None:
        self.total, self.mode, self.stream = total, mode, stream or sys.stderr
        self.workers = workers
        self._spans: deque[Result] = deque(maxlen=window(workers))  # the latest live ones, for verdict()
        self._waiting = False  # what the last bottleneck line said
        self.failures = FailureTally()
        self._labels: dict[str, int] = {}  # reason -> its number on screen, in the order first seen
        self.objective = objectives[0] if len(objectives) == 1 else None
        self.direction = Direction(direction)
        self.done = 0
        self.failed = 0
        self.pruned = 0
        self.cancelled = 0
        self.auxiliary = 0  # tasks of auxiliary kinds ([models.<kind>]): not in done, outside the budget
        self.running = 0
        self.best: float | None = None
        self.lag = 0  # of the latest live result
        self._lags = 0  # summed over the live results, for the mean
        self._live = 0
        self._count(resumed, live=False)
        self._started = time.monotonic()
        self._new = 0
        self._last_shown = self._started
        self._next_look = self._started + LOG_EVERY
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=self.done, unit="task", file=self.stream, dynamic_ncols=True,
                mininterval=REDRAW_EVERY, smoothing=0.1,
            )

    def update(self, results: Sequence[Result], running: int) -> None:
        count = self._count(results)
        self._new += count
        self.running = running
        if self._bar is not None:
            self._bar.update(count)
        self.idle(running)

    def _count(self, results: Sequence[Result], live: bool = True) -> int:
        """Count ``results``; ``live`` ones (not a resumed journal's) are timed for
        :mod:`.bottleneck`, and a failure for a reason not seen before is shown at once."""
        sign = self.direction.sign
        auxiliary = 0
        for result in results:
            if result.kind is not None:
                auxiliary += 1
            if live and result.rank >= 0:  # it ran now (a reused result did not)
                self._spans.append(result)
                self.lag = result.lag
                self._lags += result.lag
                self._live += 1
            if result.status is Status.PRUNED:
                self.pruned += 1
            elif is_failure(result.status):
                self.failed += 1
                self._failure(result, live)
            elif not result.ok:
                self.cancelled += 1
            elif (value := first_objective(result)) is not None and (
                self.best is None or sign * value < sign * self.best  # Direction.better, inlined: per task
            ):
                self.best = value
        self.done += len(results) - auxiliary
        self.auxiliary += auxiliary
        return len(results) - auxiliary

    def _failure(self, result: Result, live: bool) -> None:
        reason = self.failures.add(result.task_id, result.status, result.error)
        if reason is None:
            return
        label = self._labels[reason.text] = len(self._labels) + 1
        if live and label <= LIVE_REASONS:
            self.note(f"task {result.task_id} {result.status.value} (reason {label}): {reason.text}")
        elif live and label == LIVE_REASONS + 1:
            self.note(f"more than {LIVE_REASONS} reasons: new ones are counted, not shown (the summary lists the most frequent)")

    def idle(self, running: int) -> None:
        """Called when a round of the master loop did nothing: a moment to redraw."""
        self.running = running
        now = time.monotonic()
        interval = REDRAW_EVERY if self._bar is not None else LOG_EVERY
        if self.mode == "off" or now - self._last_shown < interval:
            return
        self._last_shown = now
        if now >= self._next_look:
            self._next_look = now + LOG_EVERY
            self._tell_bottleneck()
        if self._bar is not None:
            self._bar.set_postfix_str(self._details(), refresh=False)
        else:
            self.stream.write(f"mexplore: {self.summary()}\n")
            self.stream.flush()

    def note(self, line: str) -> None:
        """A line about one task (a retry, say), above the bar or in the log."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(f"mexplore: {line}", file=self.stream)
        else:
            self.stream.write(f"mexplore: {line}\n")
            self.stream.flush()

    def _tell_bottleneck(self) -> None:
        """A line when workers start (or stop) waiting for proposals, not every look."""
        now = verdict(self._spans, self.workers)
        if (now is not None) != self._waiting:
            self.note(now.line if now is not None else "workers no longer wait for the algorithm")
        self._waiting = now is not None

    def _details(self) -> str:
        pruned = f" pruned={self.pruned}" if self.pruned else ""
        cancelled = f" cancelled={self.cancelled}" if self.cancelled else ""
        cancelled += f" auxiliary={self.auxiliary}" if self.auxiliary else ""
        lag = f" lag={self.lag} (mean {self._lags / self._live:.1f})" if self._live else ""
        details = f"failed={self.failed}{self._by_reason()}{pruned}{cancelled} running={self.running}{lag}"
        if self.objective is None:  # several objectives: no single best
            return details
        best = "-" if self.best is None else f"{self.best:.6g}"
        return f"{details} best {self.objective}={best}"

    def _by_reason(self) -> str:
        """`` (reason 1: 28, reason 2: 2)``: the counts of the most frequent reasons."""
        if not self.failures.total:
            return ""
        top = self.failures.most_common(ON_THE_LINE)
        parts = [f"reason {self._labels[reason.text]}: {reason.count}" for reason in top]
        if rest := self.failures.total - sum(reason.count for reason in top):
            parts.append(f"others: {rest}")
        return f" ({', '.join(parts)})"

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self._new / elapsed if elapsed > 0 else 0.0

    def summary(self, ended: bool = False) -> str:
        """The counts and rate; while the run goes on, also the time left at that rate."""
        total = "" if self.total is None else f"/{self.total}"
        rate = self.rate()
        line = f"{self.done}{total} done, {self._details()}, {rate:.1f} tasks/s"
        if self.total is not None and rate > 0 and not ended:
            line += f", ETA {_duration((self.total - self.done) / rate)}"
        return line

    def close(self, completed: bool) -> None:
        """Final line: ``finished`` when the run reached its end, ``stopped`` otherwise."""
        if self._bar is not None:
            self._bar.set_postfix_str(self._details(), refresh=True)
            self._bar.close()
        if self.mode != "off":
            lines = [f"{'finished' if completed else 'stopped'}: {self.summary(ended=True)}", *self._reasons()]
            if (now := verdict(self._spans, self.workers)) is not None:
                lines.append(now.line)
            self.stream.writelines(f"mexplore: {line}\n" for line in lines)
            self.stream.flush()

    def _reasons(self) -> list[str]:
        """The most frequent failure reasons in full, each with task ids to look up."""
        if not self.failures.total:
            return []
        ranked = self.failures.most_common()
        lines = ["failures by reason, most frequent first:"]
        lines += [f"  reason {self._labels[reason.text]}: {reason.describe()}" for reason in ranked[:IN_THE_SUMMARY]]
        if len(ranked) > IN_THE_SUMMARY:
            lines.append(f"  and {len(ranked) - IN_THE_SUMMARY} more reasons: `mexplore results OUTPUT --failed` lists them")
        return lines


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
