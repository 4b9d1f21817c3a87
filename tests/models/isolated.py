"""Python functions run with isolate = true."""

import ctypes
import os
import time


def model(params, ctx):
    mode = params["mode"]
    if mode == "segv":
        ctypes.string_at(0)  # a segfault inside the function
    if mode == "hang":
        time.sleep(1000)
    if mode == "raise":
        raise ValueError("isolated failure")
    return {"objective": 1.0, "pid": os.getpid(), "task": ctx.task_id}
