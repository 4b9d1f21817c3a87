"""Turn whatever a model returned into a status, objective(s) and metrics.

A model that returns garbage or NaN is data, not a crash: every such case becomes a
``failed`` result with the reason, and the run goes on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..types import Outcome, Status, is_finite_number


def interpret(returned: Any, objectives: tuple[str, ...]) -> Outcome:
    """The outcome of one model return value.

    A bare number is the objective (single-objective studies); a mapping must hold every
    objective key, and its other keys become metrics.
    """
    if isinstance(returned, Mapping):
        metrics = {str(k): v for k, v in returned.items() if k not in objectives}
        missing = [name for name in objectives if name not in returned]
        if missing:
            keys = ", ".join(map(str, returned)) or "none"
            return Outcome.failed(f"the model returned no {missing[0]!r} (its keys: {keys})", _jsonable(metrics))
        values = [returned[name] for name in objectives]
        metrics = _jsonable(metrics)
    else:
        metrics = {}
        if len(objectives) > 1:
            return Outcome.failed(
                f"the model returned {_describe(returned)}; with several objectives it must "
                f"return a dict with keys {', '.join(objectives)}"
            )
        values = [returned]
    numbers = []
    for name, value in zip(objectives, values):
        number = _as_float(value)
        if number is None:
            return Outcome.failed(f"objective {name!r} is {_describe(value)}, expected a number", metrics)
        if not math.isfinite(number):
            return Outcome.failed(f"objective {name!r} is {number}", metrics)
        numbers.append(number)
    return Outcome(status=Status.OK, objective=numbers[0] if len(numbers) == 1 else numbers, metrics=metrics)


_NON_FINITE = re.compile(r"(?<![\w\"])(-?)(nan|inf|infinity)(?![\w\"])", re.IGNORECASE)
_JSON_SPELLING = {"nan": "NaN", "inf": "Infinity", "infinity": "Infinity"}


def parse_text(text: str) -> Any:
    """What an external model reported (result file or ``MEXPLORE_RESULT`` line): a number,
    or JSON (a number or an object). Raises ValueError for anything else."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:  # C and Fortran print nan and inf, which JSON lacks: read them as NaN and Infinity
        return json.loads(_NON_FINITE.sub(lambda m: f"{m[1]}{_JSON_SPELLING[m[2].lower()]}", text))
    except json.JSONDecodeError:
        raise ValueError(f"neither a number nor JSON: {text[:80]!r}") from None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value) if hasattr(value, "__float__") and not isinstance(value, str) else None
    except (TypeError, ValueError):
        return None


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}" if len(text) > 0 else type(value).__name__


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as JSON-safe values: numpy scalars become numbers, anything else its repr."""
    if not metrics:
        return metrics
    return json.loads(json.dumps(metrics, default=_fallback))


def _fallback(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if is_finite_number(_as_float(value)):
        return _as_float(value)
    return repr(value)
