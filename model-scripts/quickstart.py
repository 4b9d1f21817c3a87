"""The quickstart model: the Branin function, as if it were a short simulation.

Branin has three global minima of 0.397887 (at (-pi, 12.275), (pi, 2.275) and
(9.42478, 2.475)), so a search's progress is easy to judge. ``cost`` seconds of sleep stand
in for real work; ``noise`` adds measurement noise, seeded by the task for repeatability.
"""

import math
import random
import time


def branin(params, ctx):
    x, y = params["x"], params["y"]
    time.sleep(params.get("cost", 0.0))
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    value = a * (y - b * x**2 + c * x - r) ** 2 + s * (1 - t) * math.cos(x) + s
    noise = params.get("noise", 0.0)
    if noise:
        value += random.Random(ctx.task_id).gauss(0.0, noise)
    return {"loss": value, "distance_to_origin": math.hypot(x, y)}
