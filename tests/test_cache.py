"""The node-local cache, the keep policy, memoization and stop signals, without MPI.

The kill -9 attack under MPI is in test_cache_kill.py."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import REPO, wait_until

from mexplore.config import load_study
from mexplore.errors import StudyFileError
from mexplore.models.command import CommandModel
from mexplore.models.spec import ModelSpec
from mexplore.queue.keep import KeepPolicy
from mexplore.queue.memo import Memo, reused
from mexplore.runtime.signals import Interrupted, StopSignals
from mexplore.store.cache import CACHE_DIR, TaskCache, free_flush_name
from mexplore.store.results_file import load_output, write_results_h5
from mexplore.store.save_log import SaveLog
from mexplore.types import Result, Status, Task


def cache_at(tmp_path, name="node-r1"):
    return TaskCache(tmp_path / "local" / name, lambda: f"{name}.h5")


def saved(cache, task_id, **values):
    """Save ``values`` as the task's, then end the task as the worker does."""
    for name, value in values.items():
        cache.save(task_id, name, value)
    cache.commit(task_id)


def hidden_files(folder):
    return sorted(path.name for path in folder.rglob(".*"))


def segments(folder):
    """The save logs in a cache folder, with their sizes."""
    return {path.name: path.stat().st_size for path in sorted(folder.glob("*.log"))}


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
    assert cache.task_ids() == [], "a task's saves count once the task is over"
    cache.commit(3)
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
    assert not hidden_files(tmp_path / "local")


def test_a_bad_name_or_a_missing_file_is_a_clear_error(tmp_path):
    cache = cache_at(tmp_path)
    with pytest.raises(ValueError, match="non-empty relative name"):
        cache.save(1, "/abs", b"x")
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        cache.save(1, "missing", tmp_path / "nope.bin")
    with pytest.raises(TypeError, match="No conversion path"):
        cache.save(1, "text", np.array(["HDF5 holds no numpy unicode"]))  # fails in the task, not at a flush
    cache.save(1, "a", np.ones(1))
    with pytest.raises(ValueError, match="cannot go inside 'a', which holds a value"):
        cache.save(1, "a/b", np.ones(1))
    cache.save(1, "c/d", np.ones(1))
    cache.save(1, "c", b"replaces the group c")
    cache.commit(1)
    with h5py.File(cache.flush(tmp_path / "out").path, "r") as flushed:
        assert sorted(flushed["tasks/1"]) == ["a", "c"] and flushed["tasks/1/c"].attrs["kind"] == "bytes"


def test_keep_flushes_only_the_chosen_tasks_and_nothing_when_none_is_chosen(tmp_path):
    cache = cache_at(tmp_path)
    for task in range(5):
        saved(cache, task, w=np.full(3, task))
    report = cache.flush(tmp_path / "out", keep={1, 3})
    with h5py.File(report.path, "r") as flushed:
        assert sorted(flushed["tasks"]) == ["1", "3"]
        assert flushed["tasks/3/w"][()].tolist() == [3, 3, 3]
    assert cache.task_ids() == [0, 1, 2, 3, 4], "the node-local cache itself keeps everything"
    saved(cache, 5, w=np.full(3, 5))
    report = cache.flush(tmp_path / "out", keep={0, 5})  # a later flush replaces the file
    with h5py.File(report.path, "r") as flushed:
        assert sorted(flushed["tasks"]) == ["0", "5"]
    assert cache.flush(tmp_path / "other", keep=set()).path is None
    assert not (tmp_path / "other").exists()
    assert not hidden_files(tmp_path / "local"), "the kept copy is not left on the node"


NOTHING_SAVED = """
import sys
from pathlib import Path
from mexplore.store.cache import TaskCache
root = Path(sys.argv[1])
cache = TaskCache(root / 'local' / 'node-r1', lambda: 'node-r1.h5')
for task in range(3):
    cache.save_folder(task, root / 'no-artifacts')  # a command model that left nothing
    cache.absorb(task, root / 'no-saved.log')
    cache.commit(task)
assert cache.flush(root / 'out').path is None
cache.close(remove=True)
assert 'h5py' not in sys.modules
"""


def test_an_empty_cache_writes_no_file_and_never_loads_hdf5(tmp_path):
    done = subprocess.run([sys.executable, "-c", NOTHING_SAVED, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "local").exists() and not (tmp_path / "out").exists()


KILLED = """
import os, sys, numpy as np
from pathlib import Path
from mexplore.store.cache import TaskCache
root = Path(sys.argv[1])
first = TaskCache(root / 'local' / 'node-r1', lambda: 'node-r1.h5')
first.save(7, 'w', np.full(2, 7.0)); first.commit(7)
first.flush(root / 'out')                                # 7 is flushed and packed
first.save(8, 'w', np.full(2, 8.0)); first.commit(8)     # 8 is finished, not flushed
first.save(9, 'w', np.full(2, 9.0))                      # 9 is running: its file is half-written
os._exit(9)
"""


def test_a_cache_left_by_a_killed_run_is_adopted_and_its_half_written_files_removed(tmp_path):
    assert subprocess.run([sys.executable, "-c", KILLED, str(tmp_path)], timeout=120, check=False).returncode == 9
    folder = tmp_path / "local" / "node-r1"
    (log,) = folder.glob("*.log")
    os.truncate(log, log.stat().st_size - 100)  # the kill came in the middle of task 9's save
    (folder / ".packed.h5").write_bytes(b"a pack cut short by a kill")
    (tmp_path / "out" / CACHE_DIR / "node-r1-2.h5").write_bytes(b"an earlier job's flush")
    second = TaskCache(folder, lambda: free_flush_name(tmp_path / "out", "node", 1))
    assert second.task_ids() == [7, 8]
    assert hidden_files(folder) == [], "what no task finished is removed"
    saved(second, 10, w=np.full(2, 10.0))
    report = second.flush(tmp_path / "out")
    assert report.path.name == "node-r1.h5", "it replaces the flush it wrote itself"
    with h5py.File(report.path, "r") as flushed:
        assert {task: flushed[f"tasks/{task}/w"][0] for task in flushed["tasks"]} == {
            "7": 7.0, "8": 8.0, "10": 10.0}
    assert (tmp_path / "out" / CACHE_DIR / "node-r1-2.h5").read_bytes() == b"an earlier job's flush"
    assert list(segments(folder).values()) == [0], "the killed run's log is consumed, ours emptied"


def test_a_flush_killed_after_packing_loses_nothing_and_duplicates_nothing(tmp_path):
    cache = cache_at(tmp_path)
    saved(cache, 1, w=np.ones(2))
    cache.flush(tmp_path / "out")
    saved(cache, 2, w=np.full(2, 2.0))
    (log,) = (tmp_path / "local" / "node-r1").glob("*.log")
    logged = log.read_bytes()
    cache.flush(tmp_path / "out")
    assert log.stat().st_size == 0
    log.write_bytes(logged)  # as if killed after packing, before emptying the log
    adopted = cache_at(tmp_path)
    assert adopted.task_ids() == [1, 2]
    with h5py.File(adopted.flush(tmp_path / "out").path, "r") as flushed:
        assert sorted(flushed["tasks"]) == ["1", "2"] and flushed["tasks/2/w"][0] == 2.0


FLUSHING = """
import sys, numpy as np
from pathlib import Path
from mexplore.store.cache import TaskCache
root, first = Path(sys.argv[1]), int(sys.argv[2])
cache = TaskCache(root / 'local' / 'node-r1', lambda: 'node-r1.h5')
with open(root / 'committed', 'a') as log:
    for task in range(first, first + 10**6):
        cache.save(task, 'w', np.full(1000, float(task)))
        cache.commit(task)
        log.write(f'{task}\\n')
        log.flush()
        cache.flush(root / 'out')  # most of the loop's time: most kills land in a flush
"""


def test_kills_in_the_middle_of_flushes_lose_no_finished_task(tmp_path):
    log, flushed = tmp_path / "committed", tmp_path / "out" / CACHE_DIR / "node-r1.h5"
    log.touch()
    rng = random.Random(7)
    for kill in range(5):
        child = subprocess.Popen([sys.executable, "-c", FLUSHING, str(tmp_path), str(kill * 10_000)])
        enough = len(log.read_text().split()) + rng.randint(2, 40)
        wait_until(lambda enough=enough: len(log.read_text().split()) >= enough,
                   "the child has committed enough tasks", process=child)
        child.kill()
        child.wait(timeout=60)
        with h5py.File(flushed, "r"):
            pass  # the flushed file is whole whenever the kill came
    committed = sorted(int(task) for task in log.read_text().split())
    adopted = TaskCache(tmp_path / "local" / "node-r1", lambda: "never.h5")
    with h5py.File(adopted.flush(tmp_path / "out").path, "r") as file:
        held = {int(task): file[f"tasks/{task}/w"][0] for task in file["tasks"]}
    assert set(committed) <= set(held), f"finished tasks lost: {sorted(set(committed) - set(held))}"
    assert all(held[task] == task for task in held)
    assert hidden_files(tmp_path / "local") == []


def test_a_new_cache_never_overwrites_an_earlier_jobs_flush(tmp_path):
    (tmp_path / "out" / CACHE_DIR).mkdir(parents=True)
    (tmp_path / "out" / CACHE_DIR / "node-r1.h5").write_bytes(b"earlier")
    assert free_flush_name(tmp_path / "out", "node", 1) == "node-r1-2.h5"
    assert free_flush_name(tmp_path / "out", "node", 2) == "node-r2.h5"


def test_a_damaged_log_is_moved_aside_with_a_warning_and_the_others_flushed(tmp_path, capsys):
    cache = cache_at(tmp_path)
    saved(cache, 1, w=np.ones(1))
    damaged = tmp_path / "local" / "node-r1" / "00000000000000000001-1.log"
    damaged.write_bytes(b"not a save log, from a disk fault" * 10)
    report = cache.flush(tmp_path / "out")
    assert f"{damaged} cannot be read" in capsys.readouterr().err
    assert len(list((tmp_path / "local" / "node-r1.unreadable").glob(f"{damaged.name}.unreadable-*"))) == 1
    assert report.tasks == 1 and cache.task_ids() == [1]

    other = SaveLog(tmp_path / "local" / "node-r1" / "00000000000000000002-1.log")
    other.save(5, "w", np.ones(1))
    other.commit(5)
    damaged_at = other.path.stat().st_size
    other.save(6, "w", np.ones(1))
    other.commit(6)
    other.close()
    with open(other.path, "r+b") as log:  # a length of task 6's record, damaged on disk
        log.seek(damaged_at + 19)
        log.write(b"\xff" * 8)
    assert cache.flush(tmp_path / "out").tasks == 2, "what comes before the damage is flushed"
    assert "no record at byte" in capsys.readouterr().err, "not taken for the end of a log a kill cut short"
    assert len(list((tmp_path / "local" / "node-r1.unreadable").glob(f"{other.path.name}.unreadable-*"))) == 1
    cache.close(remove=True)
    assert list((tmp_path / "local").iterdir()) == [tmp_path / "local" / "node-r1.unreadable"], \
        "what was moved aside outlives the cache"


def test_a_damaged_packed_file_never_costs_the_flush_that_holds_its_tasks(tmp_path, capsys):
    output = tmp_path / "out"
    cache = TaskCache(tmp_path / "local" / "node-r1", lambda: free_flush_name(output, "node", 1))
    saved(cache, 1, w=np.ones(1))
    assert cache.flush(output).path.name == "node-r1.h5"
    packed = tmp_path / "local" / "node-r1" / "packed.h5"
    packed.write_bytes(packed.read_bytes()[:500])  # a disk fault
    saved(cache, 2, w=np.ones(1))
    report = cache.flush(output)
    assert "packed.h5 cannot be read" in capsys.readouterr().err
    assert report.path.name == "node-r1-2.h5" and report.tasks == 1
    with h5py.File(output / CACHE_DIR / "node-r1.h5", "r") as earlier:
        assert list(earlier["tasks"]) == ["1"]


def test_discard_forgets_an_interrupted_tasks_values(tmp_path):
    cache = cache_at(tmp_path)
    saved(cache, 1, w=np.ones(1))
    cache.save(2, "w", np.ones(1))
    cache.save(2, "partial", b"x")
    cache.discard(2)
    assert cache.task_ids() == [1]
    saved(cache, 2, w=np.zeros(1))  # a later attempt's saves never mix with the interrupted one's
    with h5py.File(cache.flush(tmp_path / "out").path, "r") as flushed:
        assert sorted(flushed["tasks"]) == ["1", "2"] and list(flushed["tasks/2"]) == ["w"]
        assert flushed["tasks/2/w"][0] == 0.0


def test_absorb_takes_in_what_an_isolated_child_saved_beside_the_artifacts(tmp_path):
    child = SaveLog(tmp_path / "task" / "saved.log")
    child.save(4, "w", np.arange(3))
    child.save(4, "cut", np.arange(3))
    child.close()
    os.truncate(child.path, child.path.stat().st_size - 10)  # the child was killed mid-save
    (tmp_path / "task" / "artifacts").mkdir()
    (tmp_path / "task" / "artifacts" / "model.txt").write_text("m")
    cache = cache_at(tmp_path)
    cache.save_folder(4, tmp_path / "task" / "artifacts")
    cache.absorb(4, tmp_path / "task" / "saved.log")
    cache.commit(4)
    cache.absorb(5, tmp_path / "task" / "absent.log")
    cache.commit(5)
    assert cache.task_ids() == [4]
    with h5py.File(cache.flush(tmp_path / "out").path, "r") as flushed:
        assert sorted(flushed["tasks/4"]) == ["model.txt", "w"]


def test_links_in_artifacts_are_stored_as_links_never_followed(tmp_path):
    artifacts = tmp_path / "task" / "artifacts"
    (artifacts / "run").mkdir(parents=True)
    (artifacts / "run" / "epoch3.pt").write_bytes(b"weights")
    (artifacts / "best.pt").symlink_to("run/epoch3.pt")
    (artifacts / "etc").symlink_to("/etc")
    (artifacts / "run" / "loop").symlink_to("..")
    (artifacts / "gone").symlink_to(tmp_path / "nothing")
    cache = cache_at(tmp_path)
    cache.save_folder(1, artifacts)
    cache.commit(1)
    flushed = cache.flush(tmp_path / "out")
    assert flushed.nbytes < 100_000, "nothing a link points to was copied"
    write_results_h5(tmp_path / "out", pd.DataFrame({"id": [1]}))
    assert load_output(tmp_path / "out", 1, "etc") == "/etc"
    assert load_output(tmp_path / "out", 1, "best.pt") == "run/epoch3.pt"
    assert load_output(tmp_path / "out", 1, "gone") == str(tmp_path / "nothing")
    assert load_output(tmp_path / "out", 1, "run") == {"epoch3.pt": b"weights", "loop": ".."}


def test_an_artifacts_folder_that_is_a_link_fails_the_task_with_the_reason(tmp_path):
    script = tmp_path / "model.sh"
    script.write_text('rmdir "$MEXPLORE_ARTIFACTS_DIR"; ln -s /etc "$MEXPLORE_ARTIFACTS_DIR"\n'
                      'echo "MEXPLORE_RESULT 1.5"\n')
    spec = ModelSpec(objectives=("loss",), local_dir=str(tmp_path / "local"), command=("bash", str(script)))
    cache = cache_at(tmp_path)
    model = CommandModel(spec, 1, "node", None, lambda *report, send=True: None, cache)
    result = model(Task(0, {}))
    cache.commit(0)
    assert result.status == Status.FAILED
    assert "artifacts is a symbolic link to /etc" in result.error
    assert cache.task_ids() == []


def test_a_truncated_flushed_file_is_moved_aside_and_results_h5_still_written(tmp_path, capsys):
    output = tmp_path / "out"
    for name, task in (("good", 1), ("bad", 2)):
        cache = cache_at(tmp_path, name)
        saved(cache, task, w=np.full(4, float(task)))
        cache.flush(output)
    bad = output / CACHE_DIR / "bad.h5"
    bad.write_bytes(bad.read_bytes()[:1000])  # a full quota, a partial copy
    write_results_h5(output, pd.DataFrame({"id": [1, 2]}))
    err = capsys.readouterr().err
    assert f"{bad} cannot be read" in err and "moved to" in err
    assert [path.name for path in (output / CACHE_DIR).glob("*.h5")] == ["good.h5"]
    assert len(list((output / CACHE_DIR).glob("bad.h5.unreadable-*"))) == 1, "kept, not deleted"
    assert load_output(output, 1, "w").tolist() == [1.0] * 4
    with pytest.raises(KeyError, match="task 2 has no saved output"):
        load_output(output, 2, "w")


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


def test_results_h5_of_several_outputs_written_at_once_in_one_process(tmp_path):
    """results.h5 is built in memory; HDF5 takes two in-memory files of one name for the
    same file, so each writer names its own (several in-process runs, or their threads)."""
    from concurrent.futures import ThreadPoolExecutor

    from mexplore.store.results_file import read_table

    outputs = [tmp_path / f"out{index}" for index in range(4)]
    frames = [pd.DataFrame({"id": np.arange(50_000), "x": np.full(50_000, float(index))}) for index in range(4)]
    for output in outputs:
        output.mkdir()
    with ThreadPoolExecutor(4) as writers:
        list(writers.map(write_results_h5, outputs, frames))
    assert [read_table(output)["x"].iloc[-1] for output in outputs] == [0.0, 1.0, 2.0, 3.0]
