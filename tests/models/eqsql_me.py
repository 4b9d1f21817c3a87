"""An EQ/SQL model-exploration script (EMEWS tutorial style), its body moved into run().

Submit a batch of JSON payloads, withdraw a few, take results as they complete in groups,
and reprioritize what waits toward the best point so far, as the tutorial's GPR example does.
What it saw is written to eqsql-summary.json in the run's output, for the test to check.
"""

import json
import random

from mexplore.compat import eqsql
from mexplore.compat.eqsql import ResultStatus


def run(queue, space, options):
    task_queue = eqsql.init_task_queue("localhost", "eqsql_user", 5433, "EQ_SQL")
    assert task_queue.are_queues_empty()
    rng = random.Random(options["seed"])
    payloads = [json.dumps({"x": rng.uniform(-2, 2), "y": rng.uniform(-2, 2)}) for _ in range(40)]
    _, futures = task_queue.submit_tasks("exp-1", eq_type=0, payload=payloads, tag="ackley")
    _, cancelled = task_queue.cancel_tasks(futures[-5:])
    statuses = [status.name for _, status in task_queue.get_status(futures[-5:])]
    futures = futures[:-5]
    seen, best = {}, None
    while futures:
        for future in task_queue.as_completed(futures, pop=True, n=7, batch_size=3, timeout=120):
            status, text = future.result(timeout=None)
            seen[future.eq_task_id] = [status.name, json.loads(text) if status is ResultStatus.SUCCESS else text]
            if status is ResultStatus.SUCCESS and (best is None or seen[future.eq_task_id][1] < best[0]):
                best = (seen[future.eq_task_id][1], json.loads(payloads[future.eq_task_id - 1]))
        if futures and best is not None:
            distances = [abs(f.mexplore.params["x"] - best[1]["x"]) for f in futures]
            task_queue.update_priorities(futures, [int(-1000 * d) for d in distances])
    (queue.info.output / "eqsql-summary.json").write_text(json.dumps({
        "cancelled": cancelled, "cancelled_statuses": statuses, "results": seen,
    }))
