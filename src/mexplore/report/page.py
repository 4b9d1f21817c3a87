"""``index.html``: one self-contained page (styles inline, PNGs as base64 data URIs), so the
single file can be mailed, attached to an issue or opened from an ``scp`` copy."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from ..failures import FailureTally, Reason, is_failure
from ..store.run import Run
from .summary import Summary, duration_text

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222 }
table { border-collapse: collapse; margin-bottom: 1em }
th, td { padding: 2px 12px 2px 0; text-align: left; vertical-align: top; border-bottom: 1px solid #ddd }
img { max-width: 100%; height: auto }
.note { color: #555 }
.alert { background: #fff3cd; padding: 0.5em 1em }
"""


@dataclass(frozen=True)
class Plot:
    """One section of the report: a drawn PNG, or the one line saying why it is left out."""

    name: str
    """File stem of the PNG, and the section's anchor."""
    title: str
    caption: str
    """How to read it."""
    png: bytes | None = None
    skipped: str = ""


def render(run: Run, summary: Summary, plots: list[Plot], version: str) -> str:
    made = datetime.now().astimezone().isoformat(timespec="seconds")
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mexplore report: {escape(run.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Study {escape(run.name)}</h1>",
        f'<p class="note">Report of {escape(str(run.output.resolve()))}, made {made} by mexplore {escape(version)}.</p>',
        _alert(summary), _summary_table(run, summary), _best_table(summary), _sessions_table(summary),
        _failures_table(run.frame),
    ]
    parts += [_section(plot) for plot in plots]
    parts.append("</body></html>\n")
    return "\n".join(part for part in parts if part)


def _alert(summary: Summary) -> str:
    if summary.tasks == 0:
        return '<p class="alert">The journal holds no finished task yet: nothing to plot.</p>'
    if summary.by_status.get("ok", 0) == 0:
        why = '<a href="#failures">Failures</a> says why tasks failed, and ' if any(map(is_failure, summary.by_status)) else ""
        return (f'<p class="alert">No task finished ok ({_statuses(summary)}): the plots of the '
                f"objective are left out; {why}the timeline below shows what ran.</p>")
    return ""


def _summary_table(run: Run, summary: Summary) -> str:
    algorithm = run.algorithm
    rows = [
        ("algorithm", f"{algorithm.get('name', '?')} ({algorithm.get('policy', '?')})"),
        ("objective", ", ".join(f"{o} ({d})" for o, d in zip(run.objectives, run.directions))),
        ("tasks", f"{summary.tasks}" + (f": {_statuses(summary)}" if summary.tasks else "")),
    ]
    several = len(summary.sessions) > 1
    if several:
        idle = f"; the {duration_text(summary.idle)} between them is left out of the figures" if summary.idle else ""
        rows.append(("sessions", f"{len(summary.sessions)} (see below){idle}"))
    if summary.wall is not None:
        span = "first task start to last task end" + (", summed over the sessions" if several else "")
        rows.append(("wall time", f"{duration_text(summary.wall)} ({span})"))
    if summary.rate is not None:
        rows.append(("throughput", f"{_number(summary.rate, 3)} tasks/s"))
    if summary.utilization is not None:
        rows.append(("worker utilization",
                     f"{summary.utilization:.0%} of {summary.workers} worker(s) (busy time / worker time)"))
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<h2>Summary</h2><table>{cells}</table>"


def _best_table(summary: Summary) -> str:
    if not summary.best:
        return ""
    rows = "".join(
        f"<tr><td>{escape(b.objective)} ({escape(b.direction)})</td><td>{b.value:.6g}</td>"
        f"<td>{b.task}</td><td>{escape(', '.join(f'{k} = {_number(v)}' for k, v in b.params.items()))}</td></tr>"
        for b in summary.best
    )
    head = "<tr><th>best</th><th>value</th><th>task</th><th>parameters</th></tr>"
    return f"<table>{head}{rows}</table>"


def _sessions_table(summary: Summary) -> str:
    """One row per session, for a run of several: each one's own wall time, workers,
    throughput and utilization, and the idle time before it that the figures leave out."""
    if len(summary.sessions) < 2:
        return ""
    head = ("<tr><th>session</th><th>started</th><th>ended</th><th>tasks</th><th>wall time</th>"
            "<th>workers</th><th>throughput</th><th>utilization</th><th>idle before</th></tr>")
    rows = "".join(
        f"<tr><td>{s.number}</td><td>{_when(s.start)}</td><td>{escape(s.ended)}</td><td>{s.tasks}</td>"
        f"<td>{_maybe(s.wall, duration_text)}</td><td>{s.workers}</td>"
        f"<td>{_maybe(s.rate, lambda r: f'{_number(r, 3)} tasks/s')}</td>"
        f"<td>{_maybe(s.utilization, lambda u: f'{u:.0%}')}</td>"
        f"<td>{duration_text(s.idle_before) if s.idle_before else '-'}</td></tr>"
        for s in summary.sessions
    )
    return f'<h2 id="sessions">Sessions</h2><table>{head}{rows}</table>'


def _failures_table(frame: pd.DataFrame) -> str:
    """Why tasks failed, one row per status and reason (as :mod:`mexplore.failures` groups
    them), most frequent first, with a few task ids to look up."""
    if frame.empty:
        return ""
    failed = frame[frame["status"].map(is_failure)]
    if failed.empty:
        return ""
    reasons: list[tuple[Reason, str]] = []
    for status, tasks in failed.groupby("status", sort=False):
        tally = FailureTally()
        for task_id, error in zip(tasks["id"], tasks["error"]):
            tally.add(int(task_id), str(status), error if isinstance(error, str) else None)
        reasons += [(reason, str(status)) for reason in tally.most_common()]
    reasons.sort(key=lambda pair: -pair[0].count)
    head = "<tr><th>tasks</th><th>status</th><th>reason</th><th>for example</th></tr>"
    rows = "".join(
        f"<tr><td>{reason.count}</td><td>{escape(status)}</td><td>{escape(reason.text)}</td>"
        f"<td>{', '.join(str(i) for i in reason.task_ids)}</td></tr>"
        for reason, status in reasons
    )
    intro = (f"{len(failed)} of {len(frame)} tasks did not finish ok, by reason (the last line of "
             "the error), most frequent first. The whole error text of a task is in journal.jsonl.")
    return f'<h2 id="failures">Failures</h2><p>{escape(intro)}</p><table>{head}{rows}</table>'


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(sep=" ", timespec="seconds") if epoch else "-"


def _maybe(value: float | None, text: Callable[[float], str]) -> str:
    return "-" if value is None else escape(text(value))


def _section(plot: Plot) -> str:
    if plot.png is None:
        return f'<p class="note" id="{plot.name}">{escape(plot.title)}: left out, {escape(plot.skipped)}.</p>'
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<h2 id="{plot.name}">{escape(plot.title)}</h2><p>{escape(plot.caption)}</p>'
            f'<img src="data:image/png;base64,{data}" alt="{escape(plot.title)}">')


def _statuses(summary: Summary) -> str:
    return ", ".join(f"{n} {status}" for status, n in summary.by_status.items())


def _number(value: object, digits: int = 6) -> str:
    """Floats to ``digits`` significant digits, without an exponent from 1000 to a million;
    anything else as its text."""
    if isinstance(value, float):
        return f"{value:.0f}" if 1e3 <= abs(value) < 1e6 else f"{value:.{digits}g}"
    return str(value)

