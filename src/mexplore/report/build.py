"""``write_report``: decide which plots apply to a run, draw them, and write the PNGs and
the page. Here lives the text that tells a reader how to read each plot, or why it is
left out, next to the rule that decides it."""

from __future__ import annotations

from pathlib import Path

from ..store.atomic import atomic_write
from ..store.run import Run
from ..store.sessions import mexplore_version
from . import plots
from .page import Plot, render
from .parameters import parameter_axes, repeats, swept_parameters
from .summary import Summary, summarize
from .tables import timed

PAGE = "index.html"
NO_OK = "no task finished ok"


def write_report(run: Run, destination: Path) -> tuple[Path, list[Plot]]:
    """Write ``destination/index.html`` and a PNG per drawn plot; a PNG of an earlier report
    in the same folder whose plot no longer applies is removed, so the folder never shows
    a stale figure. Returns the page and the plots (drawn or left out)."""
    summary = summarize(run)
    search = run.objective_kind()  # every plot of the search leaves out the auxiliary kinds' tasks
    sections = [_best_so_far(search), _parameters(search), _workers(run, summary), _sweep(search), _pareto(search)]
    destination.mkdir(parents=True, exist_ok=True)
    for plot in sections:
        target = destination / f"{plot.name}.png"
        if plot.png is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(plot.png)
    page = atomic_write(destination / PAGE, render(run, summary, sections, mexplore_version()))
    return page, sections


def _best_so_far(run: Run) -> Plot:
    title = "Best so far"
    caption = ("Each dot is a task that finished ok; the red line is the best value found so far, "
               "against the number of tasks finished (left) and the time (right). A line still "
               "falling at the right end means more evaluations would likely still help; a long "
               "flat tail means the search has converged or is stuck. Failed tasks count as "
               "evaluations but never as a best. For a resumed run, the time between sessions is "
               "cut out: dashed lines mark where each session starts, with the idle time cut.")
    if run.ok.empty:
        return Plot("best_so_far", title, caption, skipped=NO_OK)
    return Plot("best_so_far", title, caption, plots.png_bytes(plots.best_so_far_figure(run)))


def _parameters(run: Run) -> Plot:
    title = "Parameters against the objective"
    caption = ("One panel per parameter: each ok task at its parameter value. A clear trend or a "
               "narrow region of good values shows what matters; a flat cloud, a parameter that "
               "barely matters. Categorical parameters are spread a little sideways so equal "
               "points stay visible; log-scaled parameters are on a log axis.")
    axes = parameter_axes(run)
    if run.ok.empty:
        return Plot("parameters", title, caption, skipped=NO_OK)
    if not axes:
        return Plot("parameters", title, caption, skipped="the space has no parameter, only constants")
    return Plot("parameters", title, caption, plots.png_bytes(plots.parameters_figure(run, axes)))


def _workers(run: Run, summary: Summary) -> Plot:
    title = "Workers over time"
    caption = ("One row per worker rank, one bar per task from its start to its end, colored by "
               "status. White gaps are idle workers: at the start (ranks starting), at the end "
               "(the tail of a batch or of the budget), or between tasks (workers waiting for "
               "the master: try policy = \"queue\" for very short tasks). For a resumed run, the "
               "sessions follow each other without the idle time between them (dashed lines, "
               "every other session shaded).")
    if timed(run.frame).empty:
        return Plot("workers", title, caption, skipped="no task has run on a worker yet")
    figure = plots.workers_figure(run, summary.workers, summary.utilization)
    return Plot("workers", title, caption, plots.png_bytes(figure))


def _sweep(run: Run) -> Plot:
    title = "Sweep"
    count = repeats(run)
    spread = (f"the mean over the {count} repeats of each point, with its 95% confidence interval "
              "(Student t) shaded" if count > 1 else "the mean of the tasks at each value, with a "
              "95% confidence interval (Student t) where there are several")
    caption = (f"The objective against each swept parameter: {spread}; single tasks in grey. "
               "With two swept parameters, one line per value of the other; with more, each "
               "value pools the tasks of all the others. Overlapping intervals mean the "
               "difference may be noise; add repeats to tell.")
    swept = swept_parameters(run)
    if not swept:
        return Plot("sweep", title, caption, skipped="the study has no grid parameter with 2 or more values")
    if run.ok.empty:
        return Plot("sweep", title, caption, skipped=NO_OK)
    return Plot("sweep", title, caption, plots.png_bytes(plots.sweep_figure(run, swept)))


def _pareto(run: Run) -> Plot:
    title = "Pareto front"
    caption = ("Every ok task by the first two objectives (x: the first, y: the second). Red: the "
               "tasks no other task beats in both (the Pareto front), joined in order; moving "
               "along it trades one objective for the other. With more than two objectives, the "
               "pareto column of results.csv uses them all, this plot the first two.")
    if len(run.objectives) < 2:
        return Plot("pareto", title, caption, skipped="the study has one objective")
    if run.ok.empty:
        return Plot("pareto", title, caption, skipped=NO_OK)
    return Plot("pareto", title, caption, plots.png_bytes(plots.pareto_figure(run)))

