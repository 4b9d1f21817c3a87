"""In-process twin of the MPI transport: the master in the caller's thread, workers in threads.

Same protocols as :mod:`.mpi`, so the master and worker loops run unchanged; used by unit
tests and by ``mexplore run -n 1``, where starting MPI would buy nothing.
"""

from __future__ import annotations

import queue

from .messages import Message


class InprocMasterEnd:
    def __init__(self, n_workers: int, host: str = "localhost") -> None:
        self.workers = list(range(1, n_workers + 1))
        self.hosts = dict.fromkeys(self.workers, host)
        self.gpus: dict[int, str | None] = dict.fromkeys(self.workers)
        self.inbox: queue.SimpleQueue[tuple[int, Message]] = queue.SimpleQueue()
        self.outboxes: dict[int, queue.SimpleQueue[Message]] = {
            w: queue.SimpleQueue() for w in self.workers
        }

    def worker_end(self, rank: int) -> InprocWorkerEnd:
        return InprocWorkerEnd(rank, self.inbox, self.outboxes[rank])

    def send(self, worker: int, message: Message) -> None:
        self.outboxes[worker].put(message)

    def poll(self) -> tuple[int, Message] | None:
        try:
            return self.inbox.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        pass


class InprocWorkerEnd:
    def __init__(
        self,
        rank: int,
        to_master: queue.SimpleQueue[tuple[int, Message]],
        from_master: queue.SimpleQueue[Message],
    ) -> None:
        self.rank = rank
        self._to_master = to_master
        self._from_master = from_master

    def send(self, message: Message) -> None:
        self._to_master.put((self.rank, message))

    def poll(self) -> Message | None:
        try:
            return self._from_master.get_nowait()
        except queue.Empty:
            return None

    def wait_sent(self) -> None:
        pass  # a queue's put is complete when it returns

    def close(self) -> None:
        pass
