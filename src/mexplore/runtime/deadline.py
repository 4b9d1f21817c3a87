"""``mexplore run --walltime 2h`` / ``--stop-at 14:30``: a run that stops itself in time.

A batch job's walltime ends the job whether or not the run has flushed. Schedulers can
send a signal before it (Slurm's ``--signal``), but not every launcher passes signals on
to the ranks (PALS is not documented to). With a deadline, every rank stops itself
instead: each arms a timer (``SIGALRM``) for the deadline less ``--stop-before``, and its
handler is the one a scheduler's SIGTERM meets, so the run stops exactly as after a stop
signal: dispatching ends, running tasks are interrupted, every worker flushes, the tables
are written, and the exit status is 128 + SIGALRM (142); the same command resumes.

The launching process (``mexplore run -n N``) works the deadline out once and hands it to
the ranks it starts as :data:`STOP_AT` (seconds since the epoch), so all ranks agree; it
never arms a timer itself, since a timer outlives the ``exec`` of ``mpiexec`` and would
kill it. A Python model that uses ``signal.alarm`` itself would clash with this.
"""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime, timedelta

from ..errors import MexploreError

STOP_AT = "MEXPLORE_STOP_AT"
"""The environment variable that carries the moment to stop (seconds since the epoch)."""
STOP_BEFORE_AT_MOST = 60.0
"""The default margin for the flush: a tenth of the time left, at most this."""
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def stop_time(walltime: str | None, stop_at: str | None, stop_before: str | None,
              now: float | None = None) -> float | None:
    """When to stop (seconds since the epoch), from the options; None when none is given.

    ``walltime`` is a duration from now (``"2h"``, ``"1:30:00"``, seconds); ``stop_at`` a
    clock time today (tomorrow if past: ``"14:30"``), a date and time (``"2026-12-01T14:30"``)
    or ``@`` and seconds since the epoch. ``stop_before`` is the margin left for the flush
    (default: a tenth of the time left, at most a minute).
    """
    if walltime is None and stop_at is None:
        if stop_before is not None:
            raise MexploreError("--stop-before needs --walltime or --stop-at")
        return None
    if walltime is not None and stop_at is not None:
        raise MexploreError("--walltime and --stop-at both give the deadline: give one")
    # Imported here: every worker rank imports this module, and few need the site rules.
    from ..config.site import walltime_option

    now = time.time() if now is None else now
    deadline = now + walltime_option(walltime) if walltime is not None else _moment(stop_at, now)
    left = deadline - now
    margin = walltime_option(stop_before, "--stop-before") if stop_before is not None else min(
        left / 10, STOP_BEFORE_AT_MOST)
    if left - margin <= 0:
        raise MexploreError(f"the deadline leaves no time to run: {left:.0f} s left, "
                            f"{margin:.0f} s of them kept for the flush (--stop-before)")
    return deadline - margin


def _moment(text: str, now: float) -> float:
    text = text.strip()
    if text.startswith("@"):
        try:
            return float(text[1:])
        except ValueError:
            pass
    elif clock := _CLOCK.fullmatch(text):
        hour, minute, second = (int(part or 0) for part in clock.groups())
        today = datetime.fromtimestamp(now)
        try:
            moment = today.replace(hour=hour, minute=minute, second=second, microsecond=0)
        except ValueError:
            moment = None
        if moment is not None:
            return (moment if moment.timestamp() > now else moment + timedelta(days=1)).timestamp()
    else:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    raise MexploreError(f"--stop-at {text!r}: expected a time of day (14:30), a date and time "
                        "(2026-12-01T14:30) or @ and seconds since the epoch")


def arm(stop_at: float) -> None:
    """Have SIGALRM come to this process at ``stop_at`` (at once if that has passed)."""
    signal.setitimer(signal.ITIMER_REAL, max(stop_at - time.time(), 0.001))


def disarm() -> None:
    """The run has ended: no SIGALRM is to come. Python puts back SIGALRM's default action as
    it exits, so a timer left armed would kill a rank on its way out (an MPI peer of a
    rank killed in its finalize can wait for it until the job's time limit)."""
    signal.setitimer(signal.ITIMER_REAL, 0)


def inherited() -> float | None:
    """The stop time the launching process gave this rank, if any."""
    value = os.environ.get(STOP_AT)
    try:
        return None if value is None else float(value)
    except ValueError:
        raise MexploreError(f"${STOP_AT}={value!r}: expected seconds since the epoch") from None
