"""Turn whatever a model returned into a status, objective(s) and metrics.

A model that returns garbage or NaN is data, not a crash: every such case becomes a
``failed`` result with the reason, and the run goes on. That includes values built to
break a recorder (a number beyond float range, a dict that contains itself, a list nested
thousands deep, an object whose ``__float__`` or ``__repr__`` raises, megabytes of
metrics): what leaves the worker is plain, bounded JSON data, so neither the master nor a
later resume can trip over it.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import sys
from collections.abc import Mapping
from typing import Any

from ..types import Outcome, Status

DEPTH_LIMIT = 100
"""Levels a metric may nest (a list in a list in a dict...); deeper is a failed task."""
METRICS_LIMIT = 1 << 20
"""Bytes a result's metrics may take as compact JSON: each one travels to the master and
becomes part of one journal line."""
ERROR_LIMIT = 64 << 10
"""Characters of an error text kept: its beginning and its end, where a traceback's
exception is."""
USER_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit, KeyboardInterrupt, GeneratorExit)
"""What model code may raise that makes the task ``failed``. A real Ctrl-C or stop signal
never reaches a model as one of these: a worker rank turns it into its own ``Interrupted``
(and in-process workers are threads, which never get signals), so it still stops the run."""


class Unrecordable(ValueError):
    """A returned value that cannot be recorded; the message says which and why."""


def interpret(returned: Any, objectives: tuple[str, ...]) -> Outcome:
    """The outcome of one model return value.

    A bare number is the objective (single-objective studies); a mapping must hold every
    objective key, and its other keys become metrics. With no objectives (an auxiliary
    kind's model: a surrogate's training), a mapping is all metrics, anything else (None
    included) is the metric ``value``. Never raises for what a model returns.
    """
    try:
        return _interpret(returned, objectives)
    except Unrecordable as exc:
        return Outcome.failed(str(exc))
    except USER_ERRORS as exc:  # a hostile object's own method (__iter__, __eq__...) raised
        return Outcome.failed(f"the model's return value could not be read: {_exception_text(exc)}")


def _interpret(returned: Any, objectives: tuple[str, ...]) -> Outcome:
    if not objectives:
        metrics = returned if isinstance(returned, Mapping) else {} if returned is None else {"value": returned}
        return Outcome(status=Status.OK, metrics=jsonable(dict(metrics)))
    if isinstance(returned, Mapping):
        metrics = {k: v for k, v in returned.items() if k not in objectives}
        missing = [name for name in objectives if name not in returned]
        if missing:
            keys = ", ".join(_text(key) for key in returned) or "none"
            reason = f"the model returned no {missing[0]!r} (its keys: {recordable_text(keys, 200)})"
            try:
                return Outcome.failed(reason, jsonable(metrics))
            except Unrecordable:
                return Outcome.failed(reason)
        values = [returned[name] for name in objectives]
        metrics = jsonable(metrics)
    else:
        metrics = {}
        if len(objectives) > 1:
            return Outcome.failed(
                f"the model returned {describe(returned)}; with several objectives it must "
                f"return a dict with keys {', '.join(objectives)}"
            )
        values = [returned]
    numbers = []
    for name, value in zip(objectives, values):
        try:
            number = _as_float(value)
        except OverflowError:
            return Outcome.failed(f"objective {name!r} is {describe(value)}, beyond the float range", metrics)
        if number is None:
            return Outcome.failed(f"objective {name!r} is {describe(value)}, expected a number", metrics)
        if not math.isfinite(number):
            return Outcome.failed(f"objective {name!r} is {number}", metrics)
        numbers.append(number)
    return Outcome(status=Status.OK, objective=numbers[0] if len(numbers) == 1 else numbers, metrics=metrics)


_NON_FINITE = re.compile(r"(?<![\w\"])(-?)(nan|inf|infinity)(?![\w\"])", re.IGNORECASE)
_JSON_SPELLING = {"nan": "NaN", "inf": "Infinity", "infinity": "Infinity"}


def parse_text(text: str) -> Any:
    """What an external model reported (result file or ``MEXPLORE_RESULT`` line): a number,
    or JSON (a number or an object). Raises ValueError for anything else, or for JSON
    nested too deep to read (the metrics' own limit, :data:`DEPTH_LIMIT`, comes after)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return _json(text)
    except json.JSONDecodeError:
        pass
    try:  # C and Fortran print nan and inf, which JSON lacks: read them as NaN and Infinity
        return _json(_NON_FINITE.sub(lambda m: f"{m[1]}{_JSON_SPELLING[m[2].lower()]}", text))
    except json.JSONDecodeError:
        raise ValueError(f"neither a number nor JSON: {text[:80]!r}") from None


def _json(text: str) -> Any:
    """``json.loads``, with its two ways to fail on valid JSON said plainly: nesting deeper
    than the interpreter's recursion limit, and an integer of more than 4300 digits."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {DEPTH_LIMIT} levels") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int too long for Python to read
        raise ValueError(f"a number beyond the float range ({exc})") from None


def jsonable(metrics: dict[Any, Any]) -> dict[str, Any]:
    """Metrics as plain JSON data: str keys; None, bools, str, int, float (NaN and infinity
    included: the journal spells them) in dicts and lists. numpy scalars and arrays become
    numbers and lists, tuples lists, anything else its repr. Raises :class:`Unrecordable`,
    naming the metric, for what cannot be recorded: a value nested deeper than
    :data:`DEPTH_LIMIT` levels or containing itself, an int beyond the float range, a repr
    that raises, or metrics larger than :data:`METRICS_LIMIT` bytes as JSON."""
    if not metrics:
        return {}
    walk = _Walk()
    plain = {}
    for key, value in metrics.items():
        name = walk.key(key)
        walk.metric = name
        plain[name] = walk.value(value, 1)
    size = len(json.dumps(plain, separators=(",", ":")))  # as the journal writes it, give or take NaN
    if size > METRICS_LIMIT:
        raise Unrecordable(f"the metrics take {size} bytes as JSON, more than the limit of {_size(METRICS_LIMIT)}")
    return plain


class _Walk:
    """One pass over a result's metrics, copying them as plain data. It counts a lower
    bound of their JSON size as it goes, so a huge result fails early instead of being
    copied whole first; :func:`jsonable` then measures exactly."""

    def __init__(self) -> None:
        self.metric = ""
        self.size = 0
        self.path: set[int] = set()  # ids of the containers being copied: a cycle comes back to one

    def key(self, key: Any) -> str:
        return _valid_text(key if isinstance(key, str) else str(key))

    def value(self, value: Any, level: int) -> Any:
        self._count(1)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            self._count(len(value))
            return _valid_text(value)
        if isinstance(value, float):
            return float(value)  # a plain float, not a subclass such as numpy.float64
        if isinstance(value, int):
            if abs(value) > sys.float_info.max:
                raise Unrecordable(f"metric {self.metric!r} holds {describe(value)}, beyond the float range")
            return int(value)
        if isinstance(value, (Mapping, list, tuple)):
            return self._container(value, level)
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            size = getattr(value, "size", 0)  # numpy's element count (torch's is a method)
            if isinstance(size, int) and size > METRICS_LIMIT:  # before copying it all into lists
                raise Unrecordable(f"metric {self.metric!r} is an array of {size} values, more than "
                                   f"the metrics' limit of {_size(METRICS_LIMIT)} allows")
            return self.value(value.tolist(), level)
        number = _finite_float(value)
        if number is not None:
            return number
        try:
            text = repr(value)
        except USER_ERRORS as exc:
            raise Unrecordable(f"metric {self.metric!r} is a {type(value).__name__} whose repr raised "
                               f"{_exception_text(exc)}") from None
        return self.value(text, level)

    def _container(self, value: Mapping | list | tuple, level: int) -> Any:
        if level > DEPTH_LIMIT:
            raise Unrecordable(f"metric {self.metric!r} nested deeper than {DEPTH_LIMIT} levels")
        if id(value) in self.path:
            raise Unrecordable(f"metric {self.metric!r} contains itself")
        self.path.add(id(value))
        if isinstance(value, Mapping):
            copy: Any = {}
            for key, item in value.items():
                name = self.key(key)
                self._count(len(name) + 3)
                copy[name] = self.value(item, level + 1)
        else:
            copy = [self.value(item, level + 1) for item in value]
        self.path.discard(id(value))
        return copy

    def _count(self, size: int) -> None:
        self.size += size
        if self.size > METRICS_LIMIT:
            raise Unrecordable(f"the metrics take more than the limit of {_size(METRICS_LIMIT)} as JSON "
                               f"(at metric {self.metric!r})")


def _as_float(value: Any) -> float | None:
    """``value`` as a float if it is a number (bools and text are not); an int beyond the
    float range raises OverflowError."""
    if isinstance(value, (bool, str)) or not hasattr(value, "__float__"):
        return None
    if isinstance(value, int):
        return float(value)
    try:
        return float(value)
    except USER_ERRORS:  # a __float__ that raises: not a number
        return None


def _finite_float(value: Any) -> float | None:
    try:
        number = _as_float(value)
    except OverflowError:
        return None
    return number if number is not None and math.isfinite(number) else None


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlong = 40


def describe(value: Any) -> str:
    """The type and a short repr of any value, for an error message: bounded for big
    containers, and safe with a repr that raises or an int too long to print."""
    name = type(value).__name__
    if isinstance(value, int) and value.bit_length() > 1000:  # repr() refuses ints over 4300 digits
        return f"{name} of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return f"{name} {_SHORT.repr(value)}"


def recordable_text(text: str, limit: int = ERROR_LIMIT) -> str:
    """``text`` as it can be recorded: valid UTF-8, and cut to about ``limit`` characters,
    keeping its beginning and its end with a note of what was cut between."""
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"
    return _valid_text(text)


def _valid_text(text: str) -> str:
    """Text that encodes as UTF-8: an unpaired surrogate (Python allows them, strict JSON
    readers of other languages do not) becomes a ``\\udXXX`` escape."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="backslashreplace").decode()
    return text if type(text) is str else str.__str__(text)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else describe(value)


def _exception_text(exc: BaseException) -> str:
    try:
        message = str(exc)
    except USER_ERRORS:
        message = ""
    return recordable_text(f"{type(exc).__name__}: {message}" if message else type(exc).__name__, 500)


def _size(nbytes: int) -> str:
    return f"{nbytes >> 20} MiB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KiB"
