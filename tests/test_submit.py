"""Site files and ``mexplore submit``: the scripts, the scheduler hand-off, the errors.

The batch script of every shipped site is compared with a golden file,
``tests/golden/submit/<site>.<ext>``, written by ``mexplore submit --dry-run`` for a fixed
study, with the machine's paths replaced by placeholders (``/project`` for the test's
folder, ``/venv/bin`` for the folder of the Python running the tests). After an intended
change to the scripts, regenerate the golden files and review their diff:

    MEXPLORE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_submit.py

``qsub`` and ``sbatch`` are stand-ins written into the test's folder and put first on
PATH: they record their arguments and print a job id, as the real ones do. The local site
is run for real (mpiexec from the mpich wheel, real ranks, a real walltime stop).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO, journal, write_study

from mexplore.batch import SHIPPED_SITES, clock
from mexplore.cli.main import main
from mexplore.config.site import known_sites, load_site, walltime_option
from mexplore.errors import StudyFileError

GOLDEN = REPO / "tests" / "golden" / "submit"
SITES = {"local": "sh", "polaris": "pbs", "aurora": "pbs", "frontier": "sbatch", "perlmutter": "sbatch"}
MEXPLORE = Path(sys.executable).parent / "mexplore"

MODEL = """\
import time

def wait(params, ctx):
    time.sleep(params["seconds"])
    return params["x"] ** 2
"""

STUDY = """\
[study]
name = "golden"
budget = 8
output = "out"

[model]
python = "model.py:wait"

[algorithm]
name = "random"
seed = 3

[space]
x = { type = "float", low = -1.0, high = 1.0 }
seconds = 0.0
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a small study, as a user's project folder would be."""
    (tmp_path / "model.py").write_text(MODEL)
    write_study(tmp_path, STUDY)
    return tmp_path


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def dry_run(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``mexplore submit study.toml ARGS`` in ``project``, in this process: for the calls
    that submit nothing (``--dry-run``, or an error before), a second faster than a new
    interpreter."""
    monkeypatch.chdir(project)

    def call(*args: str) -> Outcome:
        code = main(["submit", "study.toml", *args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return call


def submit(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``.venv/bin/mexplore submit study.toml ARGS`` in ``project``, as a new process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_", "HYDRA_"))}
    environment.update(env or {})
    return subprocess.run([str(MEXPLORE), "submit", "study.toml", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


def fake_command(project: Path, name: str, prints: str, status: int = 0) -> dict:
    """A stand-in ``name`` on PATH that records its arguments in ``<name>.args`` (one per
    line) and prints ``prints``; returns the environment that puts it first on PATH."""
    folder = project / "bin"
    folder.mkdir(exist_ok=True)
    command = folder / name
    command.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{project / name}.args"\n'
                       f'echo "{prints}"\nexit {status}\n')
    command.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def normalized(text: str, project: Path) -> str:
    """The script with this machine's paths replaced: the project folder, and the folder of
    the Python running mexplore (its name, python or python3.11, varies with the venv)."""
    text = text.replace(os.path.realpath(project), "/project").replace(str(project), "/project")
    bin_folder = re.escape(str(Path(sys.executable).parent))
    text = re.sub(bin_folder + r"/python[0-9.]*(?=\s)", "/venv/bin/python", text)
    return re.sub(bin_folder + "/", "/venv/bin/", text)


# --------------------------------------------------------------------------- the scripts


@pytest.mark.parametrize("site", SITES)
def test_each_shipped_site_writes_its_golden_script_and_bash_can_parse_it(project: Path, dry_run, site: str) -> None:
    args = ["--site", site, "--nodes", "1" if site == "local" else "2", "--dry-run", "--set", "study.budget=10"]
    if site != "local":
        args += ["--set", "site.account=PROJECT"]
    done = dry_run(*args)
    assert done.returncode == 0, done.stderr
    script = project / "out" / f"submit.{SITES[site]}"
    assert done.stdout == script.read_text()
    assert f"wrote {script}" in done.stderr
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    golden = GOLDEN / f"{site}.{SITES[site]}"
    if os.environ.get("MEXPLORE_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(normalized(done.stdout, project))
    assert normalized(done.stdout, project) == golden.read_text()


def test_every_shipped_site_file_is_in_the_repository_folder_and_loads() -> None:
    assert known_sites([SHIPPED_SITES]) == sorted(SITES)
    assert known_sites([REPO / "site-settings"]) == sorted(SITES)
    for name in SITES:
        site = load_site(SHIPPED_SITES / f"{name}.toml", [] if name == "local" else ["site.account=P"])
        assert site.name == name and site.ranks_per_node >= 1


def test_a_site_file_in_the_current_folder_wins_over_the_shipped_one(project: Path, dry_run) -> None:
    mine = (SHIPPED_SITES / "polaris.toml").read_text().replace('queue = "debug"', 'queue = "prod"')
    (project / "site-settings").mkdir()
    (project / "site-settings" / "polaris.toml").write_text(mine + '\naccount = "MINE"\n')
    done = dry_run("--site", "polaris", "--nodes", "10", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "#PBS -q prod\n" in done.stdout and "#PBS -A MINE\n" in done.stdout


# --------------------------------------------------------------------------- submitting


def test_qsub_gets_the_script_and_mexplore_prints_its_job_id(project: Path) -> None:
    env = fake_command(project, "qsub", "4242.polaris-pbs-01")
    done = submit(project, "--site", "polaris", "--nodes", "2", "--walltime", "30m",
                  "--set", "site.account=PROJ", env=env)
    script = project / "out" / "submit.pbs"
    assert done.returncode == 0, done.stderr
    assert (project / "qsub.args").read_text().splitlines() == [str(script)]
    assert f"submitted job 4242.polaris-pbs-01 (script {script})" in done.stdout
    assert f"mexplore status {project / 'out'}" in done.stdout
    text = script.read_text()
    assert "#PBS -A PROJ\n#PBS -j oe\n" in text and "#PBS -l walltime=00:30:00\n" in text
    assert '--stop-at "@$((job_start + 1800))" --stop-before 300s\n' in text and "job_start=$(date +%s)" in text
    assert (project / "out" / "logs").is_dir()  # where PBS writes the job's log


def test_sbatch_is_asked_for_a_parsable_id(project: Path) -> None:
    env = fake_command(project, "sbatch", "777;frontier")
    done = submit(project, "--site", "frontier", "--nodes", "3", "--set", "site.account=PRJ123",
                  "--set", "site.qos=debug", env=env)
    script = project / "out" / "submit.sbatch"
    assert done.returncode == 0, done.stderr
    assert (project / "sbatch.args").read_text().splitlines() == ["--parsable", str(script)]
    assert "submitted job 777 (script" in done.stdout
    text = script.read_text()
    assert "#SBATCH --qos=debug\n" in text and "#SBATCH --signal=USR1@300\n" in text
    assert "srun -N 3 -n 24 --ntasks-per-node=8" in text


def test_a_missing_scheduler_command_is_named_with_the_way_out(project: Path) -> None:
    done = submit(project, "--site", "perlmutter", "--nodes", "1", "--set", "site.account=m1",
                  env={"PATH": str(project / "nowhere")})
    assert done.returncode == 1
    assert "sbatch not found on PATH" in done.stderr and "--dry-run" in done.stderr


def test_a_refused_job_reports_what_the_scheduler_said(project: Path) -> None:
    env = fake_command(project, "qsub", "qsub: Unknown queue", status=3)
    done = submit(project, "--site", "polaris", "--nodes", "1", "--set", "site.account=P", env=env)
    assert done.returncode == 1
    assert "qsub refused the job (exit status 3): qsub: Unknown queue" in done.stderr


# --------------------------------------------------------------------------- errors


def test_an_unknown_site_lists_the_known_ones(dry_run) -> None:
    done = dry_run("--site", "polarls", "--nodes", "1")
    assert done.returncode == 2
    assert "--site: site = 'polarls': expected one of aurora, frontier, local, perlmutter, polaris" in done.stderr
    assert "did you mean 'polaris'?" in done.stderr


def test_a_batch_site_needs_an_account_to_submit_and_says_how_to_give_it(project: Path) -> None:
    env = fake_command(project, "sbatch", "777;frontier")
    done = submit(project, "--site", "frontier", "--nodes", "1", env=env)
    assert done.returncode == 2
    assert "frontier.toml: account = (missing)" in done.stderr and "--set site.account=NAME" in done.stderr
    assert not (project / "out").exists() and not (project / "sbatch.args").exists()


@pytest.mark.parametrize("site,line", [("polaris", "#PBS -A <ACCOUNT>\n"), ("frontier", "#SBATCH --account=<ACCOUNT>\n")])
def test_a_dry_run_without_an_account_shows_a_placeholder_and_warns(project: Path, dry_run, site, line) -> None:
    done = dry_run("--site", site, "--nodes", "1", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert line in done.stdout
    assert (f"mexplore: warning: site {site!r} names no account, so the script charges <ACCOUNT>; to submit "
            "it, add --set site.account=NAME") in done.stderr
    given = dry_run("--site", site, "--nodes", "1", "--dry-run", "--set", "site.account=P")
    assert "<ACCOUNT>" not in given.stdout and "warning" not in given.stderr


def test_a_bad_study_writes_no_script(project: Path, dry_run) -> None:
    write_study(project, STUDY.replace("budget = 8", 'budget = "eight"'))
    done = dry_run("--site", "polaris", "--nodes", "1", "--set", "site.account=P", "--dry-run")
    assert done.returncode == 2
    assert "study.toml: study.budget = 'eight': expected an integer >= 1" in done.stderr
    assert not (project / "out").exists()


def test_a_bad_site_file_names_the_file_and_the_key(project: Path, dry_run) -> None:
    site = project / "mine.toml"
    site.write_text('scheduler = "pbs"\nlauncher = "mpiexec -n {ranks}"\nranks_per_node = "four"\naccount = "P"\n')
    done = dry_run("--site", str(site), "--nodes", "1", "--dry-run")
    assert done.returncode == 2
    assert f"{site}: ranks_per_node = 'four': expected an integer >= 1" in done.stderr
    assert not (project / "out").exists()


@pytest.mark.parametrize(("line", "message"), [
    ("rank_per_node = 4", ("rank_per_node = 4: expected one of the keys scheduler, launcher, "
                           "ranks_per_node, gpus_per_node, local_dir, queue, qos, account, walltime, "
                           "stop_before, directives, setup, task_launcher (did you mean 'ranks_per_node'?)")),
    ('gpus_per_node = "4"', "gpus_per_node = '4': expected an integer >= 0"),
    ('setup = "module load x"', "setup = 'module load x': expected a list of shell lines"),
    ('walltime = "1 hour"', "walltime = '1 hour': expected a duration such as"),
    ('launcher = "mpiexec -n {rank}"', ("launcher = 'mpiexec -n {rank}': expected placeholders among "
                                        "{ranks}, {nodes}, {ranks_per_node}, {gpus_per_node}, {mpiexec} "
                                        "({rank} is none of them")),
    ('qos = "debug"', "qos = 'debug': expected no qos for scheduler = 'pbs'"),
    ('task_launcher = ["srun", "-n", "{rank}"]', ("task_launcher.2 = '{rank}': expected placeholders among "
                                                  "{ranks}, {nodes}, {hosts}, {ranks_per_node}, {hostfile}, {mpiexec}")),
    ("task_launcher = []", "task_launcher = []: expected a non-empty list of strings"),
])
def test_site_file_errors_name_the_file_key_and_expectation(tmp_path: Path, line: str, message: str) -> None:
    lines = {"scheduler": '"pbs"', "launcher": '"mpiexec -n {ranks}"', "ranks_per_node": "4", "account": '"P"'}
    key = line.split("=")[0].strip()
    body = "\n".join([f"{k} = {v}" for k, v in lines.items() if k != key] + [line])
    path = tmp_path / "bad.toml"
    path.write_text(body + "\n")
    with pytest.raises(StudyFileError) as error:
        load_site(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_the_task_launcher_reaches_the_run_through_the_batch_script(project: Path, dry_run) -> None:
    from mexplore.runtime.session import task_launcher

    line = '["srun", "--exact", "--overlap", "-n", "{ranks}", "--nodelist", "{hosts}", "--label"]'
    site = project / "site-settings" / "cluster.toml"
    site.parent.mkdir()
    shipped = (SHIPPED_SITES / "polaris.toml").read_text().splitlines()
    site.write_text("".join(f"{text}\n" for text in shipped if not text.startswith("task_launcher")) +
                    f"task_launcher = {line}\n")
    done = dry_run("--site", "cluster", "--nodes", "1", "--set", "site.account=P", "--dry-run")
    assert done.returncode == 0, done.stderr
    [export] = [text for text in done.stdout.splitlines() if "MEXPLORE_TASK_LAUNCHER=" in text]
    value = subprocess.run(["bash", "-c", f'{export}\nprintf %s "$MEXPLORE_TASK_LAUNCHER"'],
                           capture_output=True, text=True, check=True).stdout
    os.environ["MEXPLORE_TASK_LAUNCHER"] = value
    try:
        assert task_launcher(None) == ("srun", "--exact", "--overlap", "-n", "{ranks}", "--nodelist", "{hosts}",
                                       "--label")
        assert task_launcher(("mpiexec",)) == ("mpiexec",), "the study's own launcher wins"
    finally:
        del os.environ["MEXPLORE_TASK_LAUNCHER"]


def test_an_unsupported_scheduler_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "summit.toml"
    path.write_text('scheduler = "lsf"\nlauncher = "jsrun"\nranks_per_node = 6\naccount = "P"\n')
    with pytest.raises(StudyFileError, match=r"scheduler = 'lsf': expected one of 'local', 'pbs', "
                                             r"'slurm' \(lsf is not supported yet\)"):
        load_site(path)


def test_a_site_override_names_the_set_that_broke_it(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError) as error:
        load_site(SHIPPED_SITES / "polaris.toml", ["site.account=P", "site.ranks_per_node=0"])
    expected = "polaris.toml (--set site.ranks_per_node=0): ranks_per_node = 0: expected an integer >= 1"
    assert expected in str(error.value)


# --------------------------------------------------------------------------- walltime


@pytest.mark.parametrize(("text", "shown"), [
    ("1h", "01:00:00"), ("30m", "00:30:00"), ("1h30m", "01:30:00"), ("90m", "01:30:00"),
    ("01:00:00", "01:00:00"), ("2:05:07", "02:05:07"), ("36:00:00", "36:00:00"), ("45s", "00:00:45"),
    ("0.5h", "00:30:00"), ("100h", "100:00:00"),
])
def test_walltime_formats_become_hours_minutes_seconds(text: str, shown: str) -> None:
    assert clock(walltime_option(text)) == shown


@pytest.mark.parametrize("text", ["1 hour", "3600", "1:00", "1:60:00", "0:00:00", "", "-1h"])
def test_a_bad_walltime_names_the_option(text: str) -> None:
    with pytest.raises(StudyFileError, match=f"^--walltime: walltime = {text!r}: expected a duration"):
        walltime_option(text)


def test_a_walltime_shorter_than_the_flush_margin_is_refused(dry_run) -> None:
    done = dry_run("--site", "polaris", "--nodes", "1", "--walltime", "4m",
                  "--set", "site.account=P", "--dry-run")
    assert done.returncode == 2
    assert "walltime 00:04:00 leaves the run no time" in done.stderr and "stop_before (00:05:00)" in done.stderr


# --------------------------------------------------------------------------- the local site, for real


@pytest.mark.mpi
def test_local_script_stops_before_its_walltime_and_a_resubmission_finishes(project: Path) -> None:
    write_study(project, STUDY.replace("budget = 8", "budget = 10").replace("seconds = 0.0", "seconds = 1.0"))
    # Stopped by its own deadline 5 s after the script starts (walltime 7 s, stop_before 2 s):
    # 2 workers cannot do ten one-second tasks in that time.
    stopped = submit(project, "--site", "local", "--nodes", "1", "--walltime", "7s",
                     "--set", "site.stop_before=2s", "--set", "site.ranks_per_node=3")
    assert stopped.returncode == 142, stopped.stderr
    assert "stopped at its deadline (--walltime or --stop-at) after flushing" in stopped.stderr
    first = journal(project / "out") if (project / "out" / "journal.jsonl").exists() else []
    assert len(first) < 10

    rewritten = submit(project, "--site", "local", "--nodes", "1", "--walltime", "2m",
                       "--set", "site.stop_before=2s", "--set", "site.ranks_per_node=3", "--dry-run")
    assert rewritten.returncode == 0, rewritten.stderr
    again = subprocess.run(["bash", str(project / "out" / "submit.sh")], cwd="/", capture_output=True,
                           text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    records = journal(project / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == 10 and len(set(ids)) == 10  # ids skip at a resume, never repeat
    assert {r["status"] for r in records} == {"ok"}
    assert records[:len(first)] == first  # the journal is only appended to


# --------------------------------------------------------------------------- PBS directives

PBS_RESOURCES = {
    "select": r"\d+(:[a-z_]+=[^:\s]+)*",
    "walltime": r"\d+:[0-5]\d:[0-5]\d",
    "place": r"(scatter|pack|free|vscatter)(:(excl|shared|exclhost|group=\w+))*",
    "filesystems": r"[a-z]+(:[a-z]+)*",
}
PBS_OPTIONS = {
    "-N": r"[A-Za-z][^\s@]{0,235}",  # a job name: no whitespace or @, at most 236 characters
    "-q": r"[A-Za-z0-9_.-]+",
    "-A": r"\S+",
    "-j": r"oe|eo|n",
    "-k": r"[oedn]{1,3}",
    "-o": r"/\S*",
    "-l": "(" + "|".join(f"{name}={value}" for name, value in PBS_RESOURCES.items()) + ")",
}
"""The ``qsub`` options our PBS scripts may carry (PBS Professional's Reference Guide, qsub),
each with the shape of a well-formed value; ``-l`` lists the resources the shipped sites use."""


def pbs_directive_problem(line: str) -> str | None:
    """Why a ``#PBS`` line is not a known option with a well-formed value, or None."""
    option, _, value = line.removeprefix("#PBS ").partition(" ")
    if option not in PBS_OPTIONS:
        return f"unknown option {option!r}"
    if not re.fullmatch(PBS_OPTIONS[option], value):
        return f"{option} {value!r} is not {PBS_OPTIONS[option]}"
    return None


@pytest.mark.parametrize("site", [name for name, ext in SITES.items() if ext == "pbs"])
def test_each_pbs_directive_of_a_shipped_site_is_a_known_option_with_a_well_formed_value(
        project: Path, dry_run, site: str) -> None:
    done = dry_run("--site", site, "--nodes", "2", "--walltime", "1h30m", "--set", "site.account=PROJECT",
                   "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("#PBS")]
    assert len(lines) >= 7
    assert {line: pbs_directive_problem(line) for line in lines} == dict.fromkeys(lines)


@pytest.mark.parametrize(("line", "problem"), [
    ("#PBS -l walltime=1:30", "-l 'walltime=1:30' is not"),
    ("#PBS -l selct=2", "-l 'selct=2' is not"),
    ("#PBS -l place=scattered", "-l 'place=scattered' is not"),
    ("#PBS -j both", "-j 'both' is not"),
    ("#PBS -N my job", "-N 'my job' is not"),
    ("#PBS --nodes=2", "unknown option '--nodes=2'"),
])
def test_the_pbs_directive_checker_refuses_malformed_lines(line: str, problem: str) -> None:
    assert (pbs_directive_problem(line) or "").startswith(problem)
