"""``mexplore run``: validate the study, then start ranks or become one."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from functools import partial
from pathlib import Path

from ..errors import MexploreError


def run_command(args: argparse.Namespace) -> int:
    from ..comms.launcher import die_with_launcher, under_mpi_launcher
    from ..runtime.deadline import STOP_AT, arm, disarm, inherited, stop_time
    from ..runtime.signals import StopSignals

    # First: a scheduler's TERM (or a Ctrl-C) that comes while this process starts is kept
    # and stops the run as one that comes later does, instead of killing it outright.
    signals = StopSignals()
    signals.install()
    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"study.output={json.dumps(os.path.abspath(args.output))}")
    load = partial(_load_study, args.study, overrides)
    progress = _progress_mode(args.progress)
    try:
        stop_at = stop_time(args.walltime, args.stop_at, args.stop_before) or inherited()
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    if under_mpi_launcher():
        from ..runtime.entry import run_mpi

        die_with_launcher()
        if stop_at is not None:
            arm(stop_at)
        try:
            return run_mpi(load, progress, ignored_ranks=args.ranks, signals=signals)
        finally:
            disarm()
    ranks = (os.cpu_count() or 2) if args.ranks is None else args.ranks
    if ranks < 1:
        print(f"mexplore: error: -n {ranks}: expected at least 1 rank", file=sys.stderr)
        return 2
    try:
        from ..runtime.session import check_study

        study = load()
        check_study(study, ranks)  # refuse a bad study before any rank starts
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    refused = _output_in_use(study.study.output)
    if refused is not None:
        return refused
    if ranks == 1:
        from ..runtime.entry import run_inproc

        if stop_at is not None:
            arm(stop_at)
        try:
            return run_inproc(load, progress, signals=signals)
        finally:
            disarm()
    if stop_at is not None:  # for the ranks to arm: a timer here would outlive the exec and kill mpiexec
        os.environ[STOP_AT] = repr(stop_at)
    if signals.signum is not None:  # before any rank started: nothing to flush or resume
        print(f"mexplore: stopped by {signal.Signals(signals.signum).name} before any rank started; "
              "run the same command again to start it", file=sys.stderr)
        return 128 + signals.signum
    return _exec_mpiexec(ranks, args, overrides, progress)


def _output_in_use(output: Path) -> int | None:
    """Refuse at once, as the master would, an output directory another run holds: without
    this, the ranks start (seconds, or a queue wait inside a batch job) only to be refused.
    The lock is taken and given back at once; the master takes it again for good, and
    stays the real guard against a run that starts in between."""
    from ..runtime.entry import OUTPUT_IN_USE
    from ..store.lock import OutputInUse, OutputLock

    if not output.is_dir():  # no run has made it yet: nothing to hold
        return None
    try:
        OutputLock.acquire(output).release()
    except OutputInUse as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return OUTPUT_IN_USE
    except MexploreError as error:  # a bad $MEXPLORE_OUTPUT_LOCK
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    except OSError:  # unwritable and the like: the master says it, in its words
        return None
    return None


def _load_study(path: str, overrides: list[str]):
    from ..config import load_study

    return load_study(path, overrides)


def _progress_mode(requested: str) -> str:
    """``auto`` means a bar on a terminal. Ranks under mpiexec write into pipes, so the
    launching process decides and passes its answer down with ``--progress``."""
    if requested != "auto":
        return requested
    return "bar" if sys.stderr.isatty() else "log"


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share_cores(ranks: int) -> None:
    """Give each local rank its share of the cores for numpy's (BLAS) threads, unless the
    user chose. Left alone, every rank starts one thread per core, and with a rank per core
    a numpy model runs 2-4 times slower than single-threaded (benchmarks/mlp_noise.py)."""
    if not any(name in os.environ for name in THREAD_VARIABLES):
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // ranks))


def _exec_mpiexec(ranks: int, args: argparse.Namespace, overrides: list[str], progress: str) -> int:
    """Replace this process with ``mpiexec -n N python -m mexplore run ...``.

    exec, not a child: a signal to this process (Ctrl-C, a scheduler's TERM) reaches
    mpiexec directly, which forwards it to the ranks, and nothing is left behind.
    """
    from ..comms.launcher import find_mpiexec, mpiexec_options

    try:
        mpiexec = find_mpiexec()
    except FileNotFoundError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    argv = [mpiexec, *mpiexec_options(mpiexec), "-n", str(ranks), sys.executable, "-m", "mexplore", "run",
            args.study, "--progress", progress]
    for override in overrides:
        argv += ["--set", override]
    share_cores(ranks)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(mpiexec, argv)
    return 0  # not reached
