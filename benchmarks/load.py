"""Keep CPU cores busy, to run the test suite on a loaded machine as CI often is.

Usage::

    python benchmarks/load.py --seconds 1200 & LOAD=$!
    python -m pytest -q tests/...
    kill $LOAD

Each busy core is one process spinning in a loop (processes, not threads: the GIL would
let threads keep only one core busy). The spinners run until ``--seconds`` pass or the
script gets SIGTERM or SIGINT; either way they are stopped with it, so ``kill $LOAD``
leaves nothing behind.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import time


def spin(parent: int) -> None:
    """Burn one core until killed, or until ``parent`` is gone (even by SIGKILL, which
    gives it no chance to stop its spinners): a spinner never outlives the script."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops us
    while os.getppid() == parent:
        for _ in range(1_000_000):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="busy processes to run (default: every core, %(default)s)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this long (default: run until killed)")
    args = parser.parse_args(argv)

    # fork, not forkserver (Python 3.14's default): a spinner's parent must be this script.
    fork = multiprocessing.get_context("fork")
    spinners = [fork.Process(target=spin, args=(os.getpid(),), daemon=True) for _ in range(max(args.cores, 0))]
    for spinner in spinners:
        spinner.start()
    # After the start, so the spinners keep the default SIGTERM (terminate() ends them):
    # SIGTERM (plain `kill`) ends the wait below like Ctrl-C, so the spinners are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"load: {len(spinners)} busy process(es), pid {os.getpid()}", flush=True)
    try:
        if args.seconds is None:
            signal.pause()
        else:
            time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        for spinner in spinners:
            spinner.terminate()
        for spinner in spinners:
            spinner.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
