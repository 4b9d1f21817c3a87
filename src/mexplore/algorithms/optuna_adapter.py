"""``optuna.<sampler>``: Optuna's samplers driven by ask/tell on the master, with no storage.

One in-memory study lives on the master; each ``propose`` creates a trial per task and
suggests every parameter of the space, and each result is told back to its task's trial. Optuna is
imported only when such an algorithm is built, so ``mexplore --help`` and the workers never
pay for it.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import TYPE_CHECKING, Any

from ..errors import AlgorithmError
from ..objectives import Direction
from ..space import Categorical, Float, Grid, Int, Space
from ..types import Result, Status
from .base import Algorithm, StudyInfo

if TYPE_CHECKING:
    import optuna

PRUNERS = {
    "median": "MedianPruner", "percentile": "PercentilePruner", "sha": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner", "threshold": "ThresholdPruner", "wilcoxon": "WilcoxonPruner",
    "none": "NopPruner",
}
"""``[algorithm] pruner`` names and the Optuna pruners they stand for."""

QUIET = {"warn_independent_sampling": False}
"""Else a sampler that leaves some parameters (categoricals) to random sampling logs one
line per such parameter per task."""


def _optuna() -> Any:
    """Import Optuna once it is needed, with its per-trial INFO lines silenced: the master's
    log would otherwise get one line per task."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(space: Space, name: str) -> dict[str, Any]:
    """Each parameter of ``space`` as the Optuna distribution that samples it."""
    dist = _optuna().distributions
    out: dict[str, Any] = {}
    for key, param in space.parameters.items():
        if isinstance(param, Float):
            out[key] = dist.FloatDistribution(param.low, param.high, log=param.log)
        elif isinstance(param, Int):
            if param.log and param.step != 1:
                raise AlgorithmError(
                    f"algorithm {name!r}: int parameter {key} has log = true and step = {param.step}; "
                    "Optuna samples log-scaled ints only with step 1"
                )
            out[key] = dist.IntDistribution(param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, (Categorical, Grid)):
            out[key] = dist.CategoricalDistribution(param.values())
    return out


class OptunaAlgorithm(Algorithm):
    """Base of the ``optuna.*`` algorithms; a subclass names its sampler class."""

    name = ""
    """The algorithm's registered name, for messages."""
    sampler_class = ""
    """The name of the sampler in ``optuna.samplers``."""
    multi_objective = True
    """False for samplers that optimize one objective only (they are refused otherwise)."""
    defaults: dict[str, Any] = {}
    """Sampler options set unless the study sets them (TPE's constant liar)."""

    prunes = True

    def __init__(
        self, space: Space, info: StudyInfo | None = None, *, pruner: str = "none",
        pruner_options: dict[str, Any] | None = None, **options: Any,
    ) -> None:
        super().__init__(space, info)
        optuna = _optuna()
        directions = [Direction(direction).value for direction in self.info.directions]
        if len(directions) > 1 and not self.multi_objective:
            raise AlgorithmError(
                f"algorithm {self.name!r} optimizes one objective; this study has {len(directions)} "
                "(use optuna.tpe, optuna.nsga2, optuna.nsga3, optuna.qmc or optuna.random)"
            )
        self._distributions = distributions(space, self.name)
        sampler = self._sampler(optuna, {**self.defaults, **options})
        self.study: optuna.Study = optuna.create_study(
            sampler=sampler, directions=directions,
            pruner=_pruner(optuna, self.name, pruner, pruner_options or {}, len(directions)),
        )
        self._trials: dict[int, Any] = {}  # task id -> its trial (or its number: pending()), until told
        self._reported: set[int] = set()  # task ids whose trial got its reports as they came

    def _sampler(self, optuna: Any, options: dict[str, Any]) -> Any:
        """The sampler, with the study's seed and the checked ``[algorithm.options]``."""
        cls = getattr(optuna.samplers, self.sampler_class)
        accepted = set(inspect.signature(cls).parameters) - {"seed", "search_space"}
        for key in options:
            if key not in accepted:
                raise AlgorithmError(
                    f"algorithm {self.name!r} has no option {key!r}: {cls.__name__} takes "
                    f"{', '.join(sorted(accepted)) or 'none'}"
                )
        try:
            with warnings.catch_warnings():  # "experimental" notices are not the user's concern
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return cls(seed=self.seed, **options)
        except (TypeError, ValueError) as exc:
            raise AlgorithmError(f"algorithm {self.name!r} rejected [algorithm.options] {options}: {exc}") from None

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        batch = []
        for task_id in task_ids:
            trial = self.study.ask(self._distributions)
            self._trials[task_id] = trial
            batch.append({**trial.params, **self.space.constants})
        return batch

    def pending(self, task_id: int, params: dict[str, Any]) -> None:
        """A task another copy of this algorithm proposed (``[algorithm] proposers``), as a
        running trial of this study, so the sampler counts it as it counts its own running
        trials (TPE's constant liar); its result comes to :meth:`tell` as for an own one."""
        optuna = _optuna()
        number = len(self.study.get_trials(deepcopy=False))  # in-memory trials are numbered in order
        self.study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, params={key: params[key] for key in self._distributions},
            distributions=self._distributions))
        self._trials[task_id] = number

    def report(self, task_id: int, step: float, value: float) -> bool:
        """Give the intermediate value to the task's trial and ask the study's pruner."""
        trial = self._trials.get(task_id)
        if trial is None or len(self.study.directions) > 1 or not math.isfinite(value):
            return False
        self._reported.add(task_id)
        trial.report(value, int(step))
        return trial.should_prune()

    def tell(self, results: list[Result]) -> None:
        """``ok`` results with finite values complete their trial; ``pruned`` ones are told
        PRUNED (with their intermediate values); any other (failed, timeout, lost, cancelled,
        or a value Optuna cannot use) FAIL, so the trial stops counting as running."""
        for result in results:
            trial = self._trials.pop(result.task_id, None)
            if trial is None:
                continue  # not ours (a result of an earlier run is given to replay instead)
            if result.task_id not in self._reported and not isinstance(trial, int):  # else told as they came
                for step, value in self._reports(result):  # (a pending() trial has none: no pruner with proposers)
                    trial.report(value, step)
            self._reported.discard(result.task_id)
            values = self._values(result)
            if values is not None:
                self.study.tell(trial, values)
            elif result.status is Status.PRUNED:
                self.study.tell(trial, state=_optuna().trial.TrialState.PRUNED)
            else:
                self.study.tell(trial, state=_optuna().trial.TrialState.FAIL)

    def replay(self, results: list[Result]) -> None:
        """Add the journal's results to the study as finished trials, so the sampler goes on
        from them. Points outside the current space (the study changed) are left out."""
        self._add_trials(results, own=True)

    def learn(self, results: list[Result]) -> None:
        """Foreign results (initial points, an earlier run) become finished trials too."""
        self._add_trials(results, own=False)

    def _add_trials(self, results: list[Result], own: bool) -> None:
        """Results as finished trials; ``own`` ones carry what the sampler marks its own
        trials with (the grid's point id), so a resumed grid skips them."""
        create_trial, state = _optuna().trial.create_trial, _optuna().trial.TrialState
        for result in results:
            if not self.space.contains(result.params):
                continue
            params = {key: result.params[key] for key in self._distributions}
            values = self._values(result)
            status = state.COMPLETE if values is not None else (
                state.PRUNED if result.status is Status.PRUNED else state.FAIL)
            self.study.add_trial(create_trial(
                state=status, values=values, params=params, distributions=self._distributions,
                intermediate_values=dict(self._reports(result)),
                system_attrs=self._system_attrs(params) if own else None,
            ))

    def _system_attrs(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """What the sampler needs to recognize a replayed trial as its own (the grid's id)."""
        return None

    def _values(self, result: Result) -> list[float] | None:
        """The objective value(s) of an ``ok`` result; None for anything Optuna cannot use."""
        if not result.ok or result.objective is None:
            return None
        values = result.objective if isinstance(result.objective, list) else [result.objective]
        if len(values) != len(self.study.directions) or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values
        ):
            return None
        return [float(v) for v in values]

    def _reports(self, result: Result) -> list[tuple[int, float]]:
        """Intermediate values as Optuna keeps them (integer steps; one objective only)."""
        if len(self.study.directions) > 1:
            return []
        return [(int(step), float(value)) for step, value in result.reports if math.isfinite(value)]


def _pruner(optuna: Any, name: str, pruner: str, options: dict[str, Any], objectives: int) -> Any:
    """The Optuna pruner ``[algorithm] pruner`` names, built with ``[algorithm.pruner_options]``."""
    if pruner not in PRUNERS:
        raise AlgorithmError(f"algorithm {name!r}: unknown pruner {pruner!r}; expected one of "
                             f"{', '.join(PRUNERS)}")
    if pruner != "none" and objectives > 1:
        raise AlgorithmError(f"algorithm {name!r}: Optuna prunes single-objective studies only; "
                             f"this one has {objectives} objectives")
    try:
        return getattr(optuna.pruners, PRUNERS[pruner])(**options)
    except (TypeError, ValueError) as exc:
        raise AlgorithmError(f"algorithm {name!r}: pruner {pruner!r} rejected [algorithm.pruner_options] "
                             f"{options}: {exc}") from None


class OptunaTPE(OptunaAlgorithm):
    """Tree-structured Parzen estimator (Optuna's default); constant liar on by default for batches."""

    name = "optuna.tpe"
    sampler_class = "TPESampler"
    defaults = {"constant_liar": True}


class OptunaCmaEs(OptunaAlgorithm):
    """CMA evolution strategy, for continuous spaces and one objective."""

    name = "optuna.cmaes"
    sampler_class = "CmaEsSampler"
    multi_objective = False
    defaults = QUIET


class OptunaGP(OptunaAlgorithm):
    """Gaussian-process Bayesian optimization (needs PyTorch); batch-aware via running trials."""

    name = "optuna.gp"
    sampler_class = "GPSampler"
    defaults = QUIET

    def _sampler(self, optuna: Any, options: dict[str, Any]) -> Any:
        try:
            import torch  # noqa: F401  (GPSampler imports it only when it first samples)
        except ImportError:
            raise AlgorithmError(
                f"algorithm {self.name!r} needs PyTorch, which is not installed: "
                "pip install torch (CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
            ) from None
        return super()._sampler(optuna, options)


class OptunaNSGA2(OptunaAlgorithm):
    """NSGA-II genetic algorithm, for one or several objectives."""

    name = "optuna.nsga2"
    sampler_class = "NSGAIISampler"


class OptunaNSGA3(OptunaAlgorithm):
    """NSGA-III genetic algorithm, for many objectives."""

    name = "optuna.nsga3"
    sampler_class = "NSGAIIISampler"


class OptunaQMC(OptunaAlgorithm):
    """Optuna's quasi-Monte Carlo sampler (Sobol' or Halton)."""

    name = "optuna.qmc"
    learns = False  # its points do not depend on results
    sampler_class = "QMCSampler"
    defaults = QUIET


class OptunaRandom(OptunaAlgorithm):
    """Optuna's independent random sampler."""

    name = "optuna.random"
    learns = False  # its points do not depend on results
    sampler_class = "RandomSampler"


class OptunaGrid(OptunaAlgorithm):
    """Optuna's grid sampler over every combination of the space's values; ends when exhausted."""

    name = "optuna.grid"
    learns = False  # its points do not depend on results
    sampler_class = "GridSampler"

    def __init__(self, space: Space, info: StudyInfo | None = None, **options: Any) -> None:
        try:
            self._axes = dict(space.grid_axes())
        except AlgorithmError as exc:
            raise AlgorithmError(f"algorithm 'optuna.grid': {exc}") from None
        super().__init__(space, info, **options)
        self._left = math.prod(len(values) for values in self._axes.values())

    def _sampler(self, optuna: Any, options: dict[str, Any]) -> Any:
        from ._optuna_grid import ResumableGridSampler

        if options:
            raise AlgorithmError(f"algorithm 'optuna.grid' takes no options, got {options}")
        search_space = {name: list(values) for name, values in self._axes.items()}
        return ResumableGridSampler(search_space, seed=self.seed)

    def propose(self, task_ids: range) -> list[dict[str, Any]]:
        batch = super().propose(task_ids[: self._left])
        self._left -= len(batch)
        return batch

    def replay(self, results: list[Result]) -> None:
        super().replay(results)
        self.study.sampler.resumed = True
        self._left = self.study.sampler.unvisited(self.study)

    def _system_attrs(self, params: dict[str, Any]) -> dict[str, Any] | None:
        return self.study.sampler.attrs_for(params)

    @property
    def finished(self) -> bool:
        return self._left == 0
