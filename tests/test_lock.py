"""The output-directory lock: one run per output, refusals that name the holder, a lock freed
by the death of its holder (flock) or taken over once its holder is gone (heartbeat)."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import journal, run_cli, wait_until, write_study

from mexplore.config import load_study
from mexplore.runtime.entry import OUTPUT_IN_USE, run_inproc
from mexplore.store import lock
from mexplore.store.lock import (
    LOCK_NAME,
    STALE_AFTER,
    OutputInUse,
    OutputLock,
    read_holder,
)

HOLDER = """
import sys, time
from pathlib import Path
from mexplore.store.lock import OutputInUse, OutputLock
output, mode, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]) if len(sys.argv) > 3 else None
if go is not None:
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
try:
    held = OutputLock.acquire(output, mode=mode)
except OutputInUse as error:
    print("refused", error, flush=True)
    sys.exit(3)
print("held", held.mode, flush=True)
sys.stdin.readline()  # hold it until the test closes stdin
held.release()
"""


def holder(output: Path, mode: str = "flock", go: Path | None = None) -> subprocess.Popen:
    """A process that takes ``output``'s lock and holds it until its stdin is closed."""
    args = [sys.executable, "-c", HOLDER, str(output), mode] + ([str(go)] if go else [])
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def holding(output: Path, mode: str = "flock") -> subprocess.Popen:
    process = holder(output, mode)
    assert process.stdout.readline().split() == ["held", mode]
    return process


def let_go(process: subprocess.Popen) -> None:
    process.stdin.close()
    assert process.wait(timeout=60) == 0


def fake_lock(output: Path, host: str, pid: int, age: float) -> Path:
    """A heartbeat lock file as another run would leave it, last refreshed ``age`` s ago."""
    path = output / LOCK_NAME
    path.write_text(json.dumps({"host": host, "pid": pid, "started": time.time() - age - 60,
                                "version": "0.1.0", "mode": "heartbeat"}))
    os.utime(path, (time.time() - age,) * 2)
    return path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- flock -----------------------------------------------------------------------------


def test_the_lock_file_names_the_holder_and_is_removed_on_release(tmp_path):
    with OutputLock.acquire(tmp_path) as held:
        assert held.mode == "flock" and os.listdir(tmp_path) == [LOCK_NAME]
        record = read_holder(tmp_path / LOCK_NAME)
        assert (record.host, record.pid, record.mode) == (socket.gethostname(), os.getpid(), "flock")
        assert abs(record.started - time.time()) < 3600 and record.version
    assert os.listdir(tmp_path) == []
    OutputLock.acquire(tmp_path).release()  # free again


def test_a_second_run_is_refused_with_the_holder_named_until_the_first_releases(tmp_path):
    first = holding(tmp_path)
    with pytest.raises(OutputInUse) as refused:
        OutputLock.acquire(tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert f"{tmp_path} is in use by another run (pid {first.pid} on {socket.gethostname()} since " in message
    assert "nothing to delete" in message
    let_go(first)
    assert os.listdir(tmp_path) == []
    OutputLock.acquire(tmp_path).release()


def test_a_holder_killed_with_sigkill_frees_the_lock(tmp_path):
    first = holding(tmp_path)
    first.kill()
    first.wait(timeout=60)
    with OutputLock.acquire(tmp_path):  # the dead run's file is still there, and free
        assert read_holder(tmp_path / LOCK_NAME).pid == os.getpid()
    assert os.listdir(tmp_path) == []


def test_a_filesystem_without_flock_gets_the_heartbeat_lock(tmp_path, monkeypatch):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", no_flock)
    with OutputLock.acquire(tmp_path) as held:
        assert held.mode == "heartbeat"
        with pytest.raises(OutputInUse, match="delete"):
            OutputLock.acquire(tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_flock_run_respects_a_live_heartbeat_holder(tmp_path):
    with OutputLock.acquire(tmp_path, mode="heartbeat"), pytest.raises(OutputInUse, match="heartbeat"):
        OutputLock.acquire(tmp_path, mode="flock")


def test_an_unknown_mode_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MEXPLORE_OUTPUT_LOCK", "nfs")
    with pytest.raises(lock.MexploreError, match="MEXPLORE_OUTPUT_LOCK='nfs'"):
        OutputLock.acquire(tmp_path)


# --- heartbeat (no flock) ----------------------------------------------------------------


def test_heartbeat_lock_refused_while_its_holder_lives(tmp_path):
    first = holding(tmp_path, "heartbeat")
    with pytest.raises(OutputInUse) as refused:
        OutputLock.acquire(tmp_path, mode="heartbeat")
    message = str(refused.value)
    assert "\n" not in message and f"pid {first.pid} on {socket.gethostname()}" in message
    assert f"delete {tmp_path / LOCK_NAME} and run again" in message
    let_go(first)
    assert os.listdir(tmp_path) == []


def test_heartbeat_lock_of_a_dead_pid_on_this_host_is_taken_over(tmp_path, capsys):
    first = holding(tmp_path, "heartbeat")
    first.kill()
    first.wait(timeout=60)
    with OutputLock.acquire(tmp_path, mode="heartbeat"):
        assert read_holder(tmp_path / LOCK_NAME).pid == os.getpid()
        assert os.listdir(tmp_path) == [LOCK_NAME], "nothing left aside"
    warning = capsys.readouterr().err
    assert f"took over {tmp_path / LOCK_NAME}" in warning and f"pid {first.pid} no longer runs" in warning
    assert os.listdir(tmp_path) == []


def test_heartbeat_lock_held_on_another_host_is_refused_while_fresh_and_taken_over_when_stale(tmp_path, capsys):
    fake_lock(tmp_path, "nid00042", dead_pid(), age=5)
    with pytest.raises(OutputInUse, match=r"on nid00042 since .*, heartbeat \d+ s ago"):
        OutputLock.acquire(tmp_path, mode="heartbeat")  # its pid means nothing on this host
    fake_lock(tmp_path, "nid00042", 4242, age=STALE_AFTER + 60)
    with OutputLock.acquire(tmp_path, mode="heartbeat"):
        assert os.listdir(tmp_path) == [LOCK_NAME]
    assert f"no heartbeat for {(STALE_AFTER + 60) / 60:.0f} min" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_the_holder_keeps_its_heartbeat_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT", 0.02)
    with OutputLock.acquire(tmp_path, mode="heartbeat"):
        path = tmp_path / LOCK_NAME
        os.utime(path, (0, 0))
        wait_until(lambda: os.stat(path).st_mtime > 0, "the heartbeat refreshed the lock file")


def test_a_heartbeat_run_never_takes_over_a_live_flock_holder(tmp_path):
    first = holding(tmp_path)
    os.utime(tmp_path / LOCK_NAME, (0, 0))  # flock holders do not beat
    with pytest.raises(OutputInUse, match="nothing to delete"):
        OutputLock.acquire(tmp_path, mode="heartbeat")
    let_go(first)


def test_release_leaves_a_lock_that_another_run_took_over(tmp_path):
    held = OutputLock.acquire(tmp_path, mode="heartbeat")
    path = tmp_path / LOCK_NAME
    replacement = tmp_path / "new"
    replacement.write_text("another run's lock")
    os.replace(replacement, path)
    held.release()
    assert path.read_text() == "another run's lock"


def test_contenders_for_one_stale_lock_leave_exactly_one_holder(tmp_path):
    output, go = tmp_path / "out", tmp_path / "go"
    output.mkdir()
    fake_lock(output, "nid00042", 4242, age=STALE_AFTER + 60)
    contenders = [holder(output, "heartbeat", go) for _ in range(4)]
    for process in contenders:
        assert process.stdout.readline().strip() == "ready"
    go.touch()
    answers = [process.stdout.readline().split()[0] for process in contenders]
    assert sorted(answers) == ["held"] + ["refused"] * 3
    for process in contenders:
        process.stdin.close()
        process.wait(timeout=60)
    assert os.listdir(output) == []


# --- a run --------------------------------------------------------------------------------


def lock_study(tmp_path: Path, budget: int) -> Path:
    return write_study(tmp_path, f"""
        [study]
        name = "locked"
        budget = {budget}
        objective = "loss"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{gate_model(tmp_path)}:task"
        [algorithm]
        seed = 5
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


def gate_model(folder: Path) -> Path:
    """A model whose tasks wait for ``$LOCK_TEST_GATE`` to exist, then sleep 20-50 ms: a run
    cannot finish before the test opens the gate, however slow the machine."""
    path = folder / "gate.py"
    path.write_text(
        "import os, time\n"
        "def task(params, ctx):\n"
        "    deadline = time.monotonic() + 120\n"
        "    while not os.path.exists(os.environ['LOCK_TEST_GATE']) and time.monotonic() < deadline:\n"
        "        time.sleep(0.005)\n"
        "    time.sleep(0.02 + 0.03 * params['x'])\n"
        "    return {'loss': params['x']}\n"
    )
    return path


def test_a_refused_run_writes_nothing_and_stops_its_workers(tmp_path, capsys, monkeypatch):
    path, output = lock_study(tmp_path, budget=5), tmp_path / "out"
    output.mkdir()
    monkeypatch.setenv("LOCK_TEST_GATE", str(tmp_path))  # it exists: tasks do not wait
    with OutputLock.acquire(output):
        # returns only once both worker threads have stopped
        assert run_inproc(lambda: load_study(path), "off", workers=2) == OUTPUT_IN_USE
        assert os.listdir(output) == [LOCK_NAME], "the refused run wrote in the output"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"mexplore: error: {output} is in use by another run")
    assert run_inproc(lambda: load_study(path), "off", workers=2) == 0
    assert len(journal(output)) == 5 and LOCK_NAME not in os.listdir(output)


def start_run(path: Path, folder: Path, env: dict[str, str]) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_", "HYDRA_"))}
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "mexplore", "run", str(path), "-n", "3", "--progress", "off"],
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["flock", "heartbeat"])
def test_two_runs_started_at_once_on_one_output_one_runs_the_other_is_refused(tmp_path, mode):
    path, output, gate = lock_study(tmp_path, budget=60), tmp_path / "out", tmp_path / "gate"
    env = {"LOCK_TEST_GATE": str(gate), "MEXPLORE_OUTPUT_LOCK": mode,
           "MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}
    runs = [start_run(path, tmp_path, env) for _ in range(2)]
    try:
        # The winner's tasks wait at the gate, so it cannot end before the loser is refused.
        wait_until(lambda: any(run.poll() is not None for run in runs), "one run ended", timeout=180)
        assert (output / LOCK_NAME).exists(), "the winner holds the lock"
        for reader in ("status", "results", "report"):  # readers never take the lock
            assert run_cli(reader, str(output), cwd=tmp_path, timeout=180).returncode == 0, reader
        gate.touch()
        errors = [run.communicate(timeout=180)[1] for run in runs]
    finally:
        gate.touch()
        for run in runs:
            if run.poll() is None:
                run.kill()
    codes = [run.returncode for run in runs]
    assert sorted(codes) == [0, OUTPUT_IN_USE], errors
    refused = errors[codes.index(OUTPUT_IN_USE)].splitlines()
    assert len(refused) == 1, refused
    assert refused[0].startswith(f"mexplore: error: {output} is in use by another run (pid ")
    assert ("nothing to delete" if mode == "flock" else f"delete {output / LOCK_NAME}") in refused[0]
    ids = [record["id"] for record in journal(output)]
    assert sorted(ids) == list(range(60)), "exactly the budget, every id once"
    assert LOCK_NAME not in os.listdir(output)

    again = run_cli("run", str(path), "-n", "3", "--progress", "off", "--set", "study.budget=70",
                    cwd=tmp_path, env=env, timeout=180)
    assert again.returncode == 0, again.stderr
    resumed = [record["id"] for record in journal(output)]
    assert len(resumed) == len(set(resumed)) == 70 and resumed[:60] == ids


def test_a_stale_lock_is_left_alone_while_another_contender_takes_it_over(tmp_path):
    path = fake_lock(tmp_path, "nid00042", 4242, age=STALE_AFTER + 60)
    guard = tmp_path / f".{LOCK_NAME}.takeover"
    guard.write_text("")  # a contender mid-takeover: only it may remove the lock
    with pytest.raises(OutputInUse, match="on nid00042"):
        OutputLock.acquire(tmp_path, mode="heartbeat")
    assert path.exists() and guard.exists()
    os.utime(guard, (time.time() - lock.TAKEOVER_STALE - 5,) * 2)  # its contender was killed mid-takeover
    with OutputLock.acquire(tmp_path, mode="heartbeat"):
        assert read_holder(path).pid == os.getpid()
    assert os.listdir(tmp_path) == []
