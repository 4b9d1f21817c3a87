"""One proposer process of ``[algorithm] proposers``: a copy of an ``optuna.*`` algorithm that
computes proposals for the master ahead of need (see :mod:`.proposers`).

Run as ``python -m mexplore.queue.proposer_process`` by the master, it speaks in frames (an
8-byte length, then a pickle) on its standard input and output; what it prints goes to
standard error. It never imports MPI. Messages from the master, in order:

- ``("start", name, space, info, options)``: build the algorithm; answered ``("ready",)`` or
  ``("error", text)``.
- ``("ask",)``: compute one proposal; answered ``("proposal", token, params, seen, seconds)``.
  The proposal is this process's trial ``token`` (a negative number) until the master
  tells its result under that number; ``seen`` is how many results (told, replayed,
  taught) it was computed from, ``seconds`` how long computing it took.
- ``("pending", task_id, params)``: a task another process proposed, running; the sampler
  counts it as it counts its own running trials (TPE's constant liar).
- ``("tell", results)``, ``("replay", results)``, ``("learn", results)``: as the
  :class:`~mexplore.algorithms.base.Algorithm` methods.

An ask is computed only once no message is waiting, so a proposal takes every result the
master sent before it. The process ends when its input closes: the master is done or dead.
"""

from __future__ import annotations

import os
import pickle
import select
import sys
import time
import traceback
from typing import Any

from ..node import die_with_parent

FRAME_HEAD = 8


def send_frame(fd: int, message: Any) -> None:
    """Write one message as a frame (all of it, however the pipe splits it)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(FRAME_HEAD, "little") + data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Frames from a file descriptor, with a look that does not block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def next(self, block: bool = True) -> Any:
        """The next message; None when ``block`` is False and none has fully arrived.
        EOFError once the other end has closed."""
        while True:
            if len(self._buffer) >= FRAME_HEAD:
                size = int.from_bytes(self._buffer[:FRAME_HEAD], "little")
                if len(self._buffer) >= FRAME_HEAD + size:
                    data = bytes(self._buffer[FRAME_HEAD:FRAME_HEAD + size])
                    del self._buffer[:FRAME_HEAD + size]
                    return pickle.loads(data)
            if not block and not select.select([self.fd], [], [], 0)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk


def main() -> None:
    die_with_parent()
    reader, out = FrameReader(sys.stdin.fileno()), os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the frames
    try:
        serve(reader, out)
    except (EOFError, BrokenPipeError):  # the master is done, or gone
        pass


def serve(reader: FrameReader, out: int) -> None:
    from ..errors import AlgorithmError
    from .build import build_algorithm

    _, name, space, info, options = reader.next()
    try:
        algorithm = build_algorithm(name, space, info, options)
    except AlgorithmError as error:
        send_frame(out, ("error", str(error)))
        return
    send_frame(out, ("ready",))
    asked, token, seen = 0, 0, 0
    while True:
        message = reader.next(block=asked == 0)
        try:
            if message is None:  # nothing more to learn first: propose
                token -= 1
                started = time.perf_counter()
                (params,) = algorithm.propose(range(token, token + 1))
                send_frame(out, ("proposal", token, params, seen, time.perf_counter() - started))
                asked -= 1
            elif message[0] == "ask":
                asked += 1
            elif message[0] == "pending":
                algorithm.pending(message[1], message[2])
            else:
                getattr(algorithm, message[0])(message[1])  # tell, replay, learn
                seen += len(message[1])
        except Exception:
            send_frame(out, ("error", traceback.format_exc()))
            return


if __name__ == "__main__":
    main()
