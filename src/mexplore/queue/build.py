"""Build the study's algorithm from its name, in either shape.

It lives in ``queue/``, not beside the registry, because a plain function ``run(queue, space,
options)`` becomes an :class:`~.futures.ImperativeAlgorithm`, which is the queue's own.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

from ..algorithms.base import Algorithm, StudyInfo
from ..algorithms.registry import resolve
from ..errors import AlgorithmError
from ..space import Space
from .agents import Agents, as_run_function
from .futures import ImperativeAlgorithm


def build_algorithm(name: str, space: Space, info: StudyInfo, options: dict[str, Any]) -> Algorithm:
    """Instantiate the named algorithm as ``Algorithm(space, info, **options)``; a plain
    function becomes an imperative algorithm. ``pruner`` (in ``options``) is accepted only
    by an algorithm that declares ``prunes``."""
    target = resolve(name)
    if isinstance(target, type) and issubclass(target, Agents):
        factory, prunes = partial(ImperativeAlgorithm, as_run_function(target)), False
    elif isinstance(target, type) and issubclass(target, Algorithm):
        factory, prunes = target, target.prunes
    elif callable(target) and not isinstance(target, type):
        factory, prunes = partial(ImperativeAlgorithm, target), False
    else:
        raise AlgorithmError(
            f"algorithm {name!r} is neither an Algorithm subclass, an Agents subclass nor a function "
            "run(queue, space, options)"
        )
    if "pruner" in options and not prunes:
        raise AlgorithmError(f"algorithm {name!r} does not prune: [algorithm] pruner needs one that "
                             "does, such as optuna.tpe")
    try:
        inspect.signature(factory).bind(space, info, **options)
    except TypeError as exc:
        raise AlgorithmError(
            f"algorithm {name!r} rejected [algorithm.options] {options}: {exc} (an Algorithm is built as "
            "Algorithm(space, info, **options))"
        ) from None
    try:
        return factory(space, info, **options)
    except AlgorithmError:
        raise
    except Exception as exc:  # the plug-in's own code: name it instead of a bare traceback
        raise AlgorithmError(f"algorithm {name!r} failed to start: {type(exc).__name__}: {exc}") from exc
