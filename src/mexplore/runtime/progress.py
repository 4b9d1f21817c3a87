"""What the master shows while a run goes on: a live bar on a terminal, log lines elsewhere.

Both say the same things: done / failed / pruned / running, the best objective so far, tasks per
second and the time left, and a line when the algorithm, not the workers, limits throughput
(:mod:`.bottleneck`). Updates are cheap counters; drawing is throttled, so a run of tiny
tasks does not spend its time printing.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TextIO

from ..objectives import Direction, first_objective
from ..types import Result, Status
from .bottleneck import RECENT, verdict

LOG_EVERY = 10.0
REDRAW_EVERY = 0.25


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
        self._costs: deque[tuple[float, float]] = deque(maxlen=RECENT)
        self._bound: bool | None = None  # what the last bottleneck line said
        self.objective = objectives[0] if len(objectives) == 1 else None
        self.direction = Direction(direction)
        self.done = 0
        self.failed = 0
        self.pruned = 0
        self.running = 0
        self.best: float | None = None
        self._count(resumed)
        self._started = time.monotonic()
        self._new = 0
        self._last_shown = self._started
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

    def _count(self, results: Sequence[Result]) -> int:
        sign = self.direction.sign
        for result in results:
            if result.rank >= 0:  # it ran (a reused result did not)
                self._costs.append((result.algorithm_time, result.ended - result.started))
            if result.status is Status.PRUNED:
                self.pruned += 1
            elif not result.ok:
                self.failed += 1
            elif (value := first_objective(result)) is not None and (
                self.best is None or sign * value < sign * self.best  # Direction.better, inlined: per task
            ):
                self.best = value
        self.done += len(results)
        return len(results)

    def idle(self, running: int) -> None:
        """Called when a round of the master loop did nothing: a moment to redraw."""
        self.running = running
        now = time.monotonic()
        interval = REDRAW_EVERY if self._bar is not None else LOG_EVERY
        if self.mode == "off" or now - self._last_shown < interval:
            return
        self._last_shown = now
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
        """A line when the algorithm starts (or stops) limiting throughput, not every redraw."""
        now = verdict(self._costs, self.workers)
        bound = None if now is None else now.bound
        if bound != self._bound:
            self.note(now.line if now is not None else "the algorithm no longer limits throughput")
        self._bound = bound

    def _details(self) -> str:
        pruned = f" pruned={self.pruned}" if self.pruned else ""
        details = f"failed={self.failed}{pruned} running={self.running}"
        if self.objective is None:  # several objectives: no single best
            return details
        best = "-" if self.best is None else f"{self.best:.6g}"
        return f"{details} best {self.objective}={best}"

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self._new / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        total = "" if self.total is None else f"/{self.total}"
        rate = self.rate()
        line = f"{self.done}{total} done, {self._details()}, {rate:.1f} tasks/s"
        if self.total is not None and rate > 0:
            line += f", ETA {_duration((self.total - self.done) / rate)}"
        return line

    def close(self, completed: bool) -> None:
        """Final line: ``finished`` when the run reached its end, ``stopped`` otherwise."""
        if self._bar is not None:
            self._bar.set_postfix_str(self._details(), refresh=True)
            self._bar.close()
        if self.mode != "off":
            self.stream.write(f"mexplore: {'finished' if completed else 'stopped'}: {self.summary()}\n")
            if (now := verdict(self._costs, self.workers)) is not None:
                self.stream.write(f"mexplore: {now.line}\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
