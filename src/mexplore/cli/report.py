"""``mexplore report OUTPUT [--to FOLDER]``: write FOLDER/index.html and its PNG plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def report_command(args: argparse.Namespace) -> int:
    from ..report import write_report
    from ..store.run import NoRunError, load_run

    output = Path(args.output)
    try:
        run = load_run(output)
    except NoRunError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    destination = Path(args.destination) if args.destination else output / "report"
    page, plots = write_report(run, destination)
    drawn = [plot.name for plot in plots if plot.png is not None]
    left_out = [f"{plot.name} ({plot.skipped})" for plot in plots if plot.png is None]
    print(f"mexplore: report in {page} ({len(drawn)} plot(s): {', '.join(drawn) or 'none'})")
    if left_out:
        print(f"mexplore: left out: {'; '.join(left_out)}")
    return 0
