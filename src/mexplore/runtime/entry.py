"""Where a run starts, once per rank: pick the transport, then be the master or a worker."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

from ..comms.transport import MasterEnd
from ..errors import MexploreError
from ..models import build_model
from ..models.gpu import assigned_gpu
from ..node import node_name
from .signals import StopSignals
from .strays import kill_strays
from .worker import serve

OUTPUT_IN_USE = 3
"""Exit status of a run refused because another run holds its output directory."""
TASKS_FAIL = 4
"""Exit status of a run whose tasks fail: not one finished ok, or the first ones all failed
for the same reason and the run stopped early. Everything is written and the run resumes."""


def run_mpi(load_study: Callable[[], object], progress_mode: str, ignored_ranks: int | None = None,
            signals: StopSignals | None = None) -> int:
    """Every rank of an MPI job calls this; returns the rank's exit code.

    Only rank 0 reads the study (workers never import the validation library), so a bad
    file gives one message, not one per rank. An unexpected exception on any rank aborts
    the whole job, so no rank waits forever for a peer that is gone. ``signals``, installed
    as early as the process could, holds a stop signal that came while the rank started.
    """
    signals = signals or StopSignals()
    from ..comms import mpi

    if mpi.world_rank() != 0:
        signals.install()  # a stop signal interrupts the model; the worker then flushes
        try:
            serve(mpi.MpiWorkerEnd(node_name(), assigned_gpu()), build_model, signals=signals)
        except BaseException:
            mpi.abort_on_error()
        finally:
            kill_strays()  # else a model's leftover process keeps the job from ending
        return 0
    end = mpi.MpiMasterEnd(node_name())
    if ignored_ranks is not None:
        print(f"mexplore: warning: -n {ignored_ranks} is ignored under a launcher: the "
              f"{len(end.workers) + 1} ranks it started are used", file=sys.stderr)
    if not end.workers:
        print("mexplore: error: under mpiexec, mexplore needs at least 2 ranks (a master and a "
              "worker); to run in one process, run it without mpiexec and with -n 1", file=sys.stderr)
        return 2
    try:
        return _run_master(end, load_study, progress_mode, f"mpi ({mpi.library_version()})", signals)
    except BaseException:
        mpi.abort_on_error()
        return 1


def run_inproc(load_study: Callable[[], object], progress_mode: str, workers: int = 1,
               signals: StopSignals | None = None) -> int:
    """Run master and workers in this process (threads): ``-n 1`` and unit tests."""
    from ..comms.inproc import InprocMasterEnd

    end = InprocMasterEnd(workers, node_name())
    threads = [
        threading.Thread(target=serve, args=(end.worker_end(w), build_model), daemon=True)
        for w in end.workers
    ]
    for thread in threads:
        thread.start()
    try:
        code = _run_master(end, load_study, progress_mode, "in-process", signals)
    except KeyboardInterrupt:
        print("mexplore: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    for thread in threads:
        thread.join()
    return code


def _run_master(end: MasterEnd, load_study: Callable[[], object], progress_mode: str, launch: str,
                signals: StopSignals | None = None) -> int:
    """The master's side; returns the exit code: 0 done, 1 failed, 2 bad study, 3 output in
    use by another run (nothing written; a script can wait and retry), 4 the tasks fail
    (:data:`TASKS_FAIL`), and 128 + N when signal N stopped the run (after the flush; run
    again to resume)."""
    from ..comms.backoff import Backoff
    from ..comms.messages import Stop
    from ..store.lock import OutputInUse
    from .master import TasksFailing, stop_workers
    from .session import run_master

    try:
        study = load_study()
    except MexploreError as error:
        stop_workers(end, Stop(), Backoff())
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    signals = signals or StopSignals()
    signals.second_aborts = True  # on the master, a second Ctrl-C leaves at once
    signals.install()
    try:
        stopped_by = run_master(end, study, progress_mode, launch, signals)
    except OutputInUse as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return OUTPUT_IN_USE
    except TasksFailing as error:
        for line in str(error).splitlines():
            print(f"mexplore: {line}", file=sys.stderr)
        return TASKS_FAIL
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 1
    finally:
        signals.restore()
    if stopped_by is None:
        return 0
    why = ("at its deadline (--walltime or --stop-at)" if stopped_by == signal.SIGALRM
           else f"by {signal.Signals(stopped_by).name}")
    print(f"mexplore: stopped {why} after flushing; run the same command again to resume", file=sys.stderr)
    return 128 + stopped_by
