"""The numbers behind the plots, as plain DataFrames: pure functions of a results frame
(the one :func:`mexplore.store.table.results_frame` builds), so they are tested on frames
made by hand and reused by anyone plotting a run their own way.

Only ``ok`` rows carry objective values; a failed, timed-out or pruned task still took an
evaluation and worker time, which is where it appears (the evaluation count, the timings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..objectives import Direction

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95


def objective_values(frame: pd.DataFrame, objective: str) -> pd.Series:
    """The objective as floats, NaN wherever the task did not finish ``ok``."""
    import pandas as pd

    values = pd.to_numeric(frame[objective], errors="coerce")
    return values.where(frame["status"] == "ok")


def has_times(frame: pd.DataFrame) -> pd.Series:
    """True where a row has both timestamps (a result that never ran records 0.0, not a time)."""
    return (frame["started"] > 0) & (frame["ended"] > 0)


def best_so_far(frame: pd.DataFrame, objective: str, direction: Direction | str) -> pd.DataFrame:
    """One row per finished task in the order tasks ended: ``evaluation`` (1, 2, ...),
    ``elapsed`` (seconds from the first start), ``value`` (NaN unless ``ok``) and ``best``,
    the best ``ok`` value up to that task (NaN before the first one)."""
    import numpy as np
    import pandas as pd

    done = frame[has_times(frame)].sort_values("ended", kind="stable")
    value = objective_values(done, objective)
    best = (value.cummin() if Direction(direction).ascending else value.cummax()).ffill()
    return pd.DataFrame({
        "evaluation": np.arange(1, len(done) + 1),
        "elapsed": (done["ended"] - done["started"].min()).to_numpy(dtype=float),
        "value": value.to_numpy(dtype=float),
        "best": best.to_numpy(dtype=float),
    })


def sweep_table(
    frame: pd.DataFrame, objective: str, x: str, by: str | None = None, confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """The sweep curve: for each value of column ``x`` (and of ``by``, one curve per value),
    ``n`` ok rows, their ``mean``, ``std`` (n - 1 in the denominator) and the ``low``/``high``
    ends of the Student t interval of the mean at ``confidence``, ``mean -+ t * std / sqrt(n)``.

    The rows of one group are the repeats of one sweep point; with one row (no repeats)
    the interval is NaN: a single value says nothing about its own noise.
    """
    import numpy as np
    from scipy import stats

    keys = [by, x] if by else [x]
    values = frame.assign(_value=objective_values(frame, objective)).dropna(subset=["_value"])
    table = values.groupby(keys, sort=True)["_value"].agg(n="count", mean="mean", std="std").reset_index()
    n = table["n"].to_numpy(dtype=float)
    t = stats.t.ppf((1 + confidence) / 2, np.where(n > 1, n - 1, np.nan))
    half = t * table["std"].to_numpy(dtype=float) / np.sqrt(n)
    table["low"] = table["mean"] - half
    table["high"] = table["mean"] + half
    return table


def timed(frame: pd.DataFrame) -> pd.DataFrame:
    """Tasks that ran on a worker (a reused result has rank -1 and took no time), with
    both timestamps: the rows a timeline or a utilization figure can use."""
    if frame.empty:
        return frame
    return frame[has_times(frame) & (frame["rank"] >= 0)]


def utilization(frame: pd.DataFrame, workers: int) -> float | None:
    """Busy worker time over available worker time (``workers`` x the span from the first
    start to the last end); None when nothing ran."""
    ran = timed(frame)
    if ran.empty or workers < 1:
        return None
    span = ran["ended"].max() - ran["started"].min()
    if span <= 0:
        return None
    return float((ran["ended"] - ran["started"]).sum() / (workers * span))
