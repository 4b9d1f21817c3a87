"""``mexplore new NAME``: scaffold a study and its model, then say how to run them."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ..errors import MexploreError


def new_command(args: argparse.Namespace) -> int:
    from ..scaffold import fit_for, scaffold

    try:
        written = scaffold(Path(args.directory), args.name, args.model, args.algorithm)
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    model = "a Python function evaluate(params, ctx)" if args.model == "python" else "a program run once per task"
    print(f"wrote {written.root / written.study}: the study, for algorithm {args.algorithm}")
    print(f"wrote {written.root / written.model}: the model, {model}")
    note = fit_for(args.algorithm).note
    if note:
        print(f"note: {note}")
    print("next, run it and list its best tasks:")
    if written.root.resolve() != Path.cwd():
        print(f"  cd {shlex.quote(os.fspath(written.root))}")
    print(f"  mexplore run {written.study}")
    print(f"  mexplore results runs/{args.name}")
    return 0
