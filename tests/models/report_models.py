"""Models for the report tests: a search with failures, a noisy sweep, two competing objectives."""

import numpy as np


def picky(params, ctx):
    """A quadratic in x plus lr; refuses act = "bad", so a random search has failed tasks."""
    if params["act"] == "bad":
        raise RuntimeError('act = "bad" is not supported')
    return {"loss": (params["x"] - 0.3) ** 2 + params["lr"], "epochs": params["epochs"]}


def noisy_accuracy(params, ctx):
    """Accuracy falling with label noise (twice as fast for k = 1), plus noise seeded by the
    repeat: the shape of a CANDLE noise-robustness curve."""
    seed = params["repeat"] * 1000 + round(params["noise"] * 100) * 10 + params["k"]
    slope = 1.0 if params["k"] == 1 else 0.5
    return {"accuracy": 0.95 - slope * params["noise"] + np.random.default_rng(seed).normal(0, 0.02)}


def tradeoff(params, ctx):
    """Loss falls and cost grows with x; waste makes both worse (those points are dominated)."""
    x, waste = params["x"], params["waste"]
    return {"loss": (1 - x) ** 2 + waste, "cost": x**2 + waste}
