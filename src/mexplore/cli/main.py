"""``mexplore``: the only code that reads argv. Verbs: run, submit, status, results, report,
export, algorithms, new.

Heavy modules are imported inside each verb, so ``mexplore --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mexplore",
        description="Model exploration on HPC machines: searches and sweeps under MPI.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    run = verbs.add_parser(
        "run", help="run a study (resumes if its output holds a journal)",
        description="Run STUDY. Without mpiexec around it, start N local ranks with the installed "
        "mpiexec; under `mpiexec -n N mexplore run STUDY`, use the ranks given. Rank 0 is the "
        "master, the others are workers. An output directory holding a journal is resumed.",
    )
    run.add_argument("study", help="the study file (TOML)")
    run.add_argument("-n", "--ranks", type=int, default=None,
                     help="local ranks to start, master included (default: the machine's cores)")
    run.add_argument("-o", "--output", help="output directory (overrides study.output)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study key, e.g. --set study.budget=2000 (repeatable)")
    run.add_argument("--progress", choices=["auto", "bar", "log", "off"], default="auto",
                     help="live bar on a terminal, log lines otherwise (default: auto)")
    run.add_argument("--walltime", metavar="DURATION",
                     help="stop (flush, exit 142, resumable) before this much time has passed: 2h, 1:30:00")
    run.add_argument("--stop-at", metavar="TIME",
                     help="stop before this time: 14:30, 2026-12-01T14:30, or @ and epoch seconds")
    run.add_argument("--stop-before", metavar="DURATION",
                     help="time kept for the flush before the deadline (default: a tenth of it, at most 1 min)")

    results = verbs.add_parser("results", help="print the best tasks of a run",
                               description="Print the best finished tasks of OUTPUT, read from its journal, "
                               "and why tasks failed; --failed or --status list the tasks with those statuses.")
    results.add_argument("output", help="a run's output directory")
    results.add_argument("--top", type=int, default=10, help="how many rows (default 10)")
    results.add_argument("--failed", action="store_true",
                         help="list every task that failed, timed out or was lost, with its reason")
    results.add_argument("--status", dest="statuses", action="append", default=[], metavar="S",
                         help="list every task with status S: ok, failed, timeout, pruned, cancelled, lost "
                         "(repeatable, or a comma-separated list)")

    status = verbs.add_parser(
        "status", help="how a run is going (safe on a login node, mid-run)",
        description="Show progress of the run in OUTPUT from its files: done, failed, running, "
        "best, last flush. Reads only; needs neither MPI nor the compute nodes.")
    status.add_argument("output", help="a run's output directory")

    verbs.add_parser("algorithms", help="list the algorithms a study can name",
                     description="List the built-in and installed (plug-in) algorithms, one line each.")

    submit = verbs.add_parser(
        "submit", help="write a batch script for a site and submit it (qsub/sbatch)",
        description="Write the batch script that runs STUDY on NODES nodes of SITE into the "
        "study's output directory, then submit it with the site's scheduler. Resubmitting the "
        "same study resumes it.")
    submit.add_argument("study", help="the study file (TOML)")
    submit.add_argument("--site", required=True,
                        help="a site name from site-settings/ (e.g. polaris) or a site file path")
    submit.add_argument("--nodes", type=int, required=True, help="how many nodes to ask for")
    submit.add_argument("--walltime", help="e.g. 1h, 30m, 01:00:00 (default: the site's)")
    submit.add_argument("-o", "--output", help="output directory (overrides study.output)")
    submit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study key, or a site key as site.KEY=VALUE (repeatable)")
    submit.add_argument("--dry-run", action="store_true",
                        help="write and print the script, do not submit it")
    submit.add_argument("--chain", type=int, default=1, metavar="N",
                        help="queue N jobs, each starting when the one before ends and resuming the study; "
                             "the job that finishes it cancels the rest (default 1)")

    report = verbs.add_parser(
        "report", help="write an HTML report with plots of a run",
        description="Write OUTPUT/report/index.html (self-contained) and its PNG plots: best so "
        "far, each parameter against the objective, worker use over time, the sweep curve with "
        "95%% intervals over repeats, the Pareto front.")
    report.add_argument("output", help="a run's output directory")
    report.add_argument("--to", dest="destination", help="folder to write into (default OUTPUT/report)")

    export = verbs.add_parser(
        "export", help="write a run as an Optuna journal file (for optuna-dashboard)",
        description="Write the run in OUTPUT as one study of an Optuna journal-file storage: "
        "one trial per finished task, with its parameters and their distributions, values, "
        "state and intermediate values. Open it with `optuna-dashboard FILE` or "
        "optuna.load_study. Safe mid-run: it holds the tasks finished so far.")
    export.add_argument("output", help="a run's output directory")
    export.add_argument("--optuna", required=True, metavar="FILE", help="the journal file to write")
    export.add_argument("--replace", action="store_true", help="replace FILE if it exists")

    new = verbs.add_parser(
        "new", help="scaffold a study and a model script that run as they are",
        description="Write studies/NAME.toml and its model script in model-scripts/, ready for "
        "`mexplore run studies/NAME.toml`.")
    new.add_argument("name", help="the study name (letters, digits, . _ -)")
    new.add_argument("--model", choices=["python", "command"], default="python",
                     help="a Python function or an external command (default: python)")
    new.add_argument("--algorithm", default="random", help="the algorithm to name (default: random)")
    new.add_argument("--dir", dest="directory", default=".",
                     help="the project folder to write into (default: the current one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verb: each lives in ``cli/<verb>.py`` as ``<verb>_command(args) -> int``,
    imported only when called."""
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"{__package__}.{args.verb}")
    return getattr(module, f"{args.verb}_command")(args)


if __name__ == "__main__":
    sys.exit(main())
