"""One root for every error mexplore raises on purpose, so callers can tell ours from bugs."""

from __future__ import annotations


class MexploreError(Exception):
    """Base of all errors that carry a message meant for the user."""


class StudyFileError(MexploreError):
    """A study or site file (or a ``--set`` override) holds a value mexplore cannot use.

    The message always names where (file, key), what was found and what was expected, because
    the user is usually looking at a terminal far from the file and must fix it in one go.
    """

    def __init__(self, source: str, key: str, value: object, expected: str, hint: str = "") -> None:
        self.source, self.key, self.value, self.expected, self.hint = source, key, value, expected, hint
        shown = "(missing)" if value is _MISSING else _shortened(repr(value))
        message = f"{source}: {key} = {shown}: expected {expected}"
        super().__init__(f"{message} ({hint})" if hint else message)


SHOWN_LENGTH = 200
"""A value's text is cut to this many characters in a message: a 10 MB string or a list
nested 600 deep must not bury what to fix."""


def _shortened(text: str) -> str:
    return text if len(text) <= SHOWN_LENGTH else f"{text[:SHOWN_LENGTH]}… ({len(text)} characters)"


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()
MISSING: object = _MISSING
"""Stands for a key that is absent, so errors can say so instead of printing None."""


class AlgorithmError(MexploreError):
    """An algorithm could not be found, loaded or constructed, or broke its contract."""


class WorkerError(MexploreError):
    """A worker cannot go on (its model would not import, say); the run stops cleanly."""


class Interrupted(BaseException):
    """Raised inside a running model when its worker got a stop signal (the worker's signal
    handler raises it; see ``runtime/signals.py``).

    A BaseException, so a model's ``except Exception`` does not swallow it; and the one
    exception a model's call lets through: anything else the model raises fails its task.
    """

    def __init__(self, signum: int | None) -> None:
        """``signum``: the signal, or None when the run is stopping while the model waits
        on the master (a ``ctx.load`` the stop leaves unanswered)."""
        import signal

        super().__init__("interrupted: the run is stopping" if signum is None
                         else f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class Pruned(Exception):
    """Raised by ``ctx.report`` when the algorithm's pruner stops the task: let it propagate
    (the task is recorded as ``pruned``), or catch it to clean up and re-raise."""


class Stopped(Pruned):
    """Raised by ``ctx.report`` when the algorithm stopped the task on purpose
    (``future.stop()``): the task is recorded as ``cancelled``. A :class:`Pruned`, so a
    model that cleans up on a prune cleans up on a stop too."""


class BudgetSpent(MexploreError):
    """Raised by ``future.result()`` for a task that will never run: the run ended (its
    budget spent, or a stop signal) before a worker took it. Waiting on it further would
    wait for ever, and a made-up result would mislead the algorithm."""
