"""A genetic algorithm written for EQ/Py, as EMEWS and CANDLE Supervisor write them.

Nothing here knows mexplore: strings go out with eqpy.OUT_put and come back with
eqpy.IN_get, the handshake returns a Python tuple to eval (as CANDLE's deap_ga.py does), the
space comes from an EMEWS GA parameter file read by a sibling module, and the final
messages follow DONE.
"""

import json
import math
import random

import eqpy
import ga_utils

ga_params = None


def evaluate(population):
    """One generation through the workflow: JSON points joined by ';', values back."""
    eqpy.OUT_put(";".join(json.dumps(dict(zip([p.name for p in ga_params], ind))) for ind in population))
    tokens = eqpy.IN_get().split(";")
    values = [float(token) for token in tokens]
    return [math.inf if math.isnan(value) else value for value in values]


def breed(population, fitness, size):
    children = []
    while len(children) < size:
        a, b = (min(random.sample(range(len(population)), 2), key=lambda i: fitness[i]) for _ in range(2))
        child = [random.choice(genes) for genes in zip(population[a], population[b])]
        children.append([p.mutate(gene) for p, gene in zip(ga_params, child)])
    return children


def run():
    global ga_params
    eqpy.OUT_put("Params")
    num_iter, num_pop, seed, ga_params_file = eval("{}".format(eqpy.IN_get()))
    random.seed(seed)
    ga_params = ga_utils.create_parameters(ga_params_file)
    population = [[p.random_draw() for p in ga_params] for _ in range(num_pop)]
    fitness = evaluate(population)
    for _ in range(num_iter - 1):
        children = breed(population, fitness, num_pop)
        ranked = sorted(zip(fitness + evaluate(children), population + children), key=lambda pair: pair[0])
        fitness, population = [f for f, _ in ranked[:num_pop]], [i for _, i in ranked[:num_pop]]
    eqpy.OUT_put("DONE")
    eqpy.OUT_put(json.dumps(dict(zip([p.name for p in ga_params], population[0]))))
    eqpy.OUT_put(str(fitness[0]))
