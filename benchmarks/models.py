"""Models the throughput benchmark runs, in mexplore's contract ``fn(params, ctx)``.

``noop`` measures pure overhead: everything a task costs besides the model. ``sleep`` stands in
for a short simulation whose length varies: 5-15 ms, uniform, seeded by the task id, so every
variant of the benchmark sleeps the same durations for the same task ids.
"""

import random
import time

SLEEP_LOW = 0.005
SLEEP_HIGH = 0.015


def sleep_seconds(task_id, low=SLEEP_LOW, high=SLEEP_HIGH):
    """The sleep of task ``task_id``: uniform in [low, high], the same in every run."""
    return random.Random(task_id).uniform(low, high)


def noop(params, ctx):
    """Do nothing; the objective is the parameter itself."""
    return params["x"]


def sleep(params, ctx):
    """Sleep 5-15 ms (seeded by the task id); ``params["seconds"]``, if given, instead."""
    seconds = params.get("seconds")
    time.sleep(sleep_seconds(ctx.task_id) if seconds is None else seconds)
    return params["x"]
