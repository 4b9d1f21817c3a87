"""The node-local cache, the keep policy, memoization and stop signals, without MPI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mexplore.config import load_study
from mexplore.errors import StudyFileError
from mexplore.queue.keep import KeepPolicy
from mexplore.queue.memo import Memo, reused
from mexplore.runtime.signals import Interrupted, StopSignals
from mexplore.store.cache import CACHE_DIR, TaskCache, free_flush_name
from mexplore.types import Result, Status, Task

from helpers import REPO


def cache_at(tmp_path, name="node-r1.h5"):
    return TaskCache(tmp_path / "local" / name, lambda: name)


def test_saved_arrays_bytes_files_and_folders_come_back_from_the_flushed_file(tmp_path):
    cache = cache_at(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "a.txt").write_text("alpha")
    (tmp_path / "log.txt").write_text("epoch 1\n")
    cache.save(3, "weights", np.arange(6.0).reshape(2, 3))
    cache.save(3, "blob", b"\x00\x01binary")
    cache.save(3, "log", tmp_path / "log.txt")
    cache.save(3, "model", tmp_path / "model")
    cache.save(3, "weights", np.zeros(2))  # the last save of a name wins
    report = cache.flush(tmp_path / "out")
    assert report.path == tmp_path / "out" / CACHE_DIR / "node-r1.h5" and report.tasks == 1
    assert report.nbytes == report.path.stat().st_size
    with h5py.File(report.path, "r") as flushed:
        task = flushed["tasks/3"]
        assert task["weights"][()].tolist() == [0.0, 0.0]
        assert task["blob"][()].tobytes() == b"\x00\x01binary" and task["blob"].attrs["kind"] == "bytes"
        assert task["log"][()].tobytes() == b"epoch 1\n" and task["log"].attrs["filename"] == "log.txt"
        assert task["model/a.txt"][()].tobytes() == b"alpha"
    assert not list((tmp_path / "out" / CACHE_DIR).glob(".*part*")), "no temporary file is left"


def test_a_bad_name_or_a_missing_file_is_a_clear_error(tmp_path):
    cache = cache_at(tmp_path)
    with pytest.raises(ValueError, match="non-empty relative name"):
        cache.save(1, "/abs", b"x")
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        cache.save(1, "missing", tmp_path / "nope.bin")


def test_keep_flushes_only_the_chosen_tasks_and_nothing_when_none_is_chosen(tmp_path):
    cache = cache_at(tmp_path)
    for task in range(5):
        cache.save(task, "w", np.full(3, task))
    report = cache.flush(tmp_path / "out", keep={1, 3})
    with h5py.File(report.path, "r") as flushed:
        assert sorted(flushed["tasks"]) == ["1", "3"]
    assert cache.task_ids() == [0, 1, 2, 3, 4], "the node-local cache itself keeps everything"
    assert cache.flush(tmp_path / "other", keep=set()).path is None
    assert not (tmp_path / "other").exists()


def test_an_empty_cache_writes_no_file_and_never_loads_hdf5_needlessly(tmp_path):
    cache = cache_at(tmp_path)
    assert cache.flush(tmp_path / "out").path is None
    assert not (tmp_path / "local").exists()


def test_a_cache_left_by_a_killed_run_is_adopted_with_its_flush_name(tmp_path):
    killed = (  # a worker that saved and flushed, then died without closing its cache
        "import os, sys, numpy as np\n"
        "from pathlib import Path\n"
        "from mexplore.store.cache import TaskCache\n"
        "root = Path(sys.argv[1])\n"
        "first = TaskCache(root / 'local' / 'c.h5', lambda: 'node-r1.h5')\n"
        "first.save(7, 'w', np.ones(2))\n"
        "first.flush(root / 'out')\n"
        "os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", killed, str(tmp_path)], timeout=120).returncode == 9
    second = TaskCache(tmp_path / "local" / "c.h5", lambda: free_flush_name(tmp_path / "out", "node", 1))
    second.save(8, "w", np.ones(2))
    report = second.flush(tmp_path / "out")
    assert report.path.name == "node-r1.h5", "it replaces the flush it wrote itself"
    with h5py.File(report.path, "r") as flushed:
        assert sorted(flushed["tasks"]) == ["7", "8"]


def test_a_new_cache_never_overwrites_an_earlier_jobs_flush(tmp_path):
    (tmp_path / "out" / CACHE_DIR).mkdir(parents=True)
    (tmp_path / "out" / CACHE_DIR / "node-r1.h5").write_bytes(b"earlier")
    assert free_flush_name(tmp_path / "out", "node", 1) == "node-r1-2.h5"
    assert free_flush_name(tmp_path / "out", "node", 2) == "node-r2.h5"


def test_an_unreadable_cache_is_moved_aside_with_a_warning(tmp_path, capsys):
    path = tmp_path / "local" / "c.h5"
    path.parent.mkdir()
    path.write_bytes(b"half an HDF5 file")
    cache = TaskCache(path, lambda: "node-r1.h5")
    cache.save(1, "w", np.ones(1))
    assert "cannot be read" in capsys.readouterr().err
    assert len(list(path.parent.glob("c.unreadable-*.h5"))) == 1
    assert cache.task_ids() == [1]


def test_discard_forgets_an_interrupted_tasks_values(tmp_path):
    cache = cache_at(tmp_path)
    cache.save(1, "w", np.ones(1))
    cache.save(2, "w", np.ones(1))
    cache.discard(2)
    assert cache.task_ids() == [1]


def test_absorb_takes_in_what_an_isolated_child_saved(tmp_path):
    child = TaskCache(tmp_path / "task" / "saved.h5", str)
    child.save(4, "w", np.arange(3))
    child.close()
    cache = cache_at(tmp_path)
    cache.absorb(4, tmp_path / "task" / "saved.h5")
    cache.absorb(5, tmp_path / "task" / "absent.h5")
    assert cache.task_ids() == [4]


def result(task_id, status=Status.OK, objective=None, params=None):
    return Result(task_id=task_id, params=params or {"x": task_id}, status=status, objective=objective)


def test_keep_policy_ranks_ok_results_by_the_first_objective():
    keep = KeepPolicy(2, "maximize")
    keep.add([result(0, objective=[0.5, 9.0]), result(1, objective=[0.9, 1.0]),
              result(2, Status.FAILED), result(3, objective=[0.7, 0.0])])
    assert keep.chosen() == {1, 3}
    assert KeepPolicy(None, "minimize").chosen() is None
    assert KeepPolicy(0, "minimize").chosen() == frozenset()


def test_memo_reuses_ok_results_only_and_points_back_to_the_first_run():
    memo = Memo()
    memo.add([result(0, objective=1.5, params={"x": 1, "y": 2}),
              result(1, Status.FAILED, params={"x": 3, "y": 4})])
    assert memo.lookup({"x": 3, "y": 4}) is None, "a failure may be passing: it runs again"
    earlier = memo.lookup({"y": 2, "x": 1})
    again = reused(Task(9, {"y": 2, "x": 1}), earlier)
    assert (again.task_id, again.objective, again.reused_from, again.rank) == (9, 1.5, 0, -1)
    assert reused(Task(10, again.params), again).reused_from == 0


def test_cache_table_is_validated_with_the_file_and_key(tmp_path):
    study = REPO / "studies" / "quickstart.toml"
    assert load_study(study, ["cache.keep=top:5"]).cache.keep_top == 5
    with pytest.raises(StudyFileError, match=r"cache.keep = 'top:0': expected \"all\", \"none\" or \"top:K\""):
        load_study(study, ["cache.keep=top:0"])
    with pytest.raises(StudyFileError, match="cache.flush_every"):
        load_study(study, ["cache.flush_every=soon"])


def test_a_stop_signal_interrupts_only_inside_interruptible_blocks():
    signals = StopSignals()
    signals.install()
    try:
        with pytest.raises(Interrupted), signals.interruptible():
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGUSR1)
                done_writing = True  # the deferred block runs to its end first
        assert done_writing and signals.signum == signal.SIGUSR1
        with pytest.raises(Interrupted), signals.interruptible():
            pass  # a signal already noted stops the next task before it starts
    finally:
        signals.restore()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
