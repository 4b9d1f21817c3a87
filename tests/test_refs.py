"""Data by reference (``queue.put``, ``ctx.get``, ``ctx.share``): bulky data travels over MPI
with the tasks that name it, never through params, the journal or results.csv."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path

import pytest
from helpers import (
    journal,
    killed_then_resumed,
    run_cli,
    start_run,
    wait_until,
    write_study,
)

from mexplore.models.refs import WorkerRefs
from mexplore.queue.refs import RefStore
from mexplore.types import Task

MODEL = '''
import numpy as np


def model(params, ctx):
    metrics = {}
    if "data" in params:
        data = ctx.get(params["data"])                   # 10 MB, sent once per worker
        metrics["checksum"] = float(data[::1000].sum())
        ctx.share("weights", np.full(1000, params["x"]))  # back with the result
    if "parent" in params:
        metrics["inherited"] = float(ctx.get(params["parent"])[0])
    return {"objective": params["x"], **metrics}
'''

STEER = '''
import numpy as np


def steer(queue, space, options):
    ref = queue.put(np.arange(10 * 2**20 // 8, dtype=np.float64))
    parents = queue.map([{"x": 0.1 * (i + 1), "data": ref} for i in range(4)])
    queue.map([{"x": 0.5, "parent": parent.shared["weights"]} for parent in parents])
'''


def study(folder: Path, budget: int) -> Path:
    (folder / "model.py").write_text(MODEL)
    (folder / "steer.py").write_text(STEER)
    return write_study(folder, f"""
        [study]
        name = "refs"
        budget = {budget}
        output = "{folder / 'out'}"
        [model]
        python = "{folder / 'model.py'}:model"
        [algorithm]
        name = "{folder / 'steer.py'}:steer"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


@pytest.mark.mpi
def test_a_10_mb_array_by_reference_and_weights_passed_from_parents_to_children(tmp_path: Path) -> None:
    expected = float(sum(range(0, 10 * 2**20 // 8, 1000)))
    done = run_cli("run", str(study(tmp_path, 8)), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    parents, children = records[:4], records[4:]
    assert all(r["metrics"]["checksum"] == expected for r in parents)
    assert all(r["shared"] == {"weights": f"mexplore-ref:task/{r['id']}/weights"} for r in parents)
    assert sorted(r["metrics"]["inherited"] for r in children) == [r["params"]["x"] for r in parents]
    assert (tmp_path / "out" / "journal.jsonl").stat().st_size < 20_000, "the data never entered the journal"
    assert (tmp_path / "out" / "results.csv").stat().st_size < 20_000


@pytest.mark.mpi
def test_a_resumed_run_reads_an_earlier_sessions_shared_output_from_the_output(tmp_path: Path) -> None:
    path = study(tmp_path, 4)
    first = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("run", str(path), "-n", "3", "--progress", "off", "--set", "study.budget=8", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    children = [r for r in records if "parent" in r["params"]]
    assert len(records) == 8
    assert sorted(r["metrics"]["inherited"] for r in children) == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_each_worker_gets_each_ref_once_and_only_the_refs_its_tasks_name() -> None:
    store = RefStore()
    big, small = store.put(b"x" * 1000), store.put({"a": [1, 2]})
    first = store.for_worker(1, [Task(0, {"x": 1, "d": big}), Task(1, {"nested": {"list": [small]}})])
    assert set(first) == {big, small}
    assert store.for_worker(1, [Task(2, {"d": big})]) == {}, "worker 1 has it already"
    assert set(store.for_worker(2, [Task(3, {"d": big})])) == {big}
    worker = WorkerRefs()
    worker.received(first)
    assert worker.get(small) == {"a": [1, 2]} and worker.get(small) is worker.get(small), "unpickled once"
    with pytest.raises(KeyError, match="did not come with this task"):
        worker.get("mexplore-ref:put/99")
    worker.share(7, "w", [1.0])
    assert {task: {name: pickle.loads(data) for name, data in named.items()}
            for task, named in worker.take_shared([7, 8]).items()} == {7: {"w": [1.0]}}
    assert worker.take_shared([7]) == {}, "sent once"


def test_an_earlier_sessions_output_the_master_does_not_hold_is_fetched_by_the_task_that_reads_it() -> None:
    """The master never waits for it as it sends the task (its loop would stop for up to two
    minutes while a resumed worker flushes it): the worker asks when the task reads it."""
    looked: list[tuple[int, str]] = []

    def load_output(task_id: int, name: str) -> object:
        looked.append((task_id, name))
        raise KeyError("not flushed yet")

    store = RefStore(load_output)
    earlier, put = "mexplore-ref:task/3/weights", store.put(b"data")
    assert set(store.for_worker(1, [Task(9, {"parent": earlier, "d": put})])) == {put}
    assert looked == [], "not looked for, not waited for"

    class Outputs:
        def local(self, task_id: int, name: str) -> object:
            raise KeyError(task_id)

        def remote(self, task_id: int, name: str) -> tuple[object, bytes]:
            return [task_id, name], pickle.dumps([task_id, name])

    worker = WorkerRefs(Outputs())
    assert worker.get(earlier) == [3, "weights"], "asked for as the task reads it"
    assert pickle.loads(WorkerRefs(Outputs()).held_for({"p": [earlier]})[earlier]) == [3, "weights"], \
        "fetched for a child process or a program too"


def test_a_freed_ref_is_dropped_by_the_workers_that_hold_it_with_their_next_tasks() -> None:
    store = RefStore()
    weights, data = store.put([0.5] * 100), store.put(b"data")
    worker = WorkerRefs()
    worker.received(store.for_worker(1, [Task(0, {"w": weights, "d": data})]))
    store.for_worker(2, [Task(1, {"d": data})])
    assert worker.get(weights) == [0.5] * 100
    store.free(weights)
    assert store.drops_for(2) == [], "worker 2 never had it"
    drop = store.drops_for(1)
    assert drop == [weights] and store.drops_for(1) == [], "told once"
    worker.drop(drop)
    with pytest.raises(KeyError, match="did not come with this task"):
        worker.get(weights)
    assert worker.get(data) == b"data", "the others stay"


@pytest.mark.parametrize("value", [lambda x: x, (i for i in range(3)), threading.Lock()],
                         ids=["lambda", "generator", "lock"])
def test_what_cannot_be_pickled_is_refused_where_it_is_given_naming_the_call(value):
    with pytest.raises(TypeError, match=r"queue\.put: a \w+ cannot be pickled .*refs carry data"):
        RefStore().put(value)
    with pytest.raises(TypeError, match=r"ctx\.share\('model'\): a \w+ cannot be pickled"):
        WorkerRefs().share(7, "model", value)


@pytest.mark.mpi
@pytest.mark.parametrize("kill_after", [1, 4, 6])
def test_kill_minus_9_while_refs_are_in_flight_then_resume_passes_the_right_data(tmp_path: Path, kill_after: int):
    """Killed while the 10 MB array goes out, once the parents shared their weights, or
    while children read them: the resumed run replays the parents (their shared weights
    read back from the output) and every child inherits its own parent's, each task once."""
    path = study(tmp_path, 8)
    done = killed_then_resumed(path, tmp_path, kill_after, env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == 8 == len(set(ids))
    children = [r for r in records if "parent" in r["params"]]
    assert sorted(r["metrics"]["inherited"] for r in children) == pytest.approx([0.1, 0.2, 0.3, 0.4])


@pytest.mark.mpi
def test_refs_reach_a_model_run_in_a_child_process(tmp_path: Path) -> None:
    """With isolate = true: the 10 MB array and the parents' weights go to the children
    through the task folder, and what they share comes back with their results."""
    path = study(tmp_path, 8)
    path.write_text(path.read_text().replace(":model\"", ":model\"\nisolate = true"))
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    parents, children = records[:4], records[4:]
    expected = float(sum(range(0, 10 * 2**20 // 8, 1000)))
    assert all(r["status"] == "ok" and r["metrics"]["checksum"] == expected for r in parents), records
    assert sorted(r["metrics"]["inherited"] for r in children) == [r["params"]["x"] for r in parents]


PROGRAM = '''
import json, os, sys
import numpy as np

refs = json.load(open(os.environ["MEXPLORE_REFS"]))      # parameter (or ref) -> its file
x = json.load(open(os.environ["MEXPLORE_PARAMS_FILE"]))["x"]
data, config = np.load(refs["data"]), json.load(open(refs["config"]))
blob = open(refs["blob"], "rb").read()
share = os.environ["MEXPLORE_SHARE_DIR"]
np.save(os.path.join(share, "weights.npy"), np.full(5, float(x)))
json.dump({"sum": float(data.sum()), "files": len(set(refs.values()))},
          open(os.path.join(share, "stats.json"), "w"))
open(os.path.join(share, "blob.bin"), "wb").write(blob[::-1])
json.dump({"objective": float(x), "first": float(data[0]) * config["scale"], "blob": len(blob)},
          open(os.environ["MEXPLORE_RESULT_FILE"], "w"))
'''

STEER_A_PROGRAM = '''
import json
import numpy as np


def steer(queue, space, options):
    common = {"config": queue.put({"scale": 3}), "blob": queue.put(bytes([0, 1]) + b"raw")}
    parents = queue.map([{"x": 0.1 * (i + 1), "data": queue.put(np.arange(1000.0)), **common} for i in range(2)])
    queue.map([{"x": 0.5, "data": parent.shared["weights"], **common} for parent in parents])
    seen = [{"stats": queue.get(p.shared["stats"]), "blob": list(queue.get(p.shared["blob.bin"])),
             "weights": queue.get(p.shared["weights"]).tolist()} for p in parents]
    (queue.info.output / "seen.json").write_text(json.dumps(seen))
'''


def program_study(folder: Path) -> Path:
    """Two parent programs given refs, then a child of each given its parent's shared weights."""
    (folder / "program.py").write_text(PROGRAM)
    (folder / "steer.py").write_text(STEER_A_PROGRAM)
    return write_study(folder, f"""
        [study]
        name = "program-refs"
        budget = 4
        output = "{folder / 'out'}"
        [model]
        command = ["{{python}}", "{folder / 'program.py'}"]
        [algorithm]
        name = "{folder / 'steer.py'}:steer"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)


@pytest.mark.mpi
def test_refs_reach_a_program_as_files_and_its_share_folder_comes_back(tmp_path: Path) -> None:
    """A command model reads its refs as files (an array as .npy, a dict as .json, bytes as
    they are) that $MEXPLORE_REFS names by parameter; what it writes into $MEXPLORE_SHARE_DIR
    comes back as refs a later task's program reads the same way."""
    path = program_study(tmp_path)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    assert all(r["status"] == "ok" for r in records), records
    parents, children = records[:2], records[2:]
    assert [r["metrics"] for r in parents] == [{"first": 0.0, "blob": 5}] * 2
    assert sorted(r["metrics"]["first"] for r in children) == [3 * r["params"]["x"] for r in parents]
    assert all(set(r["shared"]) == {"weights", "stats", "blob.bin"} for r in records)
    seen = json.loads((tmp_path / "out" / "seen.json").read_text())
    assert [s["stats"] for s in seen] == [{"sum": 499500.0, "files": 3}] * 2
    assert all(s["blob"] == list(b"war\x01\x00") for s in seen)
    assert [s["weights"] for s in seen] == [[r["params"]["x"]] * 5 for r in parents]


@pytest.mark.mpi
@pytest.mark.parametrize("kill_after", [1, 3])
def test_kill_minus_9_of_a_program_study_then_resume_gives_each_child_its_parents_shared_file(
    tmp_path: Path, kill_after: int,
) -> None:
    """Killed once one or three programs are journaled: the parents' shared weights.npy and
    stats.json stay in the killed run's node-local caches; the resumed children get the
    weights as files, fetched when their worker writes the ref files, and the replayed
    algorithm reads the stats back. Each task is journaled once."""
    path = program_study(tmp_path)
    done = killed_then_resumed(path, tmp_path, kill_after, env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    assert len(records) == 4 == len({r["id"] for r in records}) and all(r["status"] == "ok" for r in records)
    parents = [r for r in records if "task/" not in r["params"]["data"]]
    children = [r for r in records if "task/" in r["params"]["data"]]
    assert len(parents) == 2 and sorted(r["metrics"]["first"] for r in children) == \
        pytest.approx(sorted(3 * r["params"]["x"] for r in parents))
    seen = json.loads((tmp_path / "out" / "seen.json").read_text())
    assert [s["stats"] for s in seen] == [{"sum": 499500.0, "files": 3}] * 2, "a shared JSON value outlives a kill"


def test_a_programs_ref_files_follow_the_data_and_its_shares_read_back(tmp_path: Path) -> None:
    import numpy as np

    from mexplore.models.command_refs import read_shared_files, write_ref_files

    values = {"mexplore-ref:put/0": b"\x00raw", "mexplore-ref:put/1": "text", "mexplore-ref:put/2": np.arange(3.0),
              "mexplore-ref:task/7/cfg": {"a": [1, 2]}, "mexplore-ref:put/3": {1, 2}}
    refs = WorkerRefs()
    refs.received({ref: pickle.dumps(v) for ref, v in values.items()})
    assert write_ref_files(tmp_path, refs, {"blob": "mexplore-ref:put/0", "all": list(values)})
    assert not write_ref_files(tmp_path / "none", refs, {"x": 1.0})
    index = json.loads((tmp_path / "refs.json").read_text())
    assert [Path(index[ref]).name for ref in values] == ["put-0.bin", "put-1.txt", "put-2.npy", "task-7-cfg.json",
                                                          "put-3.pickle"]
    assert index["blob"] == index["mexplore-ref:put/0"] and Path(index["blob"]).read_bytes() == b"\x00raw"
    assert np.load(index["mexplore-ref:put/2"]).tolist() == [0.0, 1.0, 2.0]
    assert json.loads(Path(index["mexplore-ref:task/7/cfg"]).read_text()) == {"a": [1, 2]}
    share = tmp_path / "share"
    share.mkdir()
    np.save(share / "w.npy", np.ones(2))
    (share / "s.json").write_text('{"n": 1}')
    (share / "model.bin").write_bytes(b"\x01")
    shared = read_shared_files(tmp_path)
    assert shared["w"].tolist() == [1.0, 1.0] and shared["s"] == {"n": 1} and shared["model.bin"] == b"\x01"
    (share / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="bad.json is not JSON"):
        read_shared_files(tmp_path)
    (share / "bad.json").unlink()
    (share / "w.json").write_text("[1]")
    with pytest.raises(ValueError, match="two files in .* share as 'w'"):
        read_shared_files(tmp_path)


HELD_BEHIND = '''
import time
from pathlib import Path

import numpy as np


def model(params, ctx):
    if params["x"] == 0:
        ctx.share("big", np.ones(10 * 2**20 // 8))   # 10 MB: too large to go out in one eager message
        return {"objective": 0.0}
    deadline = time.monotonic() + 120                  # a ceiling: a stalled result fails the test, not hangs it
    marker = Path(__file__).with_name("seen")
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"objective": params["x"]}
'''


@pytest.mark.mpi
def test_a_large_shared_output_reaches_the_master_while_its_worker_runs_its_next_task(tmp_path: Path) -> None:
    """A worker holding queued tasks sends a result with 10 MB shared, then starts the next
    task, which runs until the test has seen that result: the data must not wait for it.
    Between nodes a large message moves only while its sender calls MPI, so the ranks talk
    as if on different nodes (``MPIR_CVAR_NOLOCAL``): on one node's shared memory the
    receiver alone moves it, and the bug this guards against would not show."""
    (tmp_path / "model.py").write_text(HELD_BEHIND)
    (tmp_path / "points.csv").write_text("x\n0\n1\n1\n1\n1\n1\n1\n1\n")
    path = write_study(tmp_path, f"""
        [study]
        name = "held"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{tmp_path / 'model.py'}:model"
        [algorithm]
        name = "points"
        file = "{tmp_path / 'points.csv'}"
        policy = "queue"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    process = start_run(path, tmp_path, until_finished=0, env={"MPIR_CVAR_NOLOCAL": "1"})
    try:
        wait_until(lambda: any(r["params"]["x"] == 0 for r in journal(tmp_path / "out"))
                   if (tmp_path / "out" / "journal.jsonl").exists() else False,
                   "the sharing task's result journaled", timeout=60, process=process)
    finally:
        (tmp_path / "seen").write_text("")
    assert process.wait(timeout=120) == 0, process.stderr.read()
