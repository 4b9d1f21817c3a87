"""The worker loop: take tasks from the master, run them, send results back.

Tasks a worker holds run one after the other; what it holds and when results go back is
:class:`~.worker_state.WorkerState`'s call, made before each task starts. What the models save goes into the worker's node-local
cache, flushed to the output directory when the master asks and once more at the end.
"""

from __future__ import annotations

import pickle
import time
import traceback
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from ..comms.backoff import Backoff
from ..comms.messages import (
    Flush,
    Flushed,
    IntermediateValue,
    LoadOutput,
    OutputData,
    Prune,
    ResultBatch,
    SendOutput,
    Setup,
    SignalReceived,
    Stop,
    TaskBatch,
    WorkerFailed,
)
from ..comms.transport import WorkerEnd
from ..errors import Interrupted, Pruned, Stopped
from ..models.context import remove_task_dirs_below
from ..models.kinds import ModelsByKind
from ..models.reaper import Reaper
from ..models.refs import WorkerRefs
from ..node import local_root, node_name
from ..store.cache import CACHE_DIR, TaskCache, free_flush_name
from ..types import Place, Result, Task
from .signals import StopSignals
from .worker_state import WorkerState

WORKER_SPIN = 1e-3
"""After a task, a worker polls (yielding the core) this long before it starts to sleep:
the master's answer to a result usually comes well within it, and a worker asleep when
it comes would add its sleep to every hand-off."""

ModelFactory = Callable[..., Callable[[Task], Result]]
"""``make_model(spec, rank, host, report, cache, guard, task_comm, refs=...)``: :func:`mexplore.models.build_model`."""


def serve(
    link: WorkerEnd, make_model: ModelFactory, backoff: Backoff | None = None,
    signals: StopSignals | None = None,
) -> None:
    """Run until the master says stop, then flush the cache and answer :class:`Flushed`.

    Model errors never leave this function. ``signals`` (installed by the caller, MPI ranks
    only) interrupts the running model when a stop signal comes.
    """
    backoff = backoff or Backoff(spin=WORKER_SPIN)
    signals = signals or StopSignals()
    host = node_name()
    setup = _wait_for_setup(link, backoff)
    if setup is None:
        link.send(Flushed(rank=link.rank, final=True))
        link.close()
        return
    local_dir = local_root() / setup.local_name
    output = Path(setup.output_dir)
    cache = TaskCache(local_dir / CACHE_DIR / f"{host}-r{link.rank}",
                      partial(free_flush_name, output, host, link.rank))
    _flush_adopted(cache, output)
    inbox = Inbox(link, partial(_serve_output, cache, link.rank), backoff)
    remove_task_dirs_below(local_dir, setup.first_task_id)  # an earlier session's, on this node
    reaper = Reaper()
    outputs = NodeOutputs(cache, inbox)
    refs = WorkerRefs(outputs)

    def build(spec: Any) -> Callable[[Task], Result]:
        return make_model(replace(spec, local_dir=str(local_dir)), link.rank, host, inbox.report,
                          _DeferSignals(cache, signals), reaper, getattr(link, "task_comm", None), refs=refs)

    try:
        model = build(setup.model)
        if setup.kinds:
            model = ModelsByKind(model, setup.kinds, build, Place(link.rank, host))
    except Exception:
        link.send(WorkerFailed(link.rank, host, f"could not load the model:\n{traceback.format_exc()}"))
        stop = _wait_for_stop(link, backoff)
    else:
        try:
            stop = _work(link, inbox, model, cache, refs, outputs, output, setup.reply_low_water, backoff, signals)
        except Exception:  # a bug of ours, not the model's: stop the run cleanly, with the reason
            link.send(WorkerFailed(link.rank, host, f"the worker failed:\n{traceback.format_exc()}"))
            stop = _wait_for_stop(link, backoff)
    reaper.close()
    flushed = _flush(link.rank, cache, output, stop.keep)
    flushed.final = True
    link.send(flushed)
    cache.close(remove=flushed.error is None)  # the data is safe in the output directory
    link.close()


def _flush_adopted(cache: TaskCache, output: Path) -> None:
    """Outputs a killed run of this study left in this worker's cache go to the output
    directory now, before any task: a resumed algorithm may pass them on at once (a task's
    shared weights, by ref), and the master reads them there. The end of the run flushes
    them again with the new ones. A failure is left to that final flush to report."""
    try:
        if cache.task_ids():
            cache.flush(output)
    except Exception:  # the final flush tries again and says what went wrong
        pass


def _wait_for_setup(link: WorkerEnd, backoff: Backoff) -> Setup | None:
    while True:
        message = link.poll()
        if isinstance(message, Setup):
            return message
        if isinstance(message, Stop):
            return None
        backoff.wait()


def _wait_for_stop(link: WorkerEnd, backoff: Backoff) -> Stop:
    while not isinstance(message := link.poll(), Stop):
        backoff.wait()
    return message


def _flush(rank: int, cache: TaskCache, output: Path, keep: Collection[int] | None) -> Flushed:
    """Flush, and say how it went; a failure (full filesystem...) is reported, not raised:
    the cache stays on the node, and the run goes on."""
    try:
        summary = cache.flush(output, keep)
    except Exception as exc:
        return Flushed(rank=rank, error=f"flush of {cache.path} failed: {type(exc).__name__}: {exc}; the outputs "
                                        "stay there, on this node: free space on the output, then run the same "
                                        "command again on this node to flush them")
    return Flushed(rank=rank, path=None if summary.path is None else str(summary.path), tasks=summary.tasks,
                   nbytes=summary.nbytes, seconds=summary.seconds)


def _work(
    link: WorkerEnd, inbox: Inbox, model: Callable[[Task], Result], cache: TaskCache, refs: WorkerRefs,
    outputs: NodeOutputs, output: Path, low_water: int, backoff: Backoff, signals: StopSignals,
) -> Stop:
    """Run tasks until a Stop; returns it. After a stop signal, run nothing more: tell the
    master (which may not have got the signal itself) and wait for its Stop."""
    state = WorkerState(low_water)
    while True:
        while (message := inbox.poll()) is not None:
            if isinstance(message, TaskBatch):
                state.received(message.tasks)
                if message.refs:
                    refs.received(message.refs)
                if message.drop:
                    refs.drop(message.drop)
            elif isinstance(message, Flush):
                link.send(_flush(link.rank, cache, output, message.keep))
            elif isinstance(message, Stop):
                state.stopping(message)
        if signals.signum is not None and state.signal():
            link.send(SignalReceived(link.rank, signals.signum))
        if batch := state.results_to_send():
            shared = refs.take_shared(result.task_id for result in batch)
            link.send(ResultBatch(batch, shared))
            if shared:
                link.wait_sent()  # the data goes now, not once the next task has ended
        task = state.next_task()
        if task is not None:
            started = time.perf_counter()
            try:
                with signals.interruptible():
                    result = model(task)
            except Interrupted:
                cache.discard(task.id)  # it runs again on resume
                refs.discard(task.id)
                continue
            cache.commit(task.id)  # its outputs are whole on the node before its result can leave
            outputs.ran(task.id, result.ok)
            state.finished(result, started)
            backoff.reset()
        elif state.done:
            return state.stop
        else:
            backoff.wait()


class NodeOutputs:
    """Where ``ctx.load`` finds a finished task's output on a worker: in its own cache when
    it ran the task (an attempt that did not end ``ok`` excepted: the task may have been
    retried elsewhere), else through the master."""

    def __init__(self, cache: TaskCache, inbox: Inbox) -> None:
        self.cache, self.inbox = cache, inbox
        self._not_ok: set[int] = set()

    def ran(self, task_id: int, ok: bool) -> None:
        (self._not_ok.discard if ok else self._not_ok.add)(task_id)

    def local(self, task_id: int, name: str) -> Any:
        """The output from this worker's cache; KeyError when it is not to be read there."""
        if task_id in self._not_ok:
            raise KeyError(task_id)
        try:
            return self.cache.read(task_id, name)
        except KeyError:
            raise
        except Exception as error:  # a damaged log: the master may know better
            raise KeyError(task_id) from error

    def remote(self, task_id: int, name: str) -> tuple[Any, bytes | None]:
        """The output as the master answers (with its pickled bytes), or from this worker's
        cache when the master says this worker ran the task's ``ok`` attempt."""
        answer = self.inbox.load(task_id, name)
        if answer.data is not None:
            return pickle.loads(answer.data), answer.data
        try:
            return self.cache.read(task_id, name), None
        except KeyError as error:
            raise KeyError(f"ctx.load({task_id}, {name!r}): {error.args[0]}") from None


def _serve_output(cache: TaskCache, rank: int, request: SendOutput) -> OutputData:
    """The master asks for an output of a task this worker ran, for another worker's ``ctx.load``."""
    task_id, name = request.task_id, request.name
    try:
        data = pickle.dumps(cache.read(task_id, name), protocol=pickle.HIGHEST_PROTOCOL)
    except KeyError:
        return OutputData(task_id, name, error=(
            f"task {task_id} saved no {name!r} (rank {rank}, which ran it, has none in its cache): ctx.load reads "
            "what a task saved with ctx.save, or shared with ctx.share (an object other than an array, bytes or "
            "a JSON value only while the master holds it: with an algorithm that has a queue)"),
            requester=request.requester)
    except Exception as error:  # an unreadable cache: the asker's task fails with the reason, not this worker
        return OutputData(task_id, name, error=f"rank {rank} could not read task {task_id}'s {name!r}: "
                                               f"{type(error).__name__}: {error}", requester=request.requester)
    return OutputData(task_id, name, data, requester=request.requester)


class Inbox:
    """The worker's incoming messages, also read while a task runs: each intermediate report
    looks for a :class:`Prune` of its task (raising :class:`Pruned` if one came) and keeps
    anything else for the main loop, in order. A request for an output of a task this
    worker ran (:class:`SendOutput`, another worker's ``ctx.load``) is answered wherever the
    inbox is read: between tasks, at a report, and while this worker's own task waits for
    an output (two tasks waiting on each other's outputs must not wait forever)."""

    def __init__(self, link: WorkerEnd, serve_output: Callable[[SendOutput], OutputData],
                 backoff: Backoff) -> None:
        self.link = link
        self._serve_output = serve_output
        self._backoff = backoff
        self._kept: deque[Any] = deque()
        self._pruned: dict[int, bool] = {}  # task id -> stopped by the algorithm (else pruned)
        self._loaded: dict[tuple[int, str], OutputData] = {}
        self._asked: tuple[int, str] | None = None  # the output this worker's task waits for

    def poll(self) -> Any:
        self._pruned.clear()  # between tasks: a prune of a task that has ended is moot
        if self._kept:
            return self._kept.popleft()
        while isinstance(message := self.link.poll(), SendOutput):
            self._answer(message)
        return message

    def report(self, task_id: int, step: float, value: float, send: bool = True) -> None:
        if send:
            self.link.send(IntermediateValue(task_id, step, value))
        self._take_all()
        if task_id in self._pruned:
            if self._pruned[task_id]:
                raise Stopped(f"task {task_id} stopped by the algorithm")
            raise Pruned(f"task {task_id} pruned after step {step:g}")

    def load(self, task_id: int, name: str) -> OutputData:
        """Ask the master for task ``task_id``'s output ``name`` and wait for its answer: the
        data, or that this worker holds it (``local``). KeyError with the reason when it
        cannot be had; :class:`Interrupted` when the run is stopping."""
        self.link.send(LoadOutput(task_id, name))
        key = self._asked = (task_id, name)
        while key not in self._loaded:
            if not self._take_all():
                self._backoff.wait()
        self._backoff.reset()
        self._asked = None
        answer = self._loaded.pop(key)
        if answer.stopping:
            raise Interrupted(None)  # dropped here, and run again on resume
        if answer.data is None and not answer.local:
            raise KeyError(f"ctx.load({task_id}, {name!r}): {answer.error}")
        return answer

    def _answer(self, request: SendOutput) -> None:
        self.link.send(self._serve_output(request))
        self.link.wait_sent()  # before this worker goes back into its task: see WorkerEnd.wait_sent

    def _take_all(self) -> bool:
        """Take in every message waiting; returns whether there was one."""
        took = False
        while (message := self.link.poll()) is not None:
            took = True
            if isinstance(message, Prune):
                self._pruned[message.task_id] = message.stop
            elif isinstance(message, SendOutput):
                self._answer(message)
            elif isinstance(message, OutputData):
                if message.stopping:  # for whatever this worker waits
                    if self._asked is not None:
                        self._loaded[self._asked] = message
                else:
                    self._loaded[(message.task_id, message.name)] = message
            else:
                self._kept.append(message)
        return took


class _DeferSignals:
    """The cache as models see it: a stop signal waits until a write into it is complete."""

    def __init__(self, cache: TaskCache, signals: StopSignals) -> None:
        self.cache, self.signals = cache, signals

    def save(self, task_id: int, name: str, value: Any) -> None:
        with self.signals.deferred():
            self.cache.save(task_id, name, value)

    def save_folder(self, task_id: int, folder: Path) -> None:
        with self.signals.deferred():
            self.cache.save_folder(task_id, folder)

    def absorb(self, task_id: int, other: Path) -> None:
        with self.signals.deferred():
            self.cache.absorb(task_id, other)
