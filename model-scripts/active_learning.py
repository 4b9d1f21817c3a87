"""Active learning, Colmena's pattern, as a study of two task kinds on two pools.

A *simulation* (``simulate``) is costly; a *surrogate* (``train``: a quadratic fitted by
least squares to every result so far) is trained on its own worker every ``every``
results, and the waiting candidates are reprioritized by its predictions, best first.
``studies/active-learning.toml`` runs it; ``steer = false`` in ``[algorithm.options]``
runs the same candidates in random order, the baseline (``benchmarks/active_learning.py``
compares the two).

The landscape is a smooth two-parameter cost with one basin that is not centred and not
axis-aligned, plus a ripple, so a quadratic surrogate is good but not exact::

    f(x, y) = (x - 0.35)^2 + 3 (y + 0.2)^2 + 0.6 (x - 0.35)(y + 0.2) + 0.05 sin(8 x)
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from mexplore import Agents, agent, on_results


def simulate(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    """The costly model (``SIMULATE_SECONDS`` of sleep stands for its cost)."""
    time.sleep(float(os.environ.get("SIMULATE_SECONDS", "0")))
    x, y = params["x"], params["y"]
    cost = (x - 0.35) ** 2 + 3 * (y + 0.2) ** 2 + 0.6 * (x - 0.35) * (y + 0.2) + 0.05 * math.sin(8 * x)
    return {"cost": cost}


def features(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The quadratic's terms: 1, x, y, x^2, y^2, x y."""
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)


def train(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Fit the surrogate to the points so far (free-form params: the training set)."""
    xs, ys, costs = (np.asarray(params[key], dtype=float) for key in ("xs", "ys", "costs"))
    coef, *_ = np.linalg.lstsq(features(xs, ys), costs, rcond=None)
    return {"coef": coef.tolist(), "points": len(costs)}


class ActiveLearning(Agents):
    """Options: ``candidates`` (how many points wait in the queue), ``first`` (random
    simulations before the first training), ``every`` (results between trainings),
    ``steer`` (false: no surrogate, the candidates run in random order)."""

    def setup(self) -> None:
        options = self.options
        self.every, self.steer = int(options.get("every", 8)), bool(options.get("steer", True))
        self.seen: list[tuple[float, float, float]] = []
        candidates = [self.space.sample(self.rng) for _ in range(int(options.get("candidates", 500)))]
        first = int(options.get("first", 8))
        self.pending = [self.queue.submit(point, priority=1 if i < first else 0)  # a random start first
                        for i, point in enumerate(candidates)]

    @agent
    def simulate(self) -> None:
        for future in self.pending:
            future.result()  # BudgetSpent ends the campaign at the budget

    @on_results(kind="simulate", every=8)
    def retrain(self, results: list) -> None:
        if not self.steer:
            return
        self.seen += [(r.params["x"], r.params["y"], r.objective) for r in results if r.ok]
        xs, ys, costs = zip(*self.seen)
        fit = self.queue.submit({"xs": list(xs), "ys": list(ys), "costs": list(costs)}, kind="train").result()
        waiting = [future for future in self.pending if future.status == "queued"]
        if not waiting or not fit.ok:
            return
        points = np.array([(f.params["x"], f.params["y"]) for f in waiting])
        predicted = features(points[:, 0], points[:, 1]) @ np.asarray(fit.metrics["coef"])
        self.queue.set_priorities(waiting, (-predicted).tolist())  # lowest predicted cost first
