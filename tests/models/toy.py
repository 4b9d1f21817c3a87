"""Models for the end-to-end tests."""

import math
import time


def quadratic(params, ctx):
    time.sleep(params.get("sleep", 0.0))
    value = sum((params[k] - 0.3) ** 2 for k in ("x", "y") if k in params)
    return {"loss": value + params.get("level", 0) + params.get("repeat", 0), "rank": ctx.rank}


def flaky(params, ctx):
    """Raises on x == 1, returns NaN on x == 2, a non-number on x == 3, fine otherwise."""
    x = params["x"]
    if x == 1:
        raise RuntimeError(f"model blew up at x={x}")
    if x == 2:
        return math.nan
    if x == 3:
        return "garbage"
    return float(x)
