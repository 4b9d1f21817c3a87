"""Population-based training (Jaderberg et al., 2017) of the numpy MLP, as an imperative algorithm.

A population of ``population`` networks trains in ``generations`` rounds of ``epochs``
epochs each (``[space] epochs``). After each round the worse half *exploits* the better
half: a member copies a better member's weights (passed by reference: the task's
``ctx.share``d weights go in the next task's params as ``parent``, and reach its worker
over MPI) and *explores* by scaling its learning rate by one of ``perturb`` (default 0.8
or 1.25, as in the paper). The better half
continues from its own weights. Two baselines, in ``[algorithm.options]``:
``inherit = false`` is the same search with every task trained from scratch (no weights
passed), and ``exploit = false`` has every member train on from its own weights with its
first hyperparameters (independent training runs of the same total epochs).
``studies/mlp-pbt.toml`` runs it; ``benchmarks/pbt.py`` compares the three.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def pbt(queue: Any, space: Any, options: dict[str, Any]) -> None:
    rng = np.random.default_rng(options["seed"])
    size, generations = int(options.get("population", 4)), int(options.get("generations", 5))
    exploit, inherit = bool(options.get("exploit", True)), bool(options.get("inherit", True))
    factors = [float(f) for f in options.get("perturb", [0.8, 1.25])]
    members = [space.sample(rng) for _ in range(size)]  # lr and l2 drawn from [space]; its constants (share_weights = true) added
    parents: list[str | None] = [None] * size
    for _ in range(generations):
        submitted = [{**member, **({"parent": parent} if parent and inherit else {})}
                     for member, parent in zip(members, parents)]
        results = queue.map(submitted)
        parents = [(r.shared or {}).get("weights") if r.ok else None for r in results]
        if not exploit:
            continue
        ranked = sorted(range(size), key=lambda i: results[i].objective if results[i].ok else math.inf)
        better, worse = ranked[: size // 2], ranked[size // 2:]
        for loser in worse:
            winner = int(rng.choice(better))
            low, high = space.parameters["lr"].low, space.parameters["lr"].high
            lr = min(max(members[winner]["lr"] * float(rng.choice(factors)), low), high)
            members[loser] = {**members[winner], "lr": lr}
            parents[loser] = parents[winner]


pbt.learns = True
