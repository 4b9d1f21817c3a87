"""Models that keep outputs in the node-local cache (tests of issue 4)."""

import os
import time
from pathlib import Path

import numpy as np


def weights(params, ctx):
    """Saves an array, bytes and a file; the loss is x, so the ranking is known."""
    ctx.save("weights", np.full((4, 3), params["x"]))
    ctx.save("note", f"task {ctx.task_id}".encode())
    log = ctx.scratch_dir / "train.log"
    log.write_text(f"x={params['x']}\n")
    ctx.save("log", log)
    time.sleep(float(os.environ.get("SAVING_SLEEP", "0")))
    return params["x"]


def slow(params, ctx):
    """Saves, then works for a while: a stop signal finds it mid-task."""
    ctx.save("weights", np.arange(1000.0) * params["x"])
    time.sleep(float(os.environ.get("SAVING_SLEEP", "0.3")))
    return params["x"]


def counted(params, ctx):
    """Appends one line per actual run to $RUNS_FILE, so a test can count real runs."""
    with open(os.environ["RUNS_FILE"], "a") as runs:
        runs.write(f"{params}\n")
    return params["x"]


def curve(params, ctx):
    """A training curve: the loss after each of 8 epochs is x / (epoch + 1); big x is hopeless."""
    for epoch in range(8):
        time.sleep(0.03)
        ctx.report(epoch, params["x"] / (epoch + 1))
    return params["x"] / 8
