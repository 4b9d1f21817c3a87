"""Reprioritizing the IoC queue's waiting tasks: what an active-learning loop does each
time its surrogate is retrained (issue 19: 5,000 futures reprioritized one call each took
24.9 s when every call re-sorted the whole queue).

    python benchmarks/queue_priorities.py             # about 10 seconds

Times, on a queue of N waiting tasks, (a) N calls of ``set_priority([future], p)``, one
future each, (b) one ``set_priorities(futures, values)`` call, then (c) handing every task
out with ``dispatch`` (the master's side, stale heap entries skipped). Pure Python, one
thread, no MPI: the figures are the queue's own cost.
"""

from __future__ import annotations

import random
import time

from mexplore.queue.futures import TaskQueue


def measure(n: int, rng: random.Random) -> dict[str, float]:
    queue = TaskQueue()
    futures = [queue.submit({"x": i}) for i in range(n)]
    started = time.perf_counter()
    for future in futures:
        queue.set_priority([future], rng.random())
    one_by_one = time.perf_counter() - started
    started = time.perf_counter()
    queue.set_priorities(futures, [rng.random() for _ in futures])
    bulk = time.perf_counter() - started
    started = time.perf_counter()
    handed = 0
    while taken := queue.dispatch(range(handed, handed + 64)):
        handed += len(taken)
    drain = time.perf_counter() - started
    assert handed == n
    return {"one_by_one": one_by_one, "bulk": bulk, "drain": drain}


def main() -> None:
    rng = random.Random(19)
    print("| waiting tasks | N × set_priority (one each) | set_priorities (one call) | dispatch all |")
    print("|---|---|---|---|")
    for n in (5_000, 10_000, 100_000):
        best = min((measure(n, rng) for _ in range(3)), key=lambda m: m["bulk"])
        print(f"| {n:,} | {best['one_by_one'] * 1e3:.1f} ms | {best['bulk'] * 1e3:.1f} ms | "
              f"{best['drain'] * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
