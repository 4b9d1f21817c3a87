"""The evolution strategy of es.R in Python, over the same protocol with the Python client:
    [algorithm] command = ["{python}", "model-scripts/es.py"]
Each generation is one point per worker around the best so far; the step shrinks when a
generation finds nothing better. Float and int parameters only."""

import math
import random
import sys

from mexplore.compat.client import Session

session = Session()
rng = random.Random(session.seed)
names = list(session.space)
low = [session.space[n]["low"] for n in names]
high = [session.space[n]["high"] for n in names]
is_int = [session.space[n]["type"] == "int" for n in names]
step = session.options.get("step", 0.3)
evaluations = session.options.get("evaluations", math.inf)


def point(x):
    clipped = [min(max(v, lo), hi) for v, lo, hi in zip(x, low, high)]
    values = [round(v) if integer else v for v, integer in zip(clipped, is_int)]
    return {**dict(zip(names, values)), **session.constants}


best, best_value, spent = None, math.inf, 0
while spent < evaluations:
    if best is None:
        batch = [point([rng.uniform(lo, hi) for lo, hi in zip(low, high)]) for _ in range(session.workers)]
    else:
        batch = [point([b + rng.gauss(0, step * (hi - lo)) for b, lo, hi in zip(best, low, high)])
                 for _ in range(session.workers)]
    results = session.map(batch)
    if results is None:  # the run stopped: its budget is spent
        break
    spent += len(results)
    improved = False
    for result in results:
        value = result["objective"] if result["status"] == "ok" else None
        if isinstance(value, (int, float)) and value < best_value:
            best_value, best, improved = value, [result["params"][n] for n in names], True
    if not improved:
        step *= 0.7
    print(f"es.py: {spent} evaluated, best {best_value:.6g}, step {step:.3g}", file=sys.stderr)
session.done()
