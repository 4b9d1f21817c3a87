"""A steady-state evolutionary algorithm in the imperative EMEWS style: the worked example
of a custom algorithm (docs/algorithms.md walks through it).

It keeps every worker busy: a random first population is submitted, and each time any
task finishes, the result joins the population (the worst member leaves once it is full)
and one child is bred from two parents picked by tournament and submitted at once. No
generation waits for its slowest member.
"""

import math

import numpy as np

from mexplore.space import Float, Int


def evolve(queue, space, options):
    """``run(queue, space, options)``: minimize the objective over ``evaluations`` tasks."""
    rng = np.random.default_rng(options["seed"])
    size = options.get("population", 16)
    evaluations = options.get("evaluations", 200)
    rate = options.get("mutation", 0.2)  # share of each range a mutation moves, at most

    population = []  # (objective, params) of the best ok results so far, best first
    pending = [queue.submit(space.sample(rng)) for _ in range(min(size, evaluations))]
    submitted = len(pending)
    while pending:
        future = next(queue.as_completed(pending))  # whichever task finishes first
        pending.remove(future)
        result = future.result()  # raises BudgetSpent, ending this function, once the budget is spent
        if result.ok:
            population.append((result.objective, result.params))
            population.sort(key=lambda member: member[0])
            del population[size:]
        if submitted < evaluations:
            child = space.sample(rng) if len(population) < 2 else breed(population, space, rng, rate)
            pending.append(queue.submit(child))
            submitted += 1


def breed(population, space, rng, rate):
    """A child of two tournament winners: each parameter from either parent, then mutated."""
    mother, father = tournament(population, rng), tournament(population, rng)
    child = {name: (mother if rng.random() < 0.5 else father)[name] for name in mother}
    for name, param in space.parameters.items():
        child[name] = mutate(child[name], param, rng, rate)
    return child


def tournament(population, rng, entrants=3):
    """The best of a few members drawn at random: good parents, but not always the best."""
    picks = rng.integers(len(population), size=min(entrants, len(population)))
    return population[min(picks)][1]  # the population is sorted, so the lowest index wins


def mutate(value, param, rng, rate):
    """A step inside the parameter's range: Gaussian for numbers (in log scale where the
    parameter is), a new random choice for categoricals and grids with probability ``rate``."""
    if isinstance(param, (Float, Int)):
        low, high = param.low, param.high
        if param.log:
            low, high, value = math.log(low), math.log(high), math.log(value)
        moved = float(np.clip(value + rng.normal(0.0, rate * (high - low)), low, high))
        if param.log:
            moved = min(max(math.exp(moved), param.low), param.high)
        if isinstance(param, Float):
            return moved
        steps = round((moved - param.low) / param.step)
        return min(param.low + steps * param.step, param.high - (param.high - param.low) % param.step)
    return param.sample(rng) if rng.random() < rate else value
