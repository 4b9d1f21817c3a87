"""Handing a written batch script to the site's scheduler, or to bash for the local site.

``qsub`` and ``sbatch`` run as programs (argv list, no shell) from the directory
``mexplore submit`` runs in; what they print is the job id. The local site has no
scheduler: mexplore *becomes* ``bash script`` (exec), so the run is in the foreground,
Ctrl-C reaches it as it would reach the script run by hand, and its exit status is the
command's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from ..errors import MexploreError
from .chain import after

SUBMITTERS = {"pbs": ("qsub",), "slurm": ("sbatch", "--parsable")}
"""The command line that submits a script, per scheduler (the script's path comes last).
``--parsable`` makes sbatch print the bare id (``12345`` or ``12345;cluster``)."""

SUBMIT_TIMEOUT = 120.0


class SubmitError(MexploreError):
    """The scheduler's command is missing, or it refused the job."""


def submit(script: Path, scheduler: str, after_job: str | None = None) -> str:
    """Submit ``script`` with the scheduler's command; return the job id it printed. With
    ``after_job``, the job starts once that one has ended (a link of a chain)."""
    command, *options = SUBMITTERS[scheduler]
    if after_job is not None:
        options += after(scheduler, after_job)
    found = shutil.which(command)
    if found is None:
        raise SubmitError(f"{command} not found on PATH: submit from a login node of the site (where "
                          f"`{command}` works), or use --dry-run to only write the script ({script})")
    try:
        done = subprocess.run([found, *options, str(script)], capture_output=True, text=True,
                              timeout=SUBMIT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise SubmitError(f"{command} did not answer within {SUBMIT_TIMEOUT:.0f} s; the job may or may not "
                          f"have been submitted: check the queue before submitting {script} again") from None
    printed = done.stdout.strip()
    if done.returncode != 0 or not printed:
        said = (done.stderr.strip() or printed or "nothing").splitlines()[-1]
        raise SubmitError(f"{command} refused the job (exit status {done.returncode}): {said}")
    return printed.splitlines()[-1].split(";")[0].strip()


def run_local(script: Path) -> NoReturn:
    """Replace this process with ``bash script`` (see the module docstring for why exec)."""
    bash = shutil.which("bash")
    if bash is None:
        raise SubmitError(f"bash not found on PATH: the local site runs {script} with bash")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(bash, [bash, str(script)])
