"""The README works as written: a new user's first hour, replayed.

The test copies the repository as a fresh clone would have it (tracked files, plus files
not yet committed that git does not ignore; no ``.venv``, no ``runs/``), then runs the
commands of README.md's ``bash`` blocks one by one, in the order shown, in a shell whose
PATH holds no virtual environment, as a new user's would. The commands are read from the
README, not copied here, so a README change that breaks a command breaks this test.

Each command must exit 0; many have a check of what they leave (a journal of the right
length, a report, a script). ``source`` and ``cd`` lines carry over to the commands after
them, as in the user's shell. A few commands cannot run here and are skipped or changed,
each with its reason in :data:`SKIPPED` and :data:`CHANGED`.

The two ``pip install`` lines fill a fresh venv (about 45 s on a 2-core machine); the
whole test takes about two minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import REPO, journal

pytestmark = pytest.mark.mpi

SKIPPED = {
    r"^(pip (un)?install|module load|MPICC=|srun )": "a cluster's step (its MPI module, its launcher), "
    "shown for readers on a cluster; this machine has no site MPI to build against",
}
"""Commands not run, by a pattern of their text, with why."""

CHANGED = {
    r"\.venv/bin/python -m pytest$": (
        "-m pytest", "-m pytest --collect-only -q",
        ("the whole suite is minutes long and holds this test: collecting it shows the fresh venv "
         "has what the suite needs")),
    r"^mpiexec -n 64 ": (
        "-n 64", "-n 3", "64 ranks is for a batch job; 3 is 1 master and 2 workers on a small machine"),
}
"""Commands run with one substitution, by a pattern of their text: (old, new, why)."""


def readme_commands() -> list[str]:
    """Every line of the README's ``bash`` blocks, in order, without its trailing comment."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.DOTALL | re.MULTILINE)
    lines = (line for block in blocks for line in block.splitlines())
    return [command for line in lines if (command := re.sub(r"\s+#\s.*$", "", line).strip())]


def fresh_clone(destination: Path) -> Path:
    """The repository's files as a clone of the working tree would hold them."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout
    for name in sorted(set(filter(None, listed.split("\0")))):
        source, target = REPO / name, destination / name
        if source.is_symlink() or source.exists():  # a file deleted but not yet committed is gone
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return destination


def new_users_environment() -> dict[str, str]:
    """This environment without any virtual environment and without an MPI job's variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith(("PMI_", "MPI_", "HYDRA_"))}
    env["PATH"] = os.pathsep.join(part for part in env["PATH"].split(os.pathsep)
                                  if not (Path(part) / "activate").exists())
    # pip then skips compiling every installed module to bytecode (its --no-compile; pip
    # reads its negative options' variables this way round). Python compiles what the
    # commands import instead: the same installs, about 25 s less of the suite's CPU.
    env["PIP_NO_COMPILE"] = "0"
    return env


def as_run(command: str) -> str | None:
    """The command as this test runs it: None when skipped, else with its substitution."""
    if any(re.search(pattern, command) for pattern in SKIPPED):
        return None
    for pattern, (old, new, _) in CHANGED.items():
        if re.search(pattern, command):
            return command.replace(old, new)
    return command


Check = Callable[[Path, subprocess.CompletedProcess], None]


def journal_holds(tasks: int) -> Check:
    def check(clone: Path, done: subprocess.CompletedProcess) -> None:
        records = journal(clone / "runs" / "quickstart")
        assert len(records) == tasks and len({r["id"] for r in records}) == tasks

    return check


def leaves(relative: str) -> Check:
    def check(clone: Path, done: subprocess.CompletedProcess) -> None:
        assert (clone / relative).is_file(), f"no {relative}:\n{done.stderr[-2000:]}"

    return check


def collects_the_suite(clone: Path, done: subprocess.CompletedProcess) -> None:
    assert re.search(r"^\d+ tests collected", done.stdout, flags=re.MULTILINE), done.stdout[-2000:]


def lists_the_best(clone: Path, done: subprocess.CompletedProcess) -> None:
    assert "loss" in done.stdout, done.stdout


def shows_a_placeholder_account(clone: Path, done: subprocess.CompletedProcess) -> None:
    assert "#PBS -A <ACCOUNT>\n" in done.stdout and "#PBS -l select=4\n" in done.stdout
    assert "names no account" in done.stderr
    assert (clone / "runs" / "mlp-hpo" / "submit.pbs").read_text() == done.stdout


CHECKS: dict[str, Check] = {
    r"pip install \. && \.venv/bin/mexplore run studies/quickstart\.toml$": journal_holds(60),
    r"pytest --collect-only": collects_the_suite,
    r"^mexplore run studies/quickstart\.toml( -n 4)?$": journal_holds(60),  # resumed: all 60 were done
    r"^mpiexec -n \d+ mexplore run studies/quickstart\.toml$": journal_holds(60),
    r"quickstart\.toml --set study\.budget=500$": journal_holds(500),
    r"^mexplore results runs/quickstart --top 5$": lists_the_best,
    r"^mexplore report runs/quickstart$": leaves("runs/quickstart/report/index.html"),
    r"^mexplore run studies/mlp-noise\.toml": leaves("runs/mlp-noise/results.csv"),
    r"^mexplore submit .* --dry-run$": shows_a_placeholder_account,
    r"^mexplore new mystudy --model command$": leaves("studies/mystudy.toml"),
}
"""What a command must leave, besides exiting 0, by a pattern of the command as run."""


def test_every_pattern_above_finds_its_readme_command():
    """A pattern that matches no README command has lost its command, and its check with it."""
    commands = readme_commands()
    ran = [command for command in map(as_run, commands) if command is not None]
    for pattern in [*SKIPPED, *CHANGED]:
        assert any(re.search(pattern, command) for command in commands), f"no README command matches {pattern!r}"
    for pattern in CHECKS:
        assert any(re.search(pattern, command) for command in ran), f"no README command matches {pattern!r}"


@pytest.mark.slow
def test_every_readme_command_runs_as_written_on_a_fresh_clone(tmp_path: Path):
    clone, env, carried = fresh_clone(tmp_path / "mexplore"), new_users_environment(), []
    for command in filter(None, map(as_run, readme_commands())):
        if command.startswith(("source ", "cd ")):  # the user's shell keeps these
            carried.append(command)
            continue
        done = subprocess.run(["bash", "-c", "\n".join([*carried, command])], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr[-3000:]}"
        for pattern, check in CHECKS.items():
            if re.search(pattern, command):
                check(clone, done)
