"""EQ/Py's API, for an EMEWS model-exploration module run as it is.

An EQ/Py module (CANDLE's ``deap_ga.py``, an emewscreator ``eqpy`` project's algorithm)
talks to its Swift/T workflow through two string queues: ``OUT_put(s)`` sends, ``IN_get()``
waits for the answer. ``[algorithm] eqpy = "deap_ga.py"`` runs the module's ``run()`` in a
thread of the master, and :func:`run_module` plays the workflow's part over the IoC queue:

- the first message is the handshake (``OUT_put("Params")``): it is answered with
  ``[algorithm.options] params``, the string the Swift workflow would ``EQPy_put``; without
  that option, with a JSON object describing the study (budget, workers, seed, output, space);
- every other message is a batch: points separated by ``;``, each a JSON object (or a
  comma tuple ``x,y`` of the space's parameters, in order), or one JSON list of objects;
  they run as tasks, and the answer is their results in the same order, separated by ``;``:
  the objective (a JSON list for several), or ``[algorithm.options] failed`` (default
  ``"nan"``) for a task that did not give one;
- ``DONE`` (or ``FINAL``) ends the search: the messages the module puts after it (best
  point, final population...) are written to ``<output>/final_result``, ``final_result-2``...;
- a module that raises ends the run with its traceback, as ``EQPY_ABORT`` would.

``import eqpy`` in the module gets this module, and the module's folder is on ``sys.path``,
so its sibling imports (``ga_utils``, ``log_tools``) resolve without editing it.
``TURBINE_OUTPUT`` is set to the run's output directory, where EMEWS modules look for it.
When the budget runs out mid-search, ``IN_get`` raises :class:`~mexplore.errors.BudgetSpent`
in the module, which ends it; the run stops as any budgeted run does.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import queue as queues
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from ..errors import AlgorithmError, BudgetSpent
from ..queue.futures import TaskQueue
from ..space import Space
from ..types import Result, Status

EQPY_ABORT = "EQPY_ABORT"
ENDINGS = ("DONE", "FINAL")
HANDSHAKES = ("Params", "params", "Settings", "")

input_q: queues.Queue = queues.Queue()
"""Workflow -> module: the answers ``IN_get`` returns."""
output_q: queues.Queue = queues.Queue()
"""Module -> workflow: what ``OUT_put`` sends."""
_CLOSED = object()  # in input_q: the run ended, IN_get raises
_ENDED = object()  # in output_q: the module's run() returned or raised


def OUT_put(string_params: str) -> None:  # noqa: N802 (EQ/Py's name)
    """Send a message (a batch of points, a handshake, ``DONE``...) to the workflow."""
    if not isinstance(string_params, str):
        raise TypeError(f"OUT_put({string_params!r}): EQ/Py messages are strings, not {type(string_params).__name__}")
    output_q.put(string_params)


def IN_get() -> str:  # noqa: N802 (EQ/Py's name)
    """Wait for the workflow's answer. Raises BudgetSpent once the run has ended."""
    message = input_q.get()
    if message is _CLOSED:
        input_q.put(_CLOSED)  # for any other thread that waits
        raise BudgetSpent("the run ended (its budget is spent, or it was stopped) before this answer")
    return message


def init(pkg: str) -> threading.Thread:
    """EQ/Py's ``init``: import the module ``pkg`` and start its ``run()`` in a thread."""
    module = importlib.import_module(pkg)
    return _start(module, pkg)


def run_module(queue: TaskQueue, space: Space, options: dict[str, Any]) -> None:
    """An EQ/Py module run as written ([algorithm] eqpy = "module.py"); this is the workflow's side."""
    path = Path(options["module"])
    failed = str(options.get("failed", "nan"))
    _reset()
    if queue.info.output is not None:
        os.environ["TURBINE_OUTPUT"] = str(queue.info.output)  # this run's, over one left from an env file
    _start(_load(path), str(path))
    message = _take()
    if "params" in options and message not in HANDSHAKES:
        print(f"mexplore: warning: the EQ/Py module {path.name}'s first message {message[:80]!r} was taken as its "
              "handshake and answered with [algorithm.options] params", file=sys.stderr)
    if "params" in options or message in HANDSHAKES:
        input_q.put(str(options["params"]) if "params" in options else _study_description(queue, space))
        message = _take()
    try:
        while message not in ENDINGS:
            futures = [queue.submit(point) for point in parse_batch(message, space, path)]
            input_q.put(";".join(_answer(future.result(), failed) for future in futures))
            message = _take()
    except BudgetSpent:
        input_q.put(_CLOSED)
        print(f"mexplore: the budget ended the EQ/Py module {path.name} before it put DONE", file=sys.stderr)
        raise
    _write_finals(queue, path)


run_module.label = lambda options: f"eqpy {Path(options['module']).name}"  # type: ignore[attr-defined]


def parse_batch(message: str, space: Space, module: Path) -> list[dict[str, Any]]:
    """The points of a batch message: a JSON list of objects, or ``;``-separated points,
    each a JSON object or a comma tuple of the space's parameters in order."""
    text = message.strip()
    if text.startswith("["):
        points = _json(text, "a batch", module)
        if isinstance(points, list) and all(isinstance(point, dict) for point in points):
            return points
        raise AlgorithmError(f"the EQ/Py module {module.name} put a JSON list that is not a list of objects: {text[:200]!r}")
    return [_point(piece, space, module) for piece in text.split(";") if piece.strip()]


def _json(text: str, what: str, module: Path) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise AlgorithmError(f"the EQ/Py module {module.name} put {what} that is not JSON "
                             f"({type(exc).__name__}: {exc}): {text[:200]!r}") from None


def _point(piece: str, space: Space, module: Path) -> dict[str, Any]:
    piece = piece.strip()
    if piece.startswith("{") and isinstance(point := _json(piece, "a point", module), dict):
        return point
    names = list(space.parameters)
    values = [_number(value) for value in piece.split(",")]
    if not names or len(values) != len(names):
        raise AlgorithmError(
            f"the EQ/Py module {module.name} put the point {piece[:200]!r}: expected a JSON object, or "
            f"{len(names)} comma-separated values for [space]'s parameters ({', '.join(names) or 'none'})")
    return {**dict(zip(names, values)), **space.constants}


def _number(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def _answer(result: Result, failed: str) -> str:
    """A result as the workflow would send it back: the objective as text."""
    value = result.objective
    if result.status is not Status.OK or value is None:
        return failed
    if isinstance(value, list):
        return json.dumps([v if math.isfinite(v) else str(v) for v in value])
    return repr(float(value))


def _study_description(queue: TaskQueue, space: Space) -> str:
    info = queue.info
    return json.dumps({"budget": info.budget, "workers": info.workers, "seed": info.seed,
                       "output": None if info.output is None else str(info.output),
                       "objectives": list(info.objectives), "parameters": list(space.parameters),
                       "constants": dict(space.constants)})


def _reset() -> None:
    global input_q, output_q
    input_q, output_q = queues.Queue(), queues.Queue()


def _load(path: Path) -> Any:
    """The module at ``path``, with ``eqpy`` standing for this module and its folder at the
    end of sys.path, for its sibling imports. It is imported under a name of its own, and
    its folder comes last, so a module or a sibling named like a library (``csv.py``)
    shadows nothing the master imports."""
    sys.modules["eqpy"] = sys.modules[__name__]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    name = f"mexplore_eqpy_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AlgorithmError(f"the EQ/Py module {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise AlgorithmError(f"the EQ/Py module {path} failed to import: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(module, "run", None)):
        raise AlgorithmError(f"the EQ/Py module {path} has no run() function, which EQ/Py starts")
    return module


def _start(module: Any, name: str) -> threading.Thread:
    def main() -> None:
        try:
            module.run()
        except BudgetSpent:
            pass
        except BaseException:  # EQ/Py's abort: the workflow gets the traceback
            output_q.put(EQPY_ABORT)
            output_q.put(traceback.format_exc())
        output_q.put(_ENDED)

    thread = threading.Thread(target=main, name=f"eqpy-{name}", daemon=True)
    thread.start()
    return thread


def _take() -> str:
    """The module's next message; its abort or early end becomes an AlgorithmError."""
    message = output_q.get()
    if message is _ENDED:
        raise AlgorithmError("the EQ/Py module's run() returned before it put DONE")
    if message == EQPY_ABORT:
        raise AlgorithmError(f"the EQ/Py module failed:\n{output_q.get()}")
    return message


def _write_finals(queue: TaskQueue, path: Path) -> None:
    """The messages after DONE, until the module's run() returns, to the output directory."""
    output = queue.info.output
    count = 0
    while (message := output_q.get()) is not _ENDED:
        if message == EQPY_ABORT:  # what it put before failing is kept
            raise AlgorithmError(f"the EQ/Py module {path.name} failed after DONE:\n{output_q.get()}")
        count += 1
        if output is not None:
            (output / ("final_result" if count == 1 else f"final_result-{count}")).write_text(f"{message}\n")
