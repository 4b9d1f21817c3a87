"""Where a run starts, once per rank: pick the transport, then be the master or a worker."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

from ..comms.transport import MasterEnd
from ..errors import MexploreError
from ..models import build_model
from .worker import serve


def run_mpi(load_study: Callable[[], object], progress_mode: str, ignored_ranks: int | None = None) -> int:
    """Every rank of an MPI job calls this; returns the rank's exit code.

    Only rank 0 reads the study (workers never import the validation library), so a bad
    file gives one message, not one per rank. An unexpected exception on any rank aborts
    the whole job, so no rank waits forever for a peer that is gone.
    """
    from ..comms import mpi

    if mpi.world_rank() != 0:
        # Ctrl-C reaches every rank; the master alone reacts (closing the journal, then
        # aborting the job), so a worker aborting first cannot cut it short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            serve(mpi.MpiWorkerEnd(), build_model)
        except BaseException:
            mpi.abort_on_error()
        return 0
    end = mpi.MpiMasterEnd()
    if ignored_ranks is not None:
        print(f"mexplore: warning: -n {ignored_ranks} is ignored under a launcher: the "
              f"{len(end.workers) + 1} ranks it started are used", file=sys.stderr)
    if not end.workers:
        print("mexplore: error: under mpiexec, mexplore needs at least 2 ranks (a master and a "
              "worker); to run in one process, run it without mpiexec and with -n 1", file=sys.stderr)
        return 2
    try:
        return _run_master(end, load_study, progress_mode, f"mpi ({mpi.library_version()})")
    except BaseException:
        mpi.abort_on_error()
        return 1


def run_inproc(load_study: Callable[[], object], progress_mode: str, workers: int = 1) -> int:
    """Run master and workers in this process (threads): ``-n 1`` and unit tests."""
    from ..comms.inproc import InprocMasterEnd

    end = InprocMasterEnd(workers)
    threads = [
        threading.Thread(target=serve, args=(end.worker_end(w), build_model), daemon=True)
        for w in end.workers
    ]
    for thread in threads:
        thread.start()
    try:
        code = _run_master(end, load_study, progress_mode, "in-process")
    except KeyboardInterrupt:
        print("mexplore: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    for thread in threads:
        thread.join()
    return code


def _run_master(end: MasterEnd, load_study: Callable[[], object], progress_mode: str, launch: str) -> int:
    from .master import stop_workers
    from .session import run_master

    try:
        study = load_study()
    except MexploreError as error:
        stop_workers(end)
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    try:
        run_master(end, study, progress_mode, launch)
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 1
    return 0
