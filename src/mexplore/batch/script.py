"""The batch script that runs one study on one site: directives, setup, launch line.

The script is plain bash that a person can read, edit and submit again. It carries every
path it needs (absolute), so it runs the same from any directory, today or after a
resubmission, and it ``cd``s to the directory ``mexplore submit`` ran in, so the study's
relative paths resolve as they did when the study was checked.

Before the walltime the run must stop, so it flushes what the workers hold on node-local
storage. The run is given its own deadline (``--stop-at`` the job's start plus its
walltime, ``--stop-before`` the site's ``stop_before``): it stops handing out tasks in time,
flushes and exits, with no signal needed, which is what PBS sites need (PALS is not
documented to pass signals on to the ranks). On Slurm, ``--signal=USR1@<s>`` also signals
every task of the job step, whichever comes first.

The script ends with its run's exit status. A run that finished the study (status 0)
cancels the jobs queued after this one when it is part of a chain (``mexplore submit
--chain``, :mod:`.chain`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..config.site import TASK_LAUNCHER, Site
from ..errors import MexploreError

SCRIPT_NAMES = {"local": "submit.sh", "pbs": "submit.pbs", "slurm": "submit.sbatch"}
RESUBMIT = {"local": "bash", "pbs": "qsub", "slurm": "sbatch"}
LOG_DIR = "logs"
SLURM_SIGNAL_MAX = 65535
ACCOUNT_PLACEHOLDER = "<ACCOUNT>"
"""Shown for the account of a dry run's script when the site names none: visible, and
refused by the scheduler if the script is submitted as it is."""
"""The largest ``@<seconds>`` that ``sbatch --signal`` accepts."""


@dataclass(frozen=True)
class Job:
    """One submission: what runs (a study, already validated), where, and how big.

    ``overrides`` are the study's ``--set`` texts, passed on to ``mexplore run``;
    ``walltime`` is in seconds, None only where the site needs none (local).
    """

    name: str
    study_file: Path
    output: Path
    workdir: Path
    python: str
    nodes: int
    walltime: float | None
    overrides: tuple[str, ...] = ()

    def ranks(self, site: Site) -> int:
        return self.nodes * site.ranks_per_node


class JobError(MexploreError):
    """The job cannot run as asked on this site (too few ranks, no walltime...)."""


def script_path(site: Site, job: Job) -> Path:
    return job.output / SCRIPT_NAMES[site.scheduler]


def render(site: Site, job: Job, mpiexec: str = "mpiexec") -> str:
    """The whole script. ``mpiexec`` fills the launcher's ``{mpiexec}`` placeholder."""
    _check(site, job)
    values = {"ranks": job.ranks(site), "nodes": job.nodes, "ranks_per_node": site.ranks_per_node,
              "gpus_per_node": site.gpus_per_node, "mpiexec": shlex.quote(mpiexec)}
    run = [job.python, "-m", "mexplore", "run", str(job.study_file), "-o", str(job.output),
           "--progress", "log"]
    for override in job.overrides:
        run += ["--set", override]
    deadline = ("" if job.walltime is None else  # bash expands job_start, set at the script's start
                f' --stop-at "@$((job_start + {int(job.walltime)}))" --stop-before {int(site.stop_before)}s')
    launch = [site.launch_command(values), " ".join(shlex.quote(part) for part in run) + deadline]
    lines = [
        "#!/bin/bash" if site.scheduler == "local" else "#!/bin/bash -l",
        *_directives(site, job),
        "",
        *_about(site, job),
        *(["job_start=$(date +%s)  # the run's deadline counts from here"] if job.walltime is not None else []),
        *([""] + list(site.setup) if site.setup else []),
        "",
        *_environment(site),
        f"cd {shlex.quote(str(job.workdir))}",
        " \\\n    ".join(launch),
        *(_chain_end(job) if site.scheduler != "local" else []),
    ]
    return "\n".join(lines) + "\n"


def _chain_end(job: Job) -> list[str]:
    """The run's exit status becomes the script's; a finished study cancels the rest of its chain."""
    python, output = shlex.quote(job.python), shlex.quote(str(job.output))
    return [
        "status=$?",
        "if [ \"$status\" -eq 0 ]; then  # the study is finished: no job of its chain (submit --chain) is needed after this one",
        f'    {python} -m mexplore.batch.chain {output} "${{SLURM_JOB_ID:-${{PBS_JOBID:-}}}}"',
        "fi",
        'exit "$status"',
    ]


def clock(seconds: float) -> str:
    """``HH:MM:SS`` (hours may pass 99), the walltime form both PBS and Slurm read."""
    total = int(-(-seconds // 1))  # whole seconds, rounded up
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _check(site: Site, job: Job) -> None:
    if job.nodes < 1:
        raise JobError(f"--nodes {job.nodes}: expected at least 1 node")
    if site.scheduler == "local" and job.nodes != 1:
        raise JobError(f"--nodes {job.nodes}: the local site runs on this machine alone; expected --nodes 1")
    if job.ranks(site) < 2:
        raise JobError(f"{job.nodes} node(s) x ranks_per_node {site.ranks_per_node} = {job.ranks(site)} rank: "
                       "expected at least 2 (a master and a worker); raise --nodes or site.ranks_per_node")
    if job.walltime is None and site.scheduler != "local":
        raise JobError(f"no walltime for site {site.name!r}: pass --walltime (e.g. --walltime 1h) "
                       "or set walltime in the site file")
    if job.walltime is not None and job.walltime <= site.stop_before:
        raise JobError(f"walltime {clock(job.walltime)} leaves the run no time: expected more than the site's "
                       f"stop_before ({clock(site.stop_before)}), the time kept at the end for flushing "
                       "(raise --walltime, or lower it with --set site.stop_before=...)")
    if site.scheduler == "slurm" and site.stop_before > SLURM_SIGNAL_MAX:
        raise JobError(f"stop_before {clock(site.stop_before)}: Slurm's --signal takes at most "
                       f"{SLURM_SIGNAL_MAX} s; expected a smaller stop_before")
    if site.scheduler != "local" and any(c.isspace() for c in str(job.output)):
        raise JobError(f"output {str(job.output)!r}: scheduler directives cannot hold a path with spaces; "
                       "expected an output directory without whitespace")


def _directives(site: Site, job: Job) -> list[str]:
    """The scheduler's lines: size, time, queue, account, job name, log file, extras."""
    if site.scheduler == "local":
        return []
    assert job.walltime is not None  # _check refuses a batch job without one
    logs = job.output / LOG_DIR
    account = ACCOUNT_PLACEHOLDER if site.account is None else site.account
    if site.scheduler == "pbs":
        options = [f"-N {job.name}", f"-l select={job.nodes}", f"-l walltime={clock(job.walltime)}",
                   *([f"-q {site.queue}"] if site.queue else []),
                   *([f"-A {account}"] if account else []),
                   "-j oe", f"-o {logs}/", *site.directives]
        return [f"#PBS {option}" for option in options]
    options = [f"--job-name={job.name}", f"--nodes={job.nodes}", f"--time={clock(job.walltime)}",
               *([f"--partition={site.queue}"] if site.queue else []),
               *([f"--qos={site.qos}"] if site.qos else []),
               *([f"--account={account}"] if account else []),
               f"--output={logs}/%x-%j.out", f"--signal=USR1@{int(site.stop_before)}", *site.directives]
    return [f"#SBATCH {option}" for option in options]


def _about(site: Site, job: Job) -> list[str]:
    """Comments for the person who opens the script: what it runs and how to go on."""
    ranks = job.ranks(site)
    stop = f"{site.stop_before:.0f} s"
    if job.walltime is None:
        before: tuple[str, ...] = ("No walltime: the run ends when the study is done (Ctrl-C stops it cleanly).",)
    else:
        before = (f"The run stops itself {stop} before the walltime (--stop-at, --stop-before below): it stops",
                  "handing out tasks, flushes the workers' outputs and exits with 142.")
    if site.scheduler == "slurm":
        before += (f"Slurm also sends SIGUSR1 to every rank {stop} before the walltime (--signal above): the",
                   "same stop, with exit status 138, whichever comes first.")
    again = f"{RESUBMIT[site.scheduler]} {shlex.quote(str(script_path(site, job)))}"
    lines = [
        f"Written by `mexplore submit`: study {job.name!r} on {job.nodes} node(s) of site {site.name!r},",
        f"{ranks} ranks: rank 0 is the master (it takes one rank slot), ranks 1-{ranks - 1} are workers.",
        *before,
        "A stopped or killed run loses no finished task; to go on where it stopped, run again:",
        f"  {again}",
    ]
    return [f"# {line}".rstrip() for line in lines if line]


def _environment(site: Site) -> list[str]:
    """What every rank reads: the node-local directory, the GPU count and the launcher of
    tasks of several ranks. The local dir is written in double quotes so a ``$USER`` in it
    expands in the job."""
    lines = []
    if site.local_dir is not None:
        lines.append(f'export MEXPLORE_LOCAL_DIR="{site.local_dir}"')
    if site.gpus_per_node:
        lines.append(f"export MEXPLORE_GPUS_PER_NODE={site.gpus_per_node}")
    if site.task_launcher is not None:
        lines.append(f"export {TASK_LAUNCHER}={shlex.quote(json.dumps(list(site.task_launcher)))}")
    return lines
