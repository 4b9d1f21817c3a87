"""Models of several ranks for tests/test_parallel_tasks.py."""

import os


def spmd(params, ctx):
    """Every rank of the task runs this with ``ctx.comm``: the leader returns what the
    communicator looked like from inside, so the test can check it against the journal."""
    comm = ctx.comm
    leader_says = comm.bcast(f"task {ctx.task_id} from {ctx.rank}" if comm.Get_rank() == 0 else None)
    ranks = comm.gather(ctx.rank)
    nodes = comm.gather(os.environ.get("MEXPLORE_NODE_NAME", ""))
    total = comm.allreduce(1)
    if comm.Get_rank() != 0:
        return None  # the others' return values are not read
    return {"objective": float(params["x"]), "size": comm.Get_size(), "total": total,
            "ranks": " ".join(map(str, ranks)), "nodes": ",".join(nodes),
            "agreed": leader_says == f"task {ctx.task_id} from {ctx.rank}"}


def reports_until_pruned(params, ctx):
    """Every rank reports at every step and then joins a collective, as a data-parallel
    training loop does: a rank that stopped alone at a prune would leave the others
    waiting in that collective for ever."""
    comm = ctx.comm
    for step in range(1, 10_000):
        ctx.report(step, float(params["x"]) + 1.0)
        comm.allreduce(step)
    return {"objective": float(params["x"])}


def sized(params, ctx):
    """The size of the task's communicator, whoever chose it."""
    return {"objective": float(params["x"]), "size": ctx.comm.Get_size()}
