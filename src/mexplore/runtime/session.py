"""The composition root: build every piece of a run from a study and wire them together.

Rooms meet only here. The same function runs the master over MPI or in-process; which
transport it gets is decided by :mod:`.entry`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path

from ..algorithms.base import Algorithm, StudyInfo
from ..algorithms.warm_start import WarmStart
from ..comms.backoff import Backoff
from ..comms.launcher import find_mpiexec
from ..comms.messages import Setup, Stop
from ..comms.transport import MasterEnd
from ..config import Study, StudyFileProblem
from ..config.model import ModelSection
from ..config.site import TASK_LAUNCHER
from ..errors import AlgorithmError, MexploreError, StudyFileError
from ..importing import undefined_name
from ..models import ModelSpec
from ..models.gpu import GPUS_PER_NODE, gpus_per_node
from ..objectives import Direction
from ..queue.build import build_algorithm
from ..queue.dispatch import Dispatcher, PlacingDispatcher
from ..queue.keep import KeepPolicy
from ..queue.master_state import STOP_EARLY_AFTER, Ending, MasterState
from ..queue.memo import Memo
from ..queue.policies import Policy, describe, make_policy
from ..queue.pools import PoolDispatcher, Pools, pool_sizes
from ..queue.proposers import Proposers
from ..space import OpenCheck, ProposalCheck
from ..store.atomic import remove_abandoned
from ..store.cache import CACHE_DIR
from ..store.disk import OutputUnwritable
from ..store.journal import JOURNAL_NAME, JournalWriter, read_results
from ..store.lock import OutputLock
from ..store.results_file import write_results
from ..store.study_as_run import (
    changed_tables,
    read_study_as_run,
    resolve_seed,
    write_study_as_run,
)
from ..store.table import results_frame
from ..store.task_ids import read_reserved
from ..types import Shape
from .earlier import earlier_results
from .live import LiveStatus
from .master import MASTER_BACKOFF_CAP, Master, RunLog, start_workers, stop_workers
from .optuna_live import LiveOptunaExport, optuna_header
from .progress import Progress
from .signals import StopSignals


def run_master(end: MasterEnd, study: Study, progress_mode: str, launch: str,
               signals: StopSignals | None = None) -> int | None:
    """Run the study to the end on the master; resumes if the output holds a journal.

    Returns the number of the stop signal that ended the run early, or None when it ran to
    its end; raises :class:`.master.TasksFailing`, once all is written, when its tasks fail
    (it stopped early, or none finished ok). Whatever happens, every worker makes its final
    flush before this returns, and the results tables are rewritten from the journal (except
    on a second Ctrl-C).
    """
    output = study.study.output
    signals = signals or StopSignals()
    interrupted = False
    master: Master | None = None
    lock: OutputLock | None = None
    outcome = "failed"
    try:
        make_output(output)
        # Before anything is written there: a second run on this output would append to the
        # same journal. Refused (OutputInUse), it writes nothing and only stops its workers.
        lock = OutputLock.acquire(output)
        for folder in (output, output / CACHE_DIR):  # what writers killed mid-write left
            remove_abandoned(folder)
        try:
            master, setup = _prepare(end, study, progress_mode, launch, signals)
        except OSError as error:  # the output's filesystem refused a write: full, read-only...
            raise OutputUnwritable(Path(error.filename or output), error, "The run did not start") from None
        start_workers(end, setup)
        completed = False
        try:
            completed = master.run() is Ending.DONE
            if completed and master.state.dispatcher.finished == 0:
                print(f"mexplore: warning: the algorithm {master.algorithm.name!r} finished without proposing a task: "
                      "nothing was evaluated (an [algorithm] command or EQ/Py module that submitted nothing?)",
                      file=sys.stderr)
            outcome = ("finished" if completed else "stopped early (its tasks fail)" if master.stop_signal is None
                       else f"stopped by {signal.Signals(master.stop_signal).name}")
        finally:
            master.log.progress.close(completed)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        try:
            if not interrupted:  # on a second Ctrl-C leave at once: the launcher may not wait
                _finish(end, study, master, outcome)
        finally:
            if lock is not None:  # last: the results tables are written by then
                lock.release()
    if master is not None and (failing := master.failing()) is not None:
        raise failing
    return None if master is None else master.stop_signal


def _prepare(end: MasterEnd, study: Study, progress_mode: str, launch: str,
             signals: StopSignals) -> tuple[Master, Setup]:
    """Everything the master loop needs: the study as run, the algorithm (told what the journal
    holds), the bookkeeping, the journal, and the Setup message for the workers."""
    output = study.study.output
    previous = read_results(output / JOURNAL_NAME)
    earlier_run = read_study_as_run(output)
    seed = resolve_seed(study.algorithm.seed, earlier_run)
    workers = len(end.workers)
    algorithm = warm_started(study_algorithm(study, workers, seed, processes=True), study)
    resolved = study.to_dict()
    resolved["algorithm"]["seed"] = seed
    if previous and (changed := changed_tables(earlier_run, resolved)):
        print(f"mexplore: warning: resuming {output} with a different [{'], ['.join(changed)}] "
              "than the run that wrote its journal", file=sys.stderr)
    policy = make_policy(study.algorithm.policy, workers, study.algorithm.backlog, study.algorithm.batch_size,
                         learns=bool(algorithm.learns))
    write_study_as_run(output, resolved, {
        "ranks": workers + 1, "launch": launch, "resumed_tasks": len(previous), "learns": bool(algorithm.learns),
    })
    if previous:
        algorithm.replay(previous)
    state = MasterState(
        _dispatcher(end, study, policy, ProposalCheck(study.space, algorithm.name) if study.space.parameters
                    else OpenCheck(algorithm.name)),
        KeepPolicy(study.cache.keep_top, study.study.direction[0]),
        workers=workers, memo=Memo() if study.cache.reuse else None,
        flush_every=study.cache.flush_every, abort_on_error=study.model.on_error == "abort",
        stop_early_after=STOP_EARLY_AFTER if study.model.on_error == "record" else None,
    )
    state.resumed(previous, read_reserved(output))
    _announce(study, policy, workers, len(previous))
    progress = Progress(
        study.study.budget, study.study.objective, study.study.direction[0],
        progress_mode, resumed=previous, workers=workers,
    )
    live = LiveStatus.start(output, workers, state.dispatcher.next_id)
    log = RunLog(output, JournalWriter.open(output / JOURNAL_NAME), progress, live)
    if study.study.optuna_journal:
        header = optuna_header(study.study.name, study.study.objective, study.study.direction, study.space,
                               output, study.algorithm.name)
        log.optuna = LiveOptunaExport.start(output, header, previous)
    master = Master(end, algorithm, state, log, signals)
    master.loads.earlier(previous)
    setup = Setup(_model_spec(study.model, study.study.objective),
                  kinds={kind: _model_spec(section, ()) for kind, section in study.kinds.items()},
                  reply_low_water=policy.reply_low_water,
                  output_dir=str(output), local_name=local_name(study), first_task_id=state.dispatcher.next_id)
    return master, setup


def _dispatcher(end: MasterEnd, study: Study, policy: Policy, check: ProposalCheck | OpenCheck) -> Dispatcher:
    """The master's bookkeeping: a task per free worker, or, when tasks may span several
    worker slots (some kind's ``ranks``/``nodes``/``gpus``), each placed on the job's
    nodes; with ``[pools]``, on the workers of its kind's pool."""
    budget, retries = study.study.budget, study.model.retries
    kinds, kind_checks = frozenset(study.kinds), _kind_checks(study)
    sizes = None
    if study.pools:
        try:
            sizes = pool_sizes(study.pools, len(end.workers))
        except ValueError as error:
            raise StudyFileError(str(study.source), "pools", dict(study.pools), f"at most {len(end.workers)} workers",
                                 str(error)) from None
        assert study.study.kind is not None  # [pools] is refused without [models.<kind>]
    if not study.parallel:
        if sizes is not None:
            return PoolDispatcher(end.workers, sizes, study.study.kind, policy, budget, retries, check=check,
                                  kinds=kinds, kind_checks=kind_checks)
        return Dispatcher(end.workers, policy, budget, retries, check=check, kinds=kinds, kind_checks=kind_checks)
    check_job_size(study, len(end.workers))
    algorithm, sections = study.algorithm.name, study.sections

    def shape_of(params: dict, kind: str | None) -> Shape:
        if kind not in sections:
            return Shape()  # not a kind of the study: refused as the task is numbered, naming the kinds
        try:
            return sections[kind].shape(params)
        except ValueError as error:
            name = kind if kind is not None else study.study.kind
            section = "[model]" if name is None else f"[models.{name}]"
            raise AlgorithmError(f"algorithm {algorithm!r} proposed {params}: {section} {error}") from None

    all_run = {kind: section.python is not None for kind, section in sections.items()}
    pools = None if sizes is None else Pools(end.workers, sizes, study.study.kind, kinds)
    return PlacingDispatcher(end.hosts, shape_of, all_run, policy, budget, retries, check=check, gpus=end.gpus,
                             kinds=kinds, kind_checks=kind_checks, pools=pools)


def _kind_checks(study: Study) -> dict[str, ProposalCheck]:
    """The checks of the auxiliary kinds that declare a space of their own."""
    return {kind: ProposalCheck(space, study.algorithm.name, f"[models.{kind}.space]")
            for kind, space in study.kind_spaces.items()}


def study_algorithm(study: Study, workers: int, seed: int | None, processes: bool = False) -> Algorithm:
    """The study's algorithm, built (with ``processes``, in its ``[algorithm] proposers``
    processes when there are several); one that cannot be (unknown name, options or pruner
    it refuses) is a problem of the study file, and the error names it."""
    section, info = study.algorithm, study_info(study, workers, seed)
    try:
        if processes and section.proposers > 1:
            return Proposers(section.name, study.space, info, section.algorithm_options(), section.proposers)
        return build_algorithm(section.name, study.space, info, section.algorithm_options())
    except AlgorithmError as error:
        raise StudyFileProblem(str(study.source), f"[algorithm] {error}") from error


def study_info(study: Study, workers: int, seed: int | None) -> StudyInfo:
    """What the study's algorithm is told of it."""
    return StudyInfo(
        objectives=study.study.objective, directions=tuple(Direction(d) for d in study.study.direction),
        budget=study.study.budget, workers=workers, output=study.study.output, seed=seed,
        kinds=tuple(study.kinds), kind=study.study.kind, placed=study.parallel,
        kind_constants={kind: dict(space.constants) for kind, space in study.kind_spaces.items()},
    )


def warm_started(algorithm: Algorithm, study: Study) -> Algorithm:
    """The algorithm, preceded by the study's ``initial`` points and told the results of the
    run named by ``from``; unchanged when the study has neither."""
    section = study.algorithm
    if not section.initial and section.from_run is None:
        return algorithm
    earlier: list = []
    if section.from_run is not None:
        earlier, outside = earlier_results(section.from_run, study.space)
        left_out = f" ({outside} outside this study's space left out)" if outside else ""
        print(f"mexplore: told {study.algorithm.name} the {len(earlier)} results of {section.from_run}{left_out}",
              file=sys.stderr)
    return WarmStart(algorithm, list(section.initial), earlier)


def _finish(end: MasterEnd, study: Study, master: Master | None, outcome: str) -> None:
    """Stop the workers (each makes its final flush), then write the tables and results.h5."""
    output = study.study.output
    if master is None:
        stop_workers(end, Stop(), Backoff(cap=MASTER_BACKOFF_CAP))
        return
    stop = Stop(keep=master.state.keep.chosen(), abandon=outcome != "finished")
    try:
        flushes = stop_workers(end, stop, master.backoff, master.take_late_results, master.loads)
    finally:
        master.log.journal.close()
        if master.log.optuna is not None:
            master.log.optuna.close()
    for flushed in flushes:
        if flushed.error:
            print(f"mexplore: warning: rank {flushed.rank}: {flushed.error}", file=sys.stderr)
    kept = [f for f in flushes if f.path is not None]
    if kept:
        print(f"mexplore: flushed {sum(f.tasks for f in kept)} tasks' outputs "
              f"({sum(f.nbytes for f in kept) / 1e6:.1f} MB) to {output / CACHE_DIR}", file=sys.stderr)
    try:
        frame = results_frame(output / JOURNAL_NAME, study.study.objective, study.study.direction)
        table = write_results(output, frame, master.state.keep.chosen(), study.study.kind)
    except OSError as error:  # a full disk: the journal holds every result; the next run writes these
        print(f"mexplore: warning: results.csv and results.h5 not written: {error.strerror or error} "
              f"({error.filename or output}); the journal holds every result", file=sys.stderr)
        table = None
    master.log.live.flushed(len(kept), sum(f.nbytes for f in kept))
    master.log.live.ended(outcome)
    if table is not None:
        print(f"mexplore: results in {table}", file=sys.stderr)


def local_name(study: Study) -> str:
    """The study's folder under each node's local directory: named after the study, and
    unique per output directory, so two studies of the same name never share a cache."""
    digest = hashlib.sha1(str(study.study.output).encode()).hexdigest()[:8]
    return f"mexplore-{study.study.name}-{digest}"


def check_study(study: Study, ranks: int | None = None) -> None:
    """Checks that need more than the study file: the output directory can be one, and the
    algorithm loads and accepts its options and the space; with the job's ``ranks`` (master
    included) known, that its tasks fit in it. Run before any rank starts, so such errors
    come at once."""
    check_output(study.study.output)
    check_names(study)
    if ranks is not None:
        check_job_size(study, ranks - 1 if ranks > 1 else 0)
    seed = 0 if study.algorithm.seed is None else study.algorithm.seed
    study_algorithm(study, 1, seed).close()


def check_job_size(study: Study, workers: int) -> None:
    """Refuse parallel tasks (``ranks`` of a model section) in a job with no worker ranks for
    them (an in-process run), or a constant ``ranks`` larger than the job's worker count."""
    for kind, model in study.sections.items():
        if not model.parallel:
            continue
        at = "model" if study.study.kind is None else f"models.{study.study.kind if kind is None else kind}"
        if workers == 0:
            raise StudyFileError(str(study.source), f"{at}.ranks", model.ranks, "an MPI run",
                                 "tasks of several ranks run on the job's worker ranks: run with -n 2 or more")
        if isinstance(model.ranks, int) and model.ranks > workers:
            raise StudyFileError(str(study.source), f"{at}.ranks", model.ranks, f"at most {workers}",
                                 f"the job has {workers} worker rank(s) (-n less the master): "
                                 f"run with -n {model.ranks + 1} or more")
        if isinstance(model.gpus, int) and model.gpus > gpus_per_node():
            have = gpus_per_node()
            raise StudyFileError(str(study.source), f"{at}.gpus", model.gpus, f"at most {have}",
                                 f"{GPUS_PER_NODE} says a node has {have} GPU(s)" if have else
                                 f"no GPU count is set: set {GPUS_PER_NODE} (the site's gpus_per_node does)")


def check_names(study: Study) -> None:
    """Refuse a model function or algorithm class that its ``.py`` file does not define
    (``model.py:brannin``), naming the study file, the key and the closest names. The file
    is read, not imported: a model may load a GPU stack the launching process must not."""
    model_key = "model.python" if study.study.kind is None else f"models.{study.study.kind}.python"
    targets = [(model_key, study.model.python, "a function the file defines"),
               *((f"models.{kind}.python", section.python, "a function the file defines")
                 for kind, section in study.kinds.items()),
               ("algorithm.name", study.algorithm.name, "a class or function the file defines")]
    for key, target, expected in targets:
        where, _, name = (target or "").rpartition(":")
        if not where.endswith(".py"):
            continue
        try:
            problem = undefined_name(Path(where), name)
        except (SyntaxError, ValueError) as error:
            problem = f"{Path(where).name} does not parse: {error}"
        if problem:
            raise StudyFileError(str(study.source), key, target, expected, problem)


def check_output(output: Path) -> None:
    """Refuse, with the reason, an output path that cannot be a run's directory: a file, or
    a folder under a file."""
    for folder in (output, *output.parents):
        if folder.exists():
            if not folder.is_dir():
                raise MexploreError(f"study.output = {str(output)!r}: {folder} is a file, expected a directory "
                                    "(or a path that does not exist yet)")
            return


def make_output(output: Path) -> None:
    """Create the output directory, or say in one line why it cannot be (read-only, no space)."""
    check_output(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MexploreError(f"cannot create the output directory {output}: {exc.strerror or exc}") from None


def _model_spec(model: ModelSection, objectives: tuple[str, ...]) -> ModelSpec:
    """A model as workers build it (an auxiliary kind's has no ``objectives``); ``local_dir``
    is filled in by each worker (per node)."""
    return ModelSpec(
        objectives=objectives, local_dir="",
        python=model.python, command=model.command, isolate=model.isolate, env=model.env,
        cwd=None if model.cwd is None else str(model.cwd), timeout=model.timeout,
        launcher=task_launcher(model.launcher), mpiexec=find_mpiexec() if model.parallel and model.command else "mpiexec",
    )


def task_launcher(study_launcher: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """What starts a command of several ranks: the study's ``[model] launcher``, else the
    site's ``task_launcher`` (exported by its batch script), else None (the bundled mpiexec)."""
    if study_launcher is not None:
        return study_launcher
    site_launcher = os.environ.get(TASK_LAUNCHER)
    if not site_launcher:
        return None
    try:
        argv = json.loads(site_launcher)
    except ValueError:
        argv = None
    if not (isinstance(argv, list) and argv and all(isinstance(item, str) for item in argv)):
        raise MexploreError(f"${TASK_LAUNCHER} = {site_launcher!r}: expected a JSON list of strings, "
                            'such as ["srun", "-n", "{ranks}"] (the batch script of a site with task_launcher sets it)')
    return tuple(argv)


def _announce(study: Study, policy: Policy, workers: int, resumed: int) -> None:
    budget = "until the algorithm finishes" if study.study.budget is None else f"budget {study.study.budget}"
    again = f", resuming after {resumed} finished tasks" if resumed else ""
    if study.algorithm.initial:
        again += f", {len(study.algorithm.initial)} initial points first"
    dispatch = "tasks placed on worker slots by their ranks" if study.parallel else describe(policy)
    if study.pools:
        dispatch += "; pools " + ", ".join(f"{kind} {size}" for kind, size in study.pools.items())
    print(
        f"mexplore: study {study.study.name!r}: {study.algorithm.name} ({dispatch}), "
        f"{workers} worker(s), {budget}{again}; output {study.study.output}",
        file=sys.stderr,
    )
