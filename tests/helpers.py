"""Shared test helpers: spaces, and running the mexplore CLI as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from mexplore.space import Categorical, Float, Grid, Int, Space

REPO = Path(__file__).resolve().parent.parent


def small_space() -> Space:
    return Space(
        parameters={
            "x": Float(-1.0, 1.0),
            "lr": Float(1e-4, 1e-1, log=True),
            "units": Int(16, 64, step=16),
            "act": Categorical(("relu", "tanh")),
            "noise": Grid((0.0, 0.1)),
        },
        constants={"epochs": 3},
    )


def run_cli(*args: str, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m mexplore ARGS`` in ``cwd``, with a timeout so a hang fails the test."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_", "HYDRA_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mexplore", *args], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=timeout,
    )


def write_study(folder: Path, body: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def journal(output: Path) -> list[dict]:
    lines = (output / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def start_run(path: Path, folder: Path, until_finished: int, env: dict | None = None) -> subprocess.Popen:
    """`mexplore run -n 3` in its own process group (as a batch job is); returns once
    ``folder/out``'s journal holds ``until_finished`` tasks, so the caller can signal or
    kill the whole job midway."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PMI_")}
    environment.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "mexplore", "run", str(path), "-n", "3", "--progress", "off"],
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    journal_path = folder / "out" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while not (journal_path.exists() and len(journal_path.read_text().splitlines()) >= until_finished):
        assert time.monotonic() < deadline and process.poll() is None, "the run made no progress"
        time.sleep(0.01)
    return process


def killed_then_resumed(path: Path, folder: Path, kill_after: int, env: dict | None = None,
                        timeout: float = 240) -> subprocess.CompletedProcess:
    """`mexplore run -n 3` of ``path`` SIGKILLed as a whole job once ``kill_after`` tasks are
    journaled, every process of it gone, then the same command again (its outcome returned)."""
    import signal

    job = start_run(path, folder, until_finished=kill_after, env=env)
    try:
        os.killpg(job.pid, signal.SIGKILL)
    except ProcessLookupError:  # on a busy machine the job may have finished meanwhile: the resume still runs
        pass
    job.wait(timeout=60)
    wait_until(lambda: not processes_of(folder), "every process of the killed job is gone", timeout=60)
    return run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=folder, env=env, timeout=timeout)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120,
               process: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` until it holds, instead of sleeping a fixed time and hoping; fails
    with ``what`` once ``timeout`` (a generous ceiling, for a hang) passes, or as soon as
    ``process`` (if given) has ended, since then nothing will change any more."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"still not {what} after {timeout:g} s"
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a zombie (ended, not yet collected) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def processes_of(folder: Path) -> list[int]:
    """Pids of live processes whose command line names ``folder`` (mpiexec and the ranks
    all carry the study file's path); zombies have an empty command line and do not count."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(folder).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # it ended while we looked
                pass
    return found
