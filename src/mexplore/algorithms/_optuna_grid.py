"""Optuna's GridSampler, made to resume: imported only by ``optuna.grid``, with Optuna.

Optuna gives trial number k the k-th point of its (shuffled) grid. That is right for a
fresh study, but a resumed one starts with the journal's trials, so trial numbers and grid
points no longer line up and finished points would run again. This subclass tags replayed
trials with their grid point and moves a new trial off any point another trial holds. It
reads GridSampler's internals (``_all_grids``, ``_param_names``, ``_n_min_trials``,
``_search_space``), so it
is pinned to their meaning in Optuna 4 and 5.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.samplers import GridSampler
from optuna.trial import FrozenTrial


class ResumableGridSampler(GridSampler):
    resumed = False
    """Set once the journal's trials are in; before that Optuna's own order is kept."""

    def __init__(self, search_space: dict[str, list[Any]], seed: int | None = None) -> None:
        super().__init__(search_space, seed=seed)
        self._ids = {point: i for i, point in enumerate(self._all_grids)}

    def attrs_for(self, params: dict[str, Any]) -> dict[str, Any]:
        """The system attributes GridSampler gives the trial that evaluates ``params``."""
        point = tuple(params[name] for name in self._param_names)
        return {"search_space": self._search_space, "grid_id": self._ids[point]}

    def unvisited(self, study: optuna.Study) -> int:
        """How many grid points no trial holds yet."""
        return self._n_min_trials - len(self._held(study, exclude=None))

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        super().before_trial(study, trial)
        if not self.resumed:
            return
        storage = study._storage
        grid_id = storage.get_trial_system_attrs(trial._trial_id)["grid_id"]
        held = self._held(study, exclude=trial._trial_id)
        if grid_id in held:
            free = sorted(set(range(self._n_min_trials)) - held)
            if free:
                storage.set_trial_system_attr(trial._trial_id, "grid_id", free[0])

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: Any, values: Any) -> None:
        """Nothing: Optuna's version stops an ``optimize`` loop once the grid is exhausted,
        and raises under ask/tell; ``optuna.grid`` ends by itself (``finished``)."""

    @staticmethod
    def _held(study: optuna.Study, exclude: int | None) -> set[int]:
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        return {t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs and t._trial_id != exclude}
