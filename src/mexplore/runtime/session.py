"""The composition root: build every piece of a run from a study and wire them together.

Rooms meet only here. The same function runs the master over MPI or in-process; which
transport it gets is decided by :mod:`.entry`.
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

from ..algorithms.base import Algorithm
from ..algorithms.registry import resolve
from ..comms.backoff import Backoff
from ..comms.messages import Setup
from ..comms.transport import MasterEnd
from ..config import Study
from ..errors import AlgorithmError
from ..models import ModelSpec
from ..queue.dispatch import Dispatcher
from ..queue.futures import ImperativeAlgorithm
from ..queue.policies import make_policy
from ..space import Space
from ..store.journal import JOURNAL_NAME, JournalWriter, read_results
from ..store.table import write_results_csv
from .master import Master, start_workers, stop_workers
from .progress import Progress
from .record import changed_tables, read_record, resolve_seed, write_record

MASTER_BACKOFF_CAP = 100e-6
"""The master sleeps at most this long when idle: every result may wait this long (plus the
kernel's wake-up delay) to be seen, so it bounds the hand-off latency. The price: a waiting
master uses about a fifth of one core (docs/benchmarks.md)."""


def run_master(end: MasterEnd, study: Study, progress_mode: str, launch: str) -> None:
    """Run the study to the end on the master; resumes if the output holds a journal."""
    output = study.study.output
    journal_path = output / JOURNAL_NAME
    interrupted = False
    try:
        output.mkdir(parents=True, exist_ok=True)
        previous = read_results(journal_path)
        earlier_record = read_record(output)
        seed = resolve_seed(study.algorithm.seed, earlier_record)
        algorithm = build_algorithm(study.algorithm.name, study.space, seed, study.algorithm.options,
                                    study.study.direction)
        resolved = study.to_dict()
        resolved["algorithm"]["seed"] = seed
        if previous and (changed := changed_tables(earlier_record, resolved)):
            print(f"mexplore: warning: resuming {output} with a different [{'], ['.join(changed)}] "
                  "than the run that wrote its journal", file=sys.stderr)
        write_record(output, resolved, {
            "ranks": len(end.workers) + 1, "launch": launch, "resumed_tasks": len(previous),
        })
        if previous:
            algorithm.replay(previous)
        policy = make_policy(
            study.algorithm.policy, len(end.workers), study.algorithm.backlog, study.algorithm.batch_size,
        )
        dispatcher = Dispatcher(end.workers, policy, study.study.budget, study.model.retries)
        dispatcher.resume(previous)
        _announce(study, len(end.workers), len(previous))
        progress = Progress(
            study.study.budget, study.study.objective, study.study.direction[0],
            progress_mode, resumed=previous,
        )
        journal = JournalWriter(journal_path)
        master = Master(end, algorithm, dispatcher, journal, progress, Backoff(cap=MASTER_BACKOFF_CAP),
                        abort_on_error=study.model.on_error == "abort")
        start_workers(end, Setup(_model_spec(study), reply_low_water=policy.reply_low_water))
        completed = False
        try:
            master.run()
            completed = True
        finally:
            journal.close()
            progress.close(completed)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        stop_workers(end)
        if not interrupted:  # on Ctrl-C leave at once: the launcher may not wait for a slow exit
            _write_table(journal_path, study)  # what was done, also after a stop


def _write_table(journal_path: Path, study: Study) -> None:
    if journal_path.exists():
        table = write_results_csv(journal_path, study.study.objective, study.study.output)
        print(f"mexplore: results in {table}", file=sys.stderr)


def check_study(study: Study) -> None:
    """Checks that need more than the study file: the algorithm loads and accepts its
    options and the space. Run before any rank starts, so such errors come at once."""
    seed = 0 if study.algorithm.seed is None else study.algorithm.seed
    build_algorithm(study.algorithm.name, study.space, seed, study.algorithm.options,
                    study.study.direction).close()


def build_algorithm(
    name: str, space: Space, seed: int | None, options: dict, directions: tuple[str, ...] = ("minimize",),
) -> Algorithm:
    """Instantiate the named algorithm; a plain function becomes an imperative algorithm.

    ``directions`` (one "minimize"/"maximize" per objective) is passed only to algorithms
    whose constructor takes a ``directions`` keyword: sweeps do not care, and a plug-in
    written before it existed keeps working."""
    target = resolve(name)
    if isinstance(target, type) and issubclass(target, Algorithm):
        factory = target
    elif callable(target) and not isinstance(target, type):
        factory = partial(ImperativeAlgorithm, target)
    else:
        raise AlgorithmError(
            f"algorithm {name!r} is neither an Algorithm subclass nor a function run(queue, space, options)"
        )
    if "directions" in inspect.signature(factory).parameters:
        options = {**options, "directions": tuple(directions)}
    try:
        inspect.signature(factory).bind(space, seed=seed, **options)
    except TypeError as exc:
        raise AlgorithmError(f"algorithm {name!r} rejected [algorithm.options] {options}: {exc}") from None
    try:
        return factory(space, seed=seed, **options)
    except AlgorithmError:
        raise
    except Exception as exc:  # the plug-in's own code: name it instead of a bare traceback
        raise AlgorithmError(f"algorithm {name!r} failed to start: {type(exc).__name__}: {exc}") from exc


def _model_spec(study: Study) -> ModelSpec:
    local = Path(os.environ.get("MEXPLORE_LOCAL_DIR") or tempfile.gettempdir())
    model = study.model
    return ModelSpec(
        objectives=study.study.objective, local_dir=str(local / f"mexplore-{study.study.name}"),
        python=model.python, command=model.command, isolate=model.isolate, env=model.env,
        cwd=None if model.cwd is None else str(model.cwd), timeout=model.timeout,
    )


def _announce(study: Study, workers: int, resumed: int) -> None:
    budget = "until the algorithm finishes" if study.study.budget is None else f"budget {study.study.budget}"
    again = f", resuming after {resumed} finished tasks" if resumed else ""
    print(
        f"mexplore: study {study.study.name!r}: {study.algorithm.name} ({study.algorithm.policy}), "
        f"{workers} worker(s), {budget}{again}; output {study.study.output}",
        file=sys.stderr,
    )
