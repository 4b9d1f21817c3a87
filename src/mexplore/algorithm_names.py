"""The names of the built-in algorithms, which the study file's checks and the registry
both need: one list, in a room below both (config may not import the algorithms' room)."""

from __future__ import annotations

BUILTINS = {
    "grid": "mexplore.algorithms.grid:GridSearch",
    "random": "mexplore.algorithms.random:RandomSearch",
    "sobol": "mexplore.algorithms.qmc:Sobol",
    "lhs": "mexplore.algorithms.qmc:LatinHypercube",
    "points": "mexplore.algorithms.points:Points",
    "eqpy": "mexplore.compat.eqpy:run_module",
    "command": "mexplore.compat.protocol:run_command",
    **{
        f"optuna.{name}": f"mexplore.algorithms.optuna_adapter:Optuna{cls}"
        for name, cls in [("tpe", "TPE"), ("cmaes", "CmaEs"), ("gp", "GP"), ("nsga2", "NSGA2"),
                          ("nsga3", "NSGA3"), ("qmc", "QMC"), ("random", "Random"), ("grid", "Grid")]
    },
}
"""Names every installation knows; the modules are imported only when one is used, so
Optuna and scipy load only for studies that need them."""
PROPOSE_IN_PROCESSES = ("optuna.tpe", "optuna.gp")
"""Built-ins that may compute their proposals in processes of their own (``[algorithm]
proposers``): their sampler decides from the study's trials alone, so copies of it given the
same trials and different seeds make one search. (CMA-ES and NSGA keep a generation state
of their own in the trials, which copies would each grow apart.)"""
NEEDS_A_SOURCE = ("points", "eqpy", "command")
"""Built-ins that run what the study names (a points file, an EQ/Py module, a program)
rather than a search of their own: ``mexplore new`` cannot scaffold them."""


def samples_space(name: str) -> bool:
    """Whether the built-in algorithm ``name`` draws its points from ``[space]`` (and so
    needs a parameter there); an algorithm of the user's, or one that runs what the study
    names, may bring its own."""
    return name in BUILTINS and name not in NEEDS_A_SOURCE
