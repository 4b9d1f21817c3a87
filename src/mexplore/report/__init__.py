"""``mexplore report``: a self-contained HTML page of plots of a run, made from its files
(``study.toml`` and ``journal.jsonl``) alone, so it works mid-run, after a crash, or on a
copy of the output directory on a laptop.

The run is read by :mod:`mexplore.store.run`. Modules: :mod:`.parameters` lays parameters on axes,
:mod:`.tables` computes the numbers behind the plots, :mod:`.summary` the headline numbers,
:mod:`.plots` draws, :mod:`.page` writes the HTML, :mod:`.build` puts them together.
matplotlib, pandas and scipy are imported only when a report is made.
"""

from .build import write_report
from .tables import best_so_far, sweep_table

__all__ = ["best_so_far", "sweep_table", "write_report"]
