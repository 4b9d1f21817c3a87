"""``mexplore submit STUDY --site NAME --nodes N``: check the study, write the batch script
into its output directory, submit it (or, with ``--dry-run``, print it).

Nothing is written before the study, its algorithm and the site file have all been
checked. A dry run renders a batch site's script even without an account, with a
placeholder and a warning, since it is for looking. ``--set site.KEY=VALUE`` changes the site file for this submission (its account,
queue...); every other ``--set`` changes the study and is passed on to ``mexplore run`` in
the script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MexploreError

if TYPE_CHECKING:
    from ..batch import Job
    from ..config.site import Site

SITE_FOLDER = "site-settings"
"""Where ``--site NAME`` is looked up first, relative to the current directory."""


def submit_command(args: argparse.Namespace) -> int:
    from ..batch import LOG_DIR, script_path

    try:
        site, job, text = _prepare(args)
        if args.chain < 1 or (args.chain > 1 and site.scheduler == "local"):
            raise MexploreError(f"--chain {args.chain}: expected a number of jobs >= 1, and 1 on the local site "
                                "(it has no scheduler to queue jobs with)")
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        return 2
    script = script_path(site, job)
    (job.output / LOG_DIR).mkdir(parents=True, exist_ok=True)  # Slurm opens its log file there
    script.write_text(text)
    script.chmod(0o755)
    if args.dry_run:
        print(text, end="")
        print(f"mexplore: wrote {script} (--dry-run: not submitted)", file=sys.stderr)
        if site.scheduler != "local" and site.account is None:
            from ..batch.script import ACCOUNT_PLACEHOLDER
            from ..config.site import ACCOUNT_HINT

            print(f"mexplore: warning: site {site.name!r} names no account, so the script charges "
                  f"{ACCOUNT_PLACEHOLDER}; to submit it, {ACCOUNT_HINT}", file=sys.stderr)
        return 0
    return _hand_over(site, job, script, args.chain)


def _prepare(args: argparse.Namespace) -> tuple[Site, Job, str]:
    """Check the study (file and algorithm) and the site, and render the script; nothing is
    written until all of it passed."""
    from ..batch import SHIPPED_SITES, Job, render
    from ..config import load_study
    from ..config.site import find_site, load_site, split_overrides, walltime_option
    from ..runtime.session import check_study

    study_texts, site_texts = split_overrides(args.overrides)
    output = [f"study.output={json.dumps(os.path.abspath(args.output))}"] if args.output else []
    study = load_study(args.study, study_texts + output)
    check_study(study)
    site = load_site(find_site(args.site, [Path(SITE_FOLDER).absolute(), SHIPPED_SITES]), site_texts,
                     account_needed=not args.dry_run)  # a dry run is for looking: a placeholder will do
    walltime = site.walltime if args.walltime is None else walltime_option(args.walltime)
    job = Job(name=study.study.name, study_file=Path(os.path.abspath(args.study)),
              output=study.study.output, workdir=Path.cwd(), python=sys.executable,
              nodes=args.nodes, walltime=walltime, overrides=tuple(study_texts))
    return site, job, render(site, job, _mpiexec() if "mpiexec" in site.launcher_placeholders() else "")


def _hand_over(site: Site, job: Job, script: Path, chain: int = 1) -> int:
    """Submit the script (``chain`` times, each job after the one before); for the local
    site, become ``bash script`` (this never returns)."""
    from ..batch import chain as chains
    from ..batch import run_local, submit

    jobs: list[str] = []
    try:
        if site.scheduler == "local":
            print(f"mexplore: running {script} with bash (site {site.name!r} has no scheduler); "
                  f"`bash {script}` runs it again and resumes", file=sys.stderr)
            run_local(script)
        for _ in range(chain):
            jobs.append(submit(script, site.scheduler, jobs[-1] if jobs else None))
            if chain > 1:
                chains.record(job.output, site.scheduler, jobs)  # as it grows: a job may start meanwhile
    except MexploreError as error:
        print(f"mexplore: error: {error}", file=sys.stderr)
        if jobs:
            print(f"mexplore: jobs {', '.join(jobs)} were submitted before the error", file=sys.stderr)
        return 1
    if chain > 1:
        print(f"mexplore: submitted a chain of {chain} jobs: {', '.join(jobs)} (script {script}); "
              "each starts when the one before ends, and the one that finishes the study cancels the rest")
    else:
        print(f"mexplore: submitted job {jobs[0]} (script {script})")
    print(f"mexplore: watch it with `mexplore status {job.output}`; submit the script again to resume")
    return 0


def _mpiexec() -> str:
    """The launcher's ``{mpiexec}``: the one beside this Python, else the first on PATH."""
    from ..batch import JobError
    from ..comms.launcher import find_mpiexec

    try:
        return find_mpiexec()
    except FileNotFoundError as error:
        raise JobError(f"the site's launcher uses {{mpiexec}}, but {error}") from None
