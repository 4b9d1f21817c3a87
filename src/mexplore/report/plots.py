"""The report's figures, drawn with matplotlib's object API on the Agg canvas: no pyplot,
so no display is needed, no global figure registry fills up, and a user's own pyplot
session is left alone. Every figure has a fixed size per panel, so a page of them lines up.

Each function takes data already chosen by :mod:`.build` and returns a ``Figure``;
:func:`png_bytes` renders it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..store.run import Run
from ..store.table import pareto_mask
from .parameters import ParameterAxis
from .summary import duration_text
from .tables import (
    CONFIDENCE,
    SessionSpan,
    best_so_far,
    clock_origin,
    objective_values,
    per_slot,
    session_spans,
    sweep_table,
    timed,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
PANEL = (3.6, 3.0)
"""Inches of one small panel (a parameter, a sweep axis); 360 x 300 pixels at DPI."""
TRACE_PANEL = (5.0, 3.2)
TIMELINE = (10.0, 4.5)
FRONT = (6.5, 5.0)
STATUS_COLORS = {"ok": "tab:green", "failed": "tab:red", "timeout": "tab:orange",
                 "pruned": "tab:purple", "cancelled": "tab:gray", "lost": "tab:brown"}
ELAPSED = "seconds since the first task started"
ELAPSED_IN_SESSIONS = "seconds in sessions since the first task started"
SESSION_LABELS = 8
"""Sessions are named on the plot when there are at most this many; more would overlap."""


def png_bytes(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def best_so_far_figure(run: Run) -> Figure:
    """Per objective (rows): every ok value and the best so far, against the evaluation
    count (left) and the time (right)."""
    figure, grid = _figure(len(run.objectives), 2, TRACE_PANEL)
    spans = session_spans(run.sessions)
    for row, (objective, direction) in enumerate(zip(run.objectives, run.directions)):
        trace = best_so_far(run.frame, objective, direction, run.sessions)
        for axes, x, label in ((grid[row][0], "evaluation", "evaluations, in the order they ended"),
                               (grid[row][1], "elapsed", _elapsed(spans))):
            axes.scatter(trace[x], trace["value"], s=10, alpha=0.4, color="tab:blue", label="ok task")
            axes.step(trace[x], trace["best"], where="post", color="tab:red", label="best so far")
            axes.set_xlabel(label)
            axes.set_ylabel(f"{objective} ({direction})")
            _value_scale(axes, trace["value"])
        _mark_sessions(grid[row][1], spans)
        grid[row][0].legend(fontsize="small")
    return figure


def parameters_figure(run: Run, parameters: Sequence[ParameterAxis]) -> Figure:
    """One panel per parameter and objective: each ok task's objective at its parameter value."""
    ok = run.ok
    figure, panels = _panel_rows(run.objectives, parameters)
    for (objective, parameter), axes in panels:
        y = objective_values(ok, objective)
        axes.scatter(_place(axes, parameter, ok[parameter.column], jitter=True), y, s=10, alpha=0.5)
        axes.set_ylabel(objective)
        _value_scale(axes, y)
    return figure


def sweep_figure(run: Run, swept: Sequence[ParameterAxis]) -> Figure:
    """One panel per swept parameter and objective: the mean over each point's rows with its
    95% interval (shaded), one line per value of the other swept parameter when there is
    exactly one other; the single rows in grey behind."""
    ok = run.ok
    figure, panels = _panel_rows(run.objectives, swept)
    for (objective, parameter), axes in panels:
        others = [s for s in swept if s is not parameter]
        by = others[0] if len(others) == 1 else None
        axes.scatter(_place(axes, parameter, ok[parameter.column]), objective_values(ok, objective),
                     s=6, alpha=0.3, color="tab:gray", label="task")
        table = sweep_table(ok, objective, parameter.column, by.column if by else None)
        curves = table.groupby(by.column, sort=False) if by else [("mean", table)]
        for value, curve in curves:
            x = parameter.positions(curve[parameter.column])
            order = x.argsort()
            label = f"{by.name} = {value}" if by else "mean"
            line, = axes.plot(x[order], curve["mean"].to_numpy()[order], marker="o", ms=3, label=label)
            axes.fill_between(x[order], curve["low"].to_numpy()[order], curve["high"].to_numpy()[order],
                              color=line.get_color(), alpha=0.2, linewidth=0)
        axes.set_ylabel(objective)
        _legend_with_band(axes, bool(table["low"].notna().any()))
    return figure


def workers_figure(run: Run, workers: str, busy: float | None) -> Figure:
    """A Gantt chart: one row per worker rank, one bar per task from its start to its end,
    colored by status; a task of several ranks has a bar on each slot it held, and an
    auxiliary kind's task (``[models.<kind>]``) is hatched, its kind in the legend."""
    import numpy as np
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    ran = per_slot(timed(run.frame))
    ran = ran.assign(kind=ran["kind"].fillna("") if "kind" in ran else "")  # "": the objective kind
    figure = Figure(figsize=TIMELINE, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    origin = clock_origin(run.frame, run.sessions)
    for (kind, status), tasks in ran.groupby(["kind", "status"], sort=True):
        shift = origin.loc[tasks.index].to_numpy(float)  # by position: a task of several slots repeats its label
        x0 = tasks["started"].to_numpy(float) - shift
        x1 = tasks["ended"].to_numpy(float) - shift
        y0, y1 = tasks["rank"].to_numpy(float) - 0.4, tasks["rank"].to_numpy(float) + 0.4
        boxes = np.stack([np.c_[x0, y0], np.c_[x0, y1], np.c_[x1, y1], np.c_[x1, y0]], axis=1)
        color = STATUS_COLORS.get(str(status), "black")
        label = f"{status} ({tasks['id'].nunique()})"
        if kind:  # an auxiliary kind's tasks (a surrogate's training): hatched, named in the legend
            axes.add_collection(PolyCollection(boxes, facecolors="none", edgecolors=color, linewidths=0.6,
                                               hatch="////", label=f"{kind}: {label}"))
        else:
            axes.add_collection(PolyCollection(boxes, facecolors=color, edgecolors=color, linewidths=0.3,
                                               label=label))
    axes.autoscale_view()
    ranks = sorted(ran["rank"].unique())
    if len(ranks) <= 32:
        axes.set_yticks(ranks, [str(int(r)) for r in ranks])
    spans = session_spans(run.sessions)
    _mark_sessions(axes, spans)
    axes.set_xlabel(_elapsed(spans))
    axes.set_ylabel("worker rank")
    share = f", {busy:.0%} busy" if busy is not None else ""
    axes.set_title(f"{workers} worker(s){share}", fontsize="medium")
    figure.legend(fontsize="small", loc="outside right upper")  # beside the bars, never on them
    return figure


def pareto_figure(run: Run) -> Figure:
    """The first two objectives of every ok task; the non-dominated ones (on those two)
    highlighted and joined in order of the first."""
    from matplotlib.figure import Figure

    first, second = run.objectives[:2]
    ok = run.ok.assign(**{first: objective_values(run.ok, first), second: objective_values(run.ok, second)})
    ok = ok.dropna(subset=[first, second])
    front = ok[pareto_mask(ok, [first, second], run.directions[:2])].sort_values(first)
    figure = Figure(figsize=FRONT, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(ok[first], ok[second], s=12, color="tab:gray", alpha=0.5, label=f"ok task ({len(ok)})")
    axes.plot(front[first], front[second], marker="o", color="tab:red", label=f"Pareto front ({len(front)})")
    axes.set_xlabel(f"{first} ({run.directions[0]})")
    axes.set_ylabel(f"{second} ({run.directions[1]})")
    axes.legend(fontsize="small")
    return figure


def _elapsed(spans: Sequence[SessionSpan]) -> str:
    return ELAPSED_IN_SESSIONS if len(spans) > 1 else ELAPSED


def _mark_sessions(axes: Axes, spans: Sequence[SessionSpan]) -> None:
    """Each session after the first on a time axis of the run's clock: a dashed line where
    it starts, its number and the idle time cut out before it, and every other session
    shaded, so the sessions read as blocks. Nothing for a run of one session."""
    if len(spans) < 2:
        return
    for index, span in enumerate(spans):
        if index % 2:
            axes.axvspan(span.offset, span.offset + span.end - span.start, color="0.92", zorder=0, linewidth=0)
        if index:
            axes.axvline(span.offset, color="0.35", linestyle="--", linewidth=0.8,
                         label="a session starts" if index == 1 else None)
        if len(spans) <= SESSION_LABELS:
            idle = f" ({duration_text(span.idle_before)} idle cut)" if index and span.idle_before > 0 else ""
            axes.text(span.offset, 0.99, f"session {span.number}{idle}", transform=axes.get_xaxis_transform(),
                      va="top", ha="left", fontsize="x-small", color="0.25",
                      bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1})


def _legend_with_band(axes: Axes, banded: bool) -> None:
    """The axes' legend, with an entry saying what the shaded band is when one is drawn."""
    from matplotlib.patches import Patch

    handles, labels = axes.get_legend_handles_labels()
    if banded:
        handles.append(Patch(facecolor="0.5", alpha=0.3, linewidth=0))
        labels.append(f"{CONFIDENCE:.0%} t interval of the mean")
    axes.legend(handles, labels, fontsize="x-small")


def _figure(rows: int, columns: int, panel: tuple[float, float]) -> tuple[Figure, list[list[Axes]]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(panel[0] * columns, panel[1] * rows), dpi=DPI, layout="constrained")
    return figure, figure.subplots(rows, columns, squeeze=False).tolist()


def _panel_rows(objectives: Sequence[str], parameters: Sequence[ParameterAxis],
                ) -> tuple[Figure, list[tuple[tuple[str, ParameterAxis], Axes]]]:
    """A grid of PANELs: each objective starts a new row, its parameters fill up to 4 per row."""
    columns = min(len(parameters), 4)
    rows_each = math.ceil(len(parameters) / columns)
    figure, grid = _figure(rows_each * len(objectives), columns, PANEL)
    panels = []
    for block, objective in enumerate(objectives):
        for index, parameter in enumerate(parameters):
            axes = grid[block * rows_each + index // columns][index % columns]
            axes.set_xlabel(parameter.name)
            panels.append(((objective, parameter), axes))
    used = {id(axes) for _, axes in panels}
    for axes in (a for row in grid for a in row if id(a) not in used):
        axes.set_visible(False)
    return figure, panels


def _place(axes: Axes, parameter: ParameterAxis, values: pd.Series, jitter: bool = False):
    """x coordinates for ``values`` on ``axes``, and the axis made to match: labels at the
    categories (spread a little so equal points stay visible), or a log scale."""
    import numpy as np

    x = parameter.positions(values)
    if parameter.categorical:
        axes.set_xticks(range(len(parameter.labels())), parameter.labels())
        axes.set_xlim(-0.5, len(parameter.labels()) - 0.5)  # a category without ok tasks shows empty
        if jitter:
            x = x + np.random.default_rng(0).uniform(-0.15, 0.15, len(x))
    elif parameter.log:
        axes.set_xscale("log")
    return x


def _value_scale(axes: Axes, values: pd.Series) -> None:
    """A log y axis when positive values span more than two decades (losses often do)."""
    finite = values.dropna()
    if not finite.empty and finite.min() > 0 and finite.max() / finite.min() > 100:
        axes.set_yscale("log")
