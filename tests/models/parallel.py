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
