"""An output directory whose filesystem fills up mid-run, or is read-only (issue 12, item 6).

Real filesystems: a tmpfs of a few hundred kB mounted for the test (root only; skipped with
the reason elsewhere). A full disk must stop the run with one message that says what to
free, keep the journal whole (no half line, no duplicate), leave no temporary file, keep
the saved outputs that could not be flushed on the node, and a resume once space is freed
must finish exactly, with every ok task's outputs. A read-only one is refused in one line.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest
from helpers import processes_of, run_cli, write_study

from mexplore.store import disk
from mexplore.store.results_file import load_output

pytestmark = pytest.mark.mpi
BUDGET = 1200
"""More journal lines (about 300 bytes each) than the disk holds: it fills mid-run however
fast the tasks go, not only when a periodic flush happens to land before the end."""

MODEL = """
import numpy as np


def model(params, ctx):
    ctx.save("point", np.full(64, params["x"]))
    return params["x"]
"""


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 160 kB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def study(folder: Path, output: Path) -> Path:
    (folder / "model.py").write_text(MODEL)
    return write_study(folder, f"""
        [study]
        name = "full"
        budget = {BUDGET}
        objective = "loss"
        output = "{output}"

        [model]
        python = "{folder / 'model.py'}:model"

        [cache]
        flush_every = 0.05

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


def test_a_full_disk_stops_the_run_cleanly_and_a_resume_finishes_exactly(tmp_path: Path, small_disk: Path) -> None:
    output = small_disk / "out"
    path = study(tmp_path, output)
    env = {"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")}

    full = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, env=env, timeout=300)
    assert full.returncode == 1, full.stderr
    assert "No space left on device" in full.stderr and "free space there, then run the same command again" in full.stderr
    assert "Traceback" not in full.stderr, full.stderr
    lines = (output / "journal.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"", "the journal ends inside a line"
    ids = [json.loads(line)["id"] for line in lines[:-1]]
    assert 0 < len(ids) < BUDGET and len(set(ids)) == len(ids)
    assert not [p.name for p in output.iterdir() if ".part" in p.name or p.name.endswith(".tmp")]
    assert not processes_of(tmp_path)

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space is freed
    resumed = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in (output / "journal.jsonl").read_text().splitlines()]
    assert len(records) == BUDGET and len({r["id"] for r in records}) == BUDGET
    lost = [r["id"] for r in records if load_output(output, r["id"], "point").tolist() != [r["params"]["x"]] * 64]
    assert not lost, f"outputs lost or attached to the wrong task: {lost}"
    assert not processes_of(tmp_path)


def test_a_read_only_output_is_refused_in_one_line(tmp_path: Path, small_disk: Path) -> None:
    output = small_disk / "out"
    output.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    path = study(tmp_path, output)
    refused = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=120)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode in (1, 2) and len(lines) == 1, refused.stderr
    assert "Read-only file system" in lines[0] and "choose another output directory" in lines[0]
    assert not list(output.iterdir())


RESULTS_ON_A_FULL_DISK = """
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mexplore.store.results_file import write_results

rows = int(sys.argv[2])
frame = pd.DataFrame({"id": np.arange(rows), "x": np.linspace(0, 1, rows), "status": ["ok"] * rows})
try:
    write_results(Path(sys.argv[1]), frame)
except OSError as error:
    print("OSError", error.errno)
"""


@pytest.mark.parametrize("rows", [1000, 2000, 8000])
def test_results_h5_on_a_full_disk_is_an_oserror_not_a_crash(tmp_path: Path, small_disk: Path, rows: int) -> None:
    """HDF5 writing straight to a full disk crashed the process (a segmentation fault as
    its objects were freed) at the end of a run whose journal had fit: results.h5 is now
    built in memory and written as one image, so the disk's error is an OSError the run
    reports, and no temporary file is left."""
    output = small_disk / "out"
    output.mkdir()
    (small_disk / "filler").write_bytes(b"\0" * 100_000)
    script = tmp_path / "write.py"
    script.write_text(RESULTS_ON_A_FULL_DISK)
    done = subprocess.run([sys.executable, str(script), str(output), str(rows)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "OSError 28", done.stdout + done.stderr[-2000:]
    assert not [p.name for p in output.iterdir() if ".part" in p.name]


PACK_ON_A_FULL_DISK = """
import sys
from pathlib import Path

import numpy as np

from mexplore.store.cache import TaskCache

cache = TaskCache(Path(sys.argv[1]), lambda: "worker.h5")
for task in range(int(sys.argv[2]), int(sys.argv[3])):
    cache.save(task, "point", np.full(256, float(task)))
    cache.commit(task)
try:
    print("flushed", cache.flush(Path(sys.argv[4])).tasks)
except OSError as error:
    print("OSError", error.errno)
"""


@pytest.mark.parametrize("tasks", [30, 45, 60])
def test_a_full_node_local_disk_flushes_straight_to_the_output_and_never_crashes(
        tmp_path: Path, small_disk: Path, tasks: int) -> None:
    """A worker packs its node-local cache into an HDF5 file before the flush. When the
    node-local disk had no room for that, HDF5 crashed the worker (exit 139), and the
    outputs stayed on a node whose disk is wiped when the job ends. Now the space of each
    write is allocated first, and a node-local disk too full to pack on makes the flush
    write straight to the output, leaving the cache as it was: every task is flushed, and
    so again by a later flush once there is room. A first flush packs half the tasks while
    there is room for it, so the straight way starts from the packed file too."""
    cache, output = small_disk / "cache", tmp_path / "out"
    output.mkdir()
    script = tmp_path / "pack.py"
    script.write_text(PACK_ON_A_FULL_DISK)

    def flush(first: int, end: int) -> str:
        """Save tasks first..end-1 into the cache, then flush it."""
        done = subprocess.run([sys.executable, str(script), str(cache), str(first), str(end), str(output)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
        return done.stdout.strip()

    def flushed() -> list[int]:
        with h5py.File(output / "cache" / "worker.h5", "r") as file:
            return sorted(map(int, file["tasks"]))

    assert flush(0, tasks // 2) == f"flushed {tasks // 2}"
    assert flush(tasks // 2, tasks) == f"flushed {tasks}"
    assert flushed() == list(range(tasks))
    assert not [path.name for path in cache.iterdir() if ".packed" in path.name or ".part" in path.name]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert flush(0, 0) == f"flushed {tasks}"
    assert flushed() == list(range(tasks))


def test_a_run_whose_node_local_disk_fills_flushes_every_output(tmp_path: Path, small_disk: Path) -> None:
    """End to end: ``MEXPLORE_LOCAL_DIR`` on a disk that the saved values nearly fill, with
    no room left to pack them; the run ends well and every task's output is in the output
    directory, and nothing is left on the node."""
    output = tmp_path / "out"
    path = study(tmp_path, output).read_text().replace(f"budget = {BUDGET}", "budget = 50")
    (tmp_path / "local.toml").write_text(path.replace("[cache]\nflush_every = 0.05\n", ""))
    done = run_cli("run", str(tmp_path / "local.toml"), "-n", "2", "--progress", "off", cwd=tmp_path, timeout=300,
                   env={"MEXPLORE_LOCAL_DIR": str(small_disk)})
    assert done.returncode == 0, done.stderr
    assert "flushed 50 tasks' outputs" in done.stderr, done.stderr
    assert not list(small_disk.iterdir())
    assert [float(load_output(output, task, "point")[0]) for task in range(50)] == \
        [record["params"]["x"] for record in sorted(map(json.loads, (output / "journal.jsonl").open()),
                                                    key=lambda record: record["id"])]


@pytest.mark.parametrize("answer", [errno.EOPNOTSUPP, errno.EINVAL])
def test_a_filesystem_that_cannot_allocate_ahead_gets_its_free_space_checked(tmp_path: Path, monkeypatch,
                                                                             answer: int) -> None:
    """Where ``fallocate`` cannot keep the size (some parallel and network filesystems), a
    reservation checks the free space instead: within it nothing is refused, beyond it the
    refusal is ENOSPC, before anything is written."""
    monkeypatch.setattr(disk, "_fallocate_keep_size", lambda fd, length: answer)
    path = tmp_path / "file"
    path.write_bytes(b"")
    free = shutil.disk_usage(tmp_path).free
    with disk.Reservation(path) as room:
        room.ensure(1 << 20)
        with pytest.raises(OSError) as refused:
            room.ensure(4 * free)
    assert refused.value.errno == errno.ENOSPC and path.stat().st_size == 0


KEPT_AND_DEEP = """
import os
import sys
from pathlib import Path

import numpy as np

from mexplore.store.cache import TaskCache

disk, output = Path(sys.argv[1]), Path(sys.argv[2])
cache = TaskCache(disk / "cache", lambda: "worker.h5")
for task in range(10):
    cache.save(task, "/".join(f"g{level}" for level in range(40)), np.full(4, float(task)))
    cache.commit(task)
print("all", cache.flush(output).tasks)
with open(disk / "filler", "wb") as filler:  # the disk full, but for a few kB
    while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > 8192:
        filler.write(b"\\0" * 4096)
        filler.flush()
print("kept", cache.flush(output, keep={0, 1, 2}).tasks)
print("left", sorted(path.name for path in (disk / "cache").iterdir() if path.name.startswith(".")))
"""


def test_a_kept_subset_and_deeply_named_values_flush_from_a_full_node_local_disk(tmp_path: Path,
                                                                                 small_disk: Path) -> None:
    """Found by review: a flush of some tasks only (``[cache] keep``) copied them on the
    node first and failed there; values named 40 groups deep outgrew the space reserved for
    HDF5's metadata, which HDF5 reported as a RuntimeError; and a failed pack left its empty
    file on the node. Each now takes the straight way, and nothing is left behind."""
    script = tmp_path / "kept.py"
    script.write_text(KEPT_AND_DEEP)
    output = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), str(small_disk), str(output)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split("\n")[:3] == ["all 10", "kept 3", "left []"], done.stdout + done.stderr[-2000:]
    with h5py.File(output / "cache" / "worker.h5", "r") as flushed:
        assert sorted(map(int, flushed["tasks"])) == [0, 1, 2]
