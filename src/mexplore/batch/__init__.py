"""Batch jobs: render the script that runs a study on a site, and submit it.

``config.site`` reads and validates site files; this package turns a site and a job into a
bash script (:func:`render`) and hands it to ``qsub``/``sbatch``, or to bash for the local
site (:func:`submit`, :func:`run_local`). ``SHIPPED_SITES`` is the folder of site files
installed with mexplore: a link to the repository's ``site-settings/``, so the files exist
once in git and are copied into the wheel as package data.
"""

from pathlib import Path

from .script import LOG_DIR, SCRIPT_NAMES, Job, JobError, clock, render, script_path
from .submit import SubmitError, run_local, submit

SHIPPED_SITES = Path(__file__).resolve().parent / "site_settings"

__all__ = [
    "LOG_DIR",
    "SCRIPT_NAMES",
    "SHIPPED_SITES",
    "Job",
    "JobError",
    "SubmitError",
    "clock",
    "render",
    "run_local",
    "script_path",
    "submit",
]
