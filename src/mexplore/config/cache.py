"""``[cache]``: what happens to the outputs models save, and to points already evaluated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._schema import CacheTable, Problem
from .model import seconds

_TOP = re.compile(r"top:([1-9][0-9]*)")


@dataclass(frozen=True)
class CacheSection:
    """``keep`` is ``"all"``, ``"none"`` or ``"top:K"``: whose saved outputs reach the output
    directory. ``reuse`` gives a point already evaluated (this run, or the run it resumes)
    the recorded result instead of running it again. ``flush_every`` (seconds) adds flushes
    during the run to the one at the end."""

    keep: str = "all"
    reuse: bool = False
    flush_every: float | None = None

    @property
    def keep_top(self) -> int | None:
        """K for ``top:K``; 0 for ``none``; None for ``all``."""
        if self.keep == "all":
            return None
        if self.keep == "none":
            return 0
        return int(self.keep[4:])

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {"keep": self.keep, "reuse": self.reuse}
        if self.flush_every is not None:
            table["flush_every"] = self.flush_every
        return table


def resolve_cache(table: CacheTable) -> CacheSection:
    keep = table.keep.strip()
    if keep not in ("all", "none") and not _TOP.fullmatch(keep):
        raise Problem(("cache", "keep"), table.keep, '"all", "none" or "top:K" with K an integer >= 1')
    return CacheSection(keep, table.reuse, seconds(table.flush_every, ("cache", "flush_every")))
