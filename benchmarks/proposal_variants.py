"""Screen ways of proposing in parallel (issue 16 item 3), fast: 8 asynchronous workers are
SIMULATED in-process, one proposal per worker, as the default policy runs a learning algorithm.

Each of WORKERS tasks "runs" for its length from ``problems.task_seconds`` (the same lengths
as ``quality.py``'s engine runs); results are told in the order they finish and one new
task is proposed at once, so each proposal misses the results of the 7 tasks still running,
exactly the lag the engine gives (``quality.py`` measures it: a mean of 6.4 on these
problems). What a search proposes depends only on that order and on what it was told, so
this ranks variants as the engine would, in a fraction of the time; the winner is then
checked through the engine with ``quality.py --variant``.

Variants (``--variant LABEL``, repeatable; all by default):

- ``default``: ``optuna.tpe`` as shipped (Optuna's constant liar: running trials join the
  "bad" density, so new proposals move away from them);
- ``liar-off``: no liar (running trials ignored);
- ``liar-mean``: the classic liar as ``lie-mean``, without rebuilding a study per
  proposal: TPE is handed a view of the study in which running trials read as complete
  with the mean value (:class:`MeanLiarTPESampler`);
- ``startup-N``: ``n_startup_trials = N`` (Optuna's default is 10; with 8 workers 17
  proposals are made before TPE has 10 results);
- ``univariate``: ``multivariate = false``;
- ``candidates-N``: ``n_ei_candidates = N`` (default 24);
- ``lie-best`` / ``lie-mean`` / ``lie-worst``: the classic constant liar (Ginsbourger et al.):
  each proposal is made by a fresh TPE that is told every running task as finished with
  the best / mean / worst value seen so far (:class:`LyingTPE`);
- ``spread-W``: TPE whose acquisition is penalized near running tasks' points, a local
  penalization with weight W (:class:`SpreadTPE`);
- ``cmaes``: ``optuna.cmaes``, a population method, for reference;
- ``gp``: ``optuna.gp``, Optuna's Gaussian process, which conditions on running trials
  itself (needs PyTorch; slow: minutes per 5-D run).

Rows go to ``--raw`` (default ``runs/variants.jsonl``) in ``quality.py``'s format, as
method ``sim:LABEL``; ``quality.py --report-only --raw runs/quality.jsonl --raw
runs/variants.jsonl`` compares them with the engine run and the baselines (sequential TPE,
``n_jobs``) that ``quality.py`` measured on the same problems and seeds.

    .venv/bin/python benchmarks/proposal_variants.py --dims 2 5 10 --seeds 3   # ~5 min a variant
"""

from __future__ import annotations

import argparse
import copy
import heapq
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from problems import Problem, problem, task_seconds  # noqa: E402
from quality import problems_of, read_raw  # noqa: E402

from mexplore.algorithms.base import Algorithm, StudyInfo  # noqa: E402
from mexplore.algorithms.optuna_adapter import OptunaTPE, _optuna  # noqa: E402
from mexplore.queue.build import build_algorithm  # noqa: E402
from mexplore.space import Float, Space  # noqa: E402
from mexplore.types import Result, Status  # noqa: E402


class LyingTPE(OptunaTPE):
    """TPE with the classic constant liar: every proposal comes from a fresh study holding the
    finished trials plus each running task told as finished with the ``lie`` of the values
    seen (best, mean or worst). Costs a rebuild of the study per proposal."""

    def __init__(self, space: Space, info: StudyInfo | None = None, *, lie: str = "mean", **options: Any) -> None:
        super().__init__(space, info, constant_liar=False, **options)
        self.lie = lie
        self._proposed = 0
        self._done: list[Any] = []  # finished trials (frozen), in order

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        optuna = _optuna()
        batch = []
        for task_id in task_ids:
            values = [t.value for t in self._done if t.state == optuna.trial.TrialState.COMPLETE]
            lie = {"best": min, "worst": max, "mean": np.mean}[self.lie](values) if values else None
            shadow = optuna.create_study(sampler=optuna.samplers.TPESampler(
                seed=None if self.seed is None else self.seed * 100_003 + self._proposed))
            shadow.add_trials(self._done)
            if lie is not None:
                for trial in self._trials.values():
                    shadow.add_trial(optuna.trial.create_trial(
                        params=trial.params, distributions=self._distributions, value=float(lie)))
            asked = shadow.ask(self._distributions)
            self.study.enqueue_trial(asked.params)  # the real trial takes the shadow's choice
            self._trials[task_id] = self.study.ask(self._distributions)
            self._proposed += 1
            batch.append(dict(asked.params))
        return batch

    def _sampler(self, optuna: Any, options: dict[str, Any]) -> Any:
        return optuna.samplers.RandomSampler(seed=self.seed)  # only holds the enqueued choices

    def tell(self, results: list[Result]) -> None:
        super().tell(results)
        self._done = self.study.get_trials(deepcopy=False, states=(_optuna().trial.TrialState.COMPLETE,))


class _LyingView:
    """A study, except that its running trials read as complete with ``lie``."""

    def __init__(self, study: Any, asking: int, lie: float) -> None:
        self._study, self._asking, self._lie = study, asking, lie

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = self._study._get_trials(deepcopy=False, states=None, use_cache=False)
        shown = []
        for trial in trials:
            if trial.state is TrialState.RUNNING and trial.number != self._asking:
                trial = copy.copy(trial)
                trial.state, trial.value = TrialState.COMPLETE, self._lie
            if states is None or trial.state in states:
                shown.append(trial)
        return shown


class MeanLiarTPESampler(optuna.samplers.TPESampler):
    """TPESampler (without Optuna's ``constant_liar``) that sees running trials as finished
    with the mean of the values seen so far; single-objective studies only."""

    def __init__(self, **options: Any) -> None:
        super().__init__(constant_liar=False, **options)

    @staticmethod
    def _lie(study: Any) -> float | None:
        """The mean of the finite values of complete trials (None before the first)."""
        values = [trial.value for trial in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if trial.value is not None and math.isfinite(trial.value)]
        return math.fsum(values) / len(values) if values else None

    def _view(self, study: Any, trial: FrozenTrial) -> Any:
        lie = self._lie(study)
        return study if lie is None else _LyingView(study, trial.number, lie)

    def sample_relative(self, study: Any, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return super().sample_relative(self._view(study, trial), trial, search_space)

    def sample_independent(self, study: Any, trial: FrozenTrial, param_name: str, param_distribution: Any) -> Any:
        return super().sample_independent(self._view(study, trial), trial, param_name, param_distribution)


class MeanLiarTPE(OptunaTPE):
    """``optuna.tpe`` with :class:`MeanLiarTPESampler` instead of Optuna's own liar."""

    def _sampler(self, optuna: Any, options: dict[str, Any]) -> Any:
        return MeanLiarTPESampler(seed=self.seed, **{k: v for k, v in options.items() if k != "constant_liar"})


def _spread_sampler(weight: float):
    """A TPESampler whose acquisition (log l - log g) loses ``weight`` x the summed Gaussian
    closeness, in the unit cube, of each candidate to the running trials' points."""
    optuna = _optuna()
    from optuna.trial import TrialState

    class SpreadSampler(optuna.samplers.TPESampler):
        def _sample(self, study, trial, search_space):
            running = [t for t in study._get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                       if t.number != trial.number and search_space.keys() <= t.params.keys()]
            self._running = {name: np.array([d.to_internal_repr(t.params[name]) for t in running])
                             for name, d in search_space.items()}
            self._space = search_space
            return super()._sample(study, trial, search_space)

        def _compute_acquisition_func(self, samples, mpe_below, mpe_above):
            values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
            names = [n for n in samples if n in self._running and self._running[n].size]
            if not names:
                return values
            squared = np.zeros((next(iter(samples.values())).size, self._running[names[0]].size))
            for name in names:
                d = self._space[name]
                width = (d.high - d.low) or 1.0
                squared += ((samples[name][:, None] - self._running[name][None, :]) / width) ** 2
            bandwidth = 0.1 ** 2 * len(names)  # a tenth of each side
            return values - weight * np.exp(-squared / (2 * bandwidth)).sum(axis=1)

    return SpreadSampler


class SpreadTPE(OptunaTPE):
    """TPE with a local penalization of running tasks' neighbourhoods (``weight``)."""

    def __init__(self, space: Space, info: StudyInfo | None = None, *, weight: float = 1.0, **options: Any) -> None:
        self.weight = weight
        super().__init__(space, info, **options)

    def _sampler(self, optuna: Any, options: dict[str, Any]) -> Any:
        return _spread_sampler(self.weight)(seed=self.seed, **options)


def make(label: str, space: Space, info: StudyInfo) -> Algorithm:
    """The algorithm a variant label stands for."""
    kind, _, number = label.partition("-")
    if label == "default":
        return build_algorithm("optuna.tpe", space, info, {})
    if label == "liar-off":
        return build_algorithm("optuna.tpe", space, info, {"constant_liar": False})
    if label == "liar-mean":
        return MeanLiarTPE(space, info)
    if label == "univariate":
        return build_algorithm("optuna.tpe", space, info, {"multivariate": False})
    if label in ("cmaes", "gp"):
        return build_algorithm(f"optuna.{label}", space, info, {})
    if kind == "startup":
        return build_algorithm("optuna.tpe", space, info, {"n_startup_trials": int(number)})
    if kind == "candidates":
        return build_algorithm("optuna.tpe", space, info, {"n_ei_candidates": int(number)})
    if kind == "spread":
        return SpreadTPE(space, info, weight=float(number))
    if kind == "lie":
        return LyingTPE(space, info, lie=number)
    raise SystemExit(f"unknown variant {label!r}")


VARIANTS = ["default", "liar-off", "liar-mean", "startup-3", "startup-20", "univariate", "candidates-64",
            "lie-best", "lie-mean", "lie-worst", "spread-1", "spread-4", "cmaes", "gp"]


def simulate(algorithm: Algorithm, chosen: Problem, seed: int, workers: int) -> dict:
    """Values in finishing order, virtual times and lags of one simulated asynchronous run."""
    names = [f"x{i}" for i in range(chosen.dimension)]
    values, times, lags, running = [], [], [], []
    proposed = 0

    def start(clock: float, count: int) -> None:
        nonlocal proposed
        for params in algorithm.propose(range(proposed, proposed + count)):
            heapq.heappush(running, (clock + task_seconds(seed, proposed), proposed, params, len(running)))
            proposed += 1

    start(0.0, workers)
    while running:
        clock, task_id, params, lag = heapq.heappop(running)
        value = chosen.f(np.array([params[n] for n in names]))
        values.append(value), times.append(clock), lags.append(lag)
        algorithm.tell([Result(task_id=task_id, params=params, status=Status.OK, objective=value)])
        if proposed < chosen.budget:
            start(clock, 1)
    algorithm.close()
    return {"values": values, "times": times, "lags": lags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=[2, 5, 10])
    parser.add_argument("--functions", type=int, nargs="*", default=list(range(1, 25)))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-classic", dest="classic", action="store_false")
    parser.add_argument("--variant", action="append", help=f"default: all of {', '.join(VARIANTS)}")
    parser.add_argument("--raw", default="runs/variants.jsonl")
    args = parser.parse_args()
    _optuna()
    raw = Path(args.raw)
    raw.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["problem"], r["seed"], r["method"]) for r in read_raw(raw)}
    for label in args.variant or VARIANTS:
        started = time.time()
        for group, name, seed in problems_of(args):
            if (name, seed, f"sim:{label}") in done:
                continue
            chosen = problem(name)
            space = Space({f"x{i}": Float(lo, hi) for i, (lo, hi) in enumerate(zip(chosen.lower, chosen.upper))}, {})
            record = simulate(make(label, space, StudyInfo(seed=seed, workers=args.workers)), chosen, seed, args.workers)
            record.update(problem=name, group=group, seed=seed, method=f"sim:{label}", minimum=chosen.minimum,
                          budget=chosen.budget, workers=args.workers)
            with raw.open("a") as out:
                out.write(json.dumps(record) + "\n")
        print(f"{label}: {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
