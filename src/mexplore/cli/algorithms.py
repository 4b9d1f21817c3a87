"""``mexplore algorithms``: what a study can name, one line each.

Built-ins first, then the plug-ins installed under the entry point group
``mexplore.algorithms``. Each is loaded to read its description (the first line of its
docstring), which imports no heavy library: Optuna and scipy load only when an algorithm is
built. A plug-in that fails to load is listed with its error instead of stopping the list.
"""

from __future__ import annotations

import argparse
import signal
import sys
from importlib.metadata import entry_points

from ..algorithms.registry import BUILTINS, ENTRY_POINT_GROUP, resolve


def describe(name: str) -> str:
    """The first line of the algorithm's docstring (reST quotes dropped), or why it cannot be loaded."""
    try:
        target = resolve(name)
    except Exception as exc:  # a broken plug-in: shown, not fatal
        return f"error: {exc}"
    doc = (getattr(target, "__doc__", None) or "").strip()
    return doc.splitlines()[0].replace("``", "") if doc else "(no description)"


def algorithms_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mexplore algorithms | head` ends quietly
    plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTINS}
    width = max(map(len, [*BUILTINS, *plugins]))
    for name in BUILTINS:
        print(f"{name:<{width}}  {describe(name)}")
    for name, where in sorted(plugins.items()):
        print(f"{name:<{width}}  {describe(name)} [plug-in: {where}]")
    print("\nAlso: 'package.module:Name' or 'file.py:Name' (see docs/algorithms.md).", file=sys.stderr)
    return 0
