"""The master's bookkeeping at scale, in virtual time (issue 17 item 2).

    python benchmarks/master_sim.py                  # about a minute
    python benchmarks/master_sim.py --workers 4 1000 100000 --tasks 200000
    python benchmarks/master_sim.py --dispatcher pools placing placing-pools --workers 100 1000 10000

A discrete-event simulation drives the master's :class:`~mexplore.queue.dispatch.Dispatcher`
alone (no MPI, no files, sans-I/O) with W simulated workers: task lengths are drawn from a
log-normal distribution, each worker runs what it was handed in order, and every finished
task goes back through ``complete`` → ``wanted`` → ``number``/``enqueue`` → ``assign``, as
the master's loop calls them. Only the master's calls are timed (``process_time``), so the
figures are its CPU per task, whatever the virtual task length (until 2026-12-03, the
simulated workers' scheduling of their runs was timed too: the fill of 100,000 plain
workers read 1.6 s where the master's calls took 0.5 s).

Reported per worker count: the fill (every worker handed its first tasks), the master's
CPU per task in steady state, and from it the most workers one master keeps busy with 1 s,
60 s and 1 h tasks (W_max = task length / CPU per task: past that, workers wait for it).
The default ``async`` policy is simulated twice: for an algorithm that learns (one task
per worker) and one that does not (tasks queued ahead, hand-offs hidden). The real
master also receives, journals and sends each task (``benchmarks/throughput.py`` measures
that end to end); this isolates what grows with W.

``--dispatcher pools`` drives the :class:`~mexplore.queue.pools.PoolDispatcher` instead
(a study with ``[pools]``, tasks of one rank), with one pool holding every worker;
``placing`` the :class:`~mexplore.queue.dispatch.PlacingDispatcher` (a study whose tasks
may span several ranks; here every task has one rank, on nodes of 4 worker slots), and
``placing-pools`` the same with that pool: the cost of pools and placement themselves,
for one learning algorithm. ``--shape`` says what each placed task needs: ``one`` slot
(the default), one slot and its ``gpu`` (every slot owns one of its node's 4 GPUs), or a
whole ``node`` (``nodes = 1``, 4 ranks).
"""

from __future__ import annotations

import argparse
import heapq
import random
import time

from mexplore.queue.dispatch import Dispatcher, PlacingDispatcher
from mexplore.queue.policies import make_policy
from mexplore.queue.pools import PoolDispatcher, Pools
from mexplore.types import Result, Shape, Status

HANDOFF = 2e-4
"""Virtual seconds between a worker's result and its next task's start (a hand-off)."""


SLOTS_PER_NODE = 4
"""Worker slots per simulated node, for the placing dispatchers."""

SHAPES = {"one": Shape(), "gpu": Shape(gpus=1), "node": Shape(ranks=SLOTS_PER_NODE, nodes=1)}
"""What each placed task needs, by ``--shape``."""


def dispatcher_of(kind: str, workers: int, tasks: int, learns: bool, shape: str = "one") -> Dispatcher:
    """The dispatcher ``--dispatcher`` names, for ``workers`` workers and a budget of
    ``tasks`` (twice the tasks timed: the run's tail, where workers run out of work and
    wait, is not timed)."""
    ranks = range(1, workers + 1)
    policy = make_policy("async", workers, learns=learns)
    if kind == "plain":
        return Dispatcher(ranks, policy, budget=tasks)
    if kind == "pools":
        return PoolDispatcher(ranks, {"objective": workers}, "objective", policy, budget=tasks)
    hosts = {rank: f"node{(rank - 1) // SLOTS_PER_NODE}" for rank in ranks}
    gpus = {rank: str((rank - 1) % SLOTS_PER_NODE) for rank in ranks}
    pools = Pools(ranks, {"objective": workers}, "objective", frozenset()) if kind == "placing-pools" else None
    return PlacingDispatcher(hosts, lambda params, kind: SHAPES[shape], {None: True}, policy, tasks, pools=pools,
                             gpus=gpus)


def simulate(workers: int, tasks: int, learns: bool, seed: int = 1, kind: str = "plain",
             shape: str = "one") -> dict[str, float]:
    """Run ``tasks`` tasks on ``workers`` simulated workers; the master's CPU in seconds."""
    rng = random.Random(seed)
    dispatcher = dispatcher_of(kind, workers, 2 * tasks, learns, shape)
    events: list[tuple[float, float, int, int]] = []  # (virtual end, start, worker, task id)
    clock_of = dict.fromkeys(range(1, workers + 1), 0.0)  # each worker's virtual time: when it frees up
    proposals = iter(range(10**12))
    length_of: dict[int, float] = {}  # task id -> its virtual length

    def feed(now: float) -> float:
        """The master's round: ask, number and queue, hand out; the workers' virtual runs.
        Returns the master's CPU seconds in it (not the simulated workers')."""
        started = time.process_time()
        want = dispatcher.wanted()
        if want:
            dispatcher.enqueue(dispatcher.number([{"x": next(proposals)} for _ in range(want)]))
        sends = dispatcher.assign()
        spent = time.process_time() - started
        for worker, batch in sends:
            start = max(clock_of[worker], now) + HANDOFF
            for task in batch:
                end = start + length_of.setdefault(task.id, rng.lognormvariate(0.0, 0.5))  # a task's ranks end together
                heapq.heappush(events, (end, start, worker, task.id))
                start = end
            clock_of[worker] = start
        return spent

    fill = feed(0.0)
    steady_from = steady_cpu = None
    while dispatcher.finished < tasks:
        end, start, worker, task_id = heapq.heappop(events)
        result = Result(task_id=task_id, status=Status.OK, params={}, objective=0.0,
                        started=start, ended=end, rank=worker)
        before = time.process_time()
        dispatcher.complete(worker, [result])
        spent = time.process_time() - before + feed(end)
        if steady_cpu is not None:
            steady_cpu += spent
        elif dispatcher.finished >= tasks // 2:  # the second half is the steady state (the start-up is done)
            steady_from, steady_cpu = dispatcher.finished, 0.0
    per_task = steady_cpu / (dispatcher.finished - steady_from)
    return {"fill": fill, "per_task": per_task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 100, 1_000, 10_000, 100_000])
    parser.add_argument("--tasks", type=int, default=0,
                        help="tasks per simulation (default: 3 x workers, at least 20,000)")
    parser.add_argument("--dispatcher", nargs="+", choices=("plain", "pools", "placing", "placing-pools"),
                        default=["plain"], help="plain: one-slot tasks (the default); pools: and a pool; "
                        "placing: tasks placed on slots; placing-pools: and a pool")
    parser.add_argument("--shape", choices=tuple(SHAPES), default="one",
                        help="what each placed task needs: one slot, one slot and its GPU, or a whole node")
    args = parser.parse_args()
    print("| dispatcher | algorithm | workers | fill (s) | master CPU per task (µs) | W_max, 1 s tasks | W_max, 60 s "
          "| W_max, 1 h |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.dispatcher:
        for learns in (True, False) if kind == "plain" else (True,):
            for workers in args.workers:
                tasks = args.tasks or max(20_000, 3 * workers)
                figures = min((simulate(workers, tasks, learns, seed, kind, args.shape) for seed in (1, 2)),
                              key=lambda f: f["per_task"])
                per_task = figures["per_task"]
                reach = [f"{length / per_task:,.0f}" for length in (1.0, 60.0, 3600.0)]
                label = kind if args.shape == "one" or not kind.startswith("placing") else f"{kind}, {args.shape}"
                print(f"| {label} | {'learns' if learns else 'does not learn'} | {workers:,} | {figures['fill']:.3f} | "
                      f"{per_task * 1e6:.1f} | {' | '.join(reach)} |")


if __name__ == "__main__":
    main()
