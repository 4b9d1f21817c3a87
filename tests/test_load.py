"""``ctx.load(task_id, name)``: a task reads what an earlier task saved or shared, found by
its id (the parent of population-based or incremental training), over MPI from the worker
that ran it, through the master; an earlier session's from the output directory."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import journal, killed_then_resumed, run_cli, write_study

from mexplore.comms.messages import OutputData, SendOutput
from mexplore.models import build_model
from mexplore.models.context import Context
from mexplore.models.refs import WorkerRefs, keep_shared
from mexplore.models.spec import ModelSpec
from mexplore.queue.loads import OutputLoads
from mexplore.queue.refs import OUTPUT_WAIT, RefStore
from mexplore.store.cache import TaskCache
from mexplore.store.results_file import NoOutputsFlushed, load_output
from mexplore.types import JsonValue, Result, Status, Task

MODEL = '''
import time
from pathlib import Path

import numpy as np

MARKER = Path(__file__).with_name("loaded")


def model(params, ctx):
    if params["parent"] < 0:                          # a parent: saves its weights on its node
        ctx.save("weights", np.full(1000, params["x"]))
        return {"objective": params["x"]}
    if params["owner"] == ctx.rank:                   # busy on the worker that ran the parent
        deadline = time.monotonic() + 120             # a ceiling: a wrong placement fails the test, not hangs it
        while not MARKER.exists() and time.monotonic() < deadline:
            ctx.report(0, 0.0)                        # where a busy worker answers another task's load
            time.sleep(0.005)
        return {"objective": 0.0, "served": MARKER.exists()}
    weights = ctx.load(params["parent"], params["name"])
    again = ctx.load(params["parent"], params["name"])
    if params["owner"] >= 0:
        MARKER.write_text("loaded")
    return {"objective": params["x"], "inherited": float(weights[0]), "same": again is weights}
'''

STEER = '''
def steer(queue, space, options):
    plain = {"parent": -1, "name": "weights", "owner": -1}
    parents = queue.map([{**plain, "x": 0.1 * (i + 1)} for i in range(4)])
    ids = [parent.task_id for parent in parents]
    if options.get("hold"):                           # two tasks at once: one on the parent's worker
        children = [{"x": 0.5, "parent": ids[0], "name": "weights", "owner": parents[0].rank}] * 2
    else:
        children = [{**plain, "x": 0.5, "parent": i} for i in ids] + [{**plain, "x": 0.5, "parent": ids[0],
                                                                        "name": "nothing"}]
    queue.map(children)
'''


def study(folder: Path, budget: int, hold: bool = False) -> Path:
    (folder / "model.py").write_text(MODEL)
    (folder / "steer.py").write_text(STEER)
    return write_study(folder, f"""
        [study]
        name = "load"
        budget = {budget}
        output = "{folder / 'out'}"
        [model]
        python = "{folder / 'model.py'}:model"
        on_error = "continue"
        [algorithm]
        name = "{folder / 'steer.py'}:steer"
        options = {{ hold = {str(hold).lower()} }}
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        parent = {{ type = "int", low = -1, high = 1000000000 }}
        owner = {{ type = "int", low = -1, high = 1000 }}
        name = {{ type = "categorical", choices = ["weights", "nothing"] }}
    """)


@pytest.mark.mpi
def test_children_load_their_parents_saved_weights_by_task_id(tmp_path: Path) -> None:
    done = run_cli("run", str(study(tmp_path, 9)), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    parents, children, missing = records[:4], records[4:8], records[8]
    x_of = {r["id"]: r["params"]["x"] for r in parents}
    assert all(r["status"] == "ok" for r in parents + children), [r.get("error") for r in children]
    assert [r["metrics"]["inherited"] for r in children] == [x_of[r["params"]["parent"]] for r in children]
    assert all(r["metrics"]["same"] for r in children), "a second load of the same output is the one held"
    assert missing["status"] == "failed"
    assert f"ctx.load({parents[0]['id']}, 'nothing')" in missing["error"] and "saved no 'nothing'" in missing["error"]
    assert (tmp_path / "out" / "journal.jsonl").stat().st_size < 20_000, "the weights never entered the journal"


@pytest.mark.mpi
def test_a_busy_worker_serves_its_saved_output_at_its_tasks_reports(tmp_path: Path) -> None:
    """The parent's worker runs a task that waits until the other worker's task has loaded
    the parent's weights from it: it answers at its reports, or the two would wait forever."""
    path = study(tmp_path, 6, hold=True)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    holders = [r for r in records[4:] if "served" in r["metrics"]]
    loaders = [r for r in records[4:] if "inherited" in r["metrics"]]
    assert len(holders) == 1 and holders[0]["metrics"]["served"], [r.get("error") for r in records[4:]]
    assert len(loaders) == 1 and loaders[0]["metrics"]["inherited"] == records[0]["params"]["x"]
    assert loaders[0]["rank"] != records[0]["rank"], "loaded from the other worker, not its own cache"


@pytest.mark.mpi
def test_a_resumed_run_loads_an_earlier_sessions_output_from_the_output_directory(tmp_path: Path) -> None:
    path = study(tmp_path, 4)
    first = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("run", str(path), "-n", "3", "--progress", "off", "--set", "study.budget=8", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    assert [r["metrics"]["inherited"] for r in records[4:]] == pytest.approx([0.1, 0.2, 0.3, 0.4])


@pytest.mark.mpi
@pytest.mark.parametrize("kill_after", [2, 5, 7])
def test_kill_minus_9_then_resume_children_load_the_killed_runs_outputs(tmp_path: Path, kill_after: int) -> None:
    """Killed while parents save or children load: the parents' outputs stay in the killed
    run's node-local caches, flushed by the resumed workers as they start; every child of
    the resumed run loads its own parent's, and each task is journaled once."""
    path = study(tmp_path, 9)
    done = killed_then_resumed(path, tmp_path, kill_after, env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local")})
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    assert len(records) == 9 == len({r["id"] for r in records})
    parents = {r["id"]: r["params"]["x"] for r in records if r["params"]["parent"] < 0}
    children = [r for r in records if r["params"]["parent"] >= 0 and r["params"]["name"] == "weights"]
    assert len(parents) == 4 and len(children) == 4
    assert all(r["status"] == "ok" for r in children), [r.get("error") for r in children]
    assert sorted(r["metrics"]["inherited"] for r in children) == sorted(parents.values())
    assert all(r["metrics"]["inherited"] == parents[r["params"]["parent"]] for r in children)


PARALLEL_MODEL = '''
import numpy as np


def model(params, ctx):
    if params["parent"] < 0:
        ctx.save("weights", np.full(1000, params["x"]))
        return {"objective": params["x"]}
    weights = ctx.load(params["parent"], "weights")            # every rank, at once: a collective
    total = ctx.comm.allreduce(float(weights[0]))               # the task's next collective
    return {"objective": params["x"], "inherited": float(weights[0]), "total": total}
'''

PARALLEL_STEER = '''
def steer(queue, space, options):
    parents = queue.map([{"x": 0.1 * (i + 1), "parent": -1} for i in range(2)])
    futures = [queue.submit({"x": 0.5, "parent": parent.task_id}, ranks=2) for parent in parents]
    for future in futures:
        future.result()
'''


@pytest.mark.mpi
def test_a_task_of_two_ranks_loads_a_parent_one_of_its_own_ranks_ran(tmp_path: Path) -> None:
    """Two workers: each 2-rank child spans the worker that ran its parent. Were each rank
    to load alone, the other would ask that worker while it waits in the allreduce."""
    (tmp_path / "model.py").write_text(PARALLEL_MODEL)
    (tmp_path / "steer.py").write_text(PARALLEL_STEER)
    path = write_study(tmp_path, f"""
        [study]
        name = "load-parallel"
        budget = 4
        output = "{tmp_path / 'out'}"
        [model]
        python = "{tmp_path / 'model.py'}:model"
        ranks = 1
        [algorithm]
        name = "{tmp_path / 'steer.py'}:steer"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        parent = {{ type = "int", low = -1, high = 1000000000 }}
    """)
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["id"])
    x_of = {r["id"]: r["params"]["x"] for r in records[:2]}
    children = records[2:]
    assert all(r["status"] == "ok" and sorted(r["slots"]) == [1, 2] for r in children), [r.get("error") for r in children]
    assert [r["metrics"]["inherited"] for r in children] == [x_of[r["params"]["parent"]] for r in children]
    assert [r["metrics"]["total"] for r in children] == [2 * r["metrics"]["inherited"] for r in children]


def finished(task_id: int, rank: int = 3, status: Status = Status.OK) -> Result:
    return Result(task_id=task_id, status=status, rank=rank)


def test_the_master_asks_the_worker_that_ran_a_task_once_for_every_worker_waiting() -> None:
    loads = OutputLoads(RefStore(), first_task_id=10, load_output=None)
    loads.finished([finished(10), finished(11, status=Status.FAILED), finished(12)])
    assert loads.request(1, 12, "w") == [(3, SendOutput(12, "w", 1))]
    assert loads.request(2, 12, "w") == [], "already asked: the second waits for the same answer"
    data = pickle.dumps(np.ones(3))
    assert loads.answered(OutputData(12, "w", data, requester=1)) == [(1, OutputData(12, "w", data)),
                                                                     (2, OutputData(12, "w", data))]
    assert loads.request(4, 12, "w") == [(4, OutputData(12, "w", data))], "held now: no second trip"
    (worker, answer), = loads.request(1, 11, "w")
    assert worker == 1 and answer.data is None and "task 11 has not finished ok" in answer.error
    assert loads.request(3, 10, "w") == [(3, OutputData(10, "w", local=True))], "the asker ran it: its own cache"
    loads.finished([finished(11, rank=2)])                   # retried, ok on another worker: that one holds it
    assert loads.request(1, 11, "w") == [(2, SendOutput(11, "w", 1))]
    assert loads.give_up() == [(1, OutputData(-1, "", stopping=True))], "the run stops: the asker is not left waiting"
    assert loads.request(1, "11", "w")[0][1].error == "expected an integer task id and a name"


def test_an_earlier_sessions_output_comes_from_the_output_directory_once_it_is_flushed_there() -> None:
    """A resumed worker flushes what a killed run left on its node before its first task,
    while another worker's task may already ask: the master looks again, then gives up."""
    flushed: dict[tuple[int, str], object] = {(4, "w"): np.arange(3)}
    now = [0.0]

    def load_output(task_id: int, name: str) -> object:
        if (task_id, name) in flushed:
            return flushed[(task_id, name)]
        if any(task == task_id for task, _ in flushed):
            raise KeyError(f"task {task_id} has no saved output {name!r}")
        raise NoOutputsFlushed(f"task {task_id} has no saved outputs")

    loads = OutputLoads(RefStore(), first_task_id=10, load_output=load_output, clock=lambda: now[0])
    pruned_sharing = Result(task_id=6, status=Status.PRUNED, shared={"w": "mexplore-ref:task/6/w"})
    loads.earlier([finished(task_id) for task_id in (2, 3, 4)] + [finished(5, status=Status.FAILED), pruned_sharing])
    flushed[(6, "w")] = np.zeros(1)
    (_, shared_before_its_prune), = loads.request(1, 6, "w")
    assert shared_before_its_prune.data is not None, "a pruned task's share is looked for"
    for task_id in (5, -1, -10**30):
        (_, unknown), = loads.request(1, task_id, "w")
        assert f"no task {task_id} finished ok before this session" in unknown.error, "answered at once"
    (_, found), = loads.request(1, 4, "w")
    assert list(pickle.loads(found.data)) == [0, 1, 2]
    (_, typo), = loads.request(1, 4, "wieghts")
    assert typo.data is None and "no saved output 'wieghts'" in typo.error, "beside its other outputs: at once"
    assert loads.request(1, 3, "late") == [] and loads.request(2, 3, "late") == [], "not there yet: looked for"
    now[0] += 1
    flushed[(3, "late")] = np.ones(2)
    assert [(worker, list(pickle.loads(answer.data))) for worker, answer in loads.look()] == [(1, [1, 1]), (2, [1, 1])]
    assert loads.request(1, 2, "never") == []
    now[0] += OUTPUT_WAIT / 2
    assert loads.look() == []
    now[0] += OUTPUT_WAIT
    (worker, missing), = loads.look()
    assert worker == 1 and missing.data is None and "after 120 s" in missing.error
    assert "task 2 has no saved outputs" in missing.error and loads.look() == []


def test_a_worker_reads_a_committed_task_output_from_its_log_and_from_its_packed_file(tmp_path: Path) -> None:
    cache = TaskCache(tmp_path / "cache", lambda: "node-r1.h5")
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_bytes(b"A")
    cache.save(7, "w", np.arange(4.0))
    cache.save(7, "w", np.arange(5.0))                # saved again: the last save wins
    cache.save(7, "run", folder)
    cache.save(7, "stats", JsonValue('{"sum": 3.5, "names": ["a"]}'))   # a shared dict, as JSON
    cache.save(8, "w", np.zeros(2))                   # not committed: not readable
    cache.commit(7)

    def read_all() -> tuple:
        return cache.read(7, "w").tolist(), cache.read(7, "run"), cache.read(7, "stats")

    expected = ([0.0, 1.0, 2.0, 3.0, 4.0], {"sub": {"a.txt": b"A"}}, {"sum": 3.5, "names": ["a"]})
    assert read_all() == expected
    with pytest.raises(KeyError):
        cache.read(8, "w")
    cache.flush(tmp_path / "out")                     # now in packed.h5, the log emptied
    assert read_all() == expected
    assert load_output(tmp_path / "out", 7, "stats") == expected[2], "as the output directory gives it"
    with pytest.raises(KeyError):
        cache.read(7, "missing")


def test_load_in_a_child_process_says_how_to_pass_the_output_instead() -> None:
    with pytest.raises(RuntimeError, match="isolate = true"):
        WorkerRefs().load(3, "w")


@pytest.mark.parametrize("task_id, name", [("3", "w"), (3.0, "w"), (True, "w"), (3, ""), (3, None), (3, b"w")])
def test_load_refuses_what_is_not_a_task_id_and_a_name_in_the_task(task_id, name) -> None:
    ctx = Context(task_id=9, attempt=0, rank=1, host="node", local_dir=Path("/nonexistent"), refs=WorkerRefs())
    with pytest.raises(TypeError, match="expected a task id"):
        ctx.load(task_id, name)


@pytest.mark.parametrize("value, saved", [
    ({"loss": 0.5, "names": ["a", "é"], "ok": True, "none": None}, True),
    ("label", True),
    ({1: "a"}, False),                     # int keys would come back as str
    ((1, 2), False),                       # a tuple would come back a list
    ({"loss": float("nan")}, False),       # not JSON
    ({1, 2}, False),                       # not JSON at all
])
def test_a_shared_value_is_saved_as_json_only_when_json_gives_it_back_as_it_is(value, saved) -> None:
    calls = []
    keep_shared(lambda task_id, name, kept: calls.append(kept), 3, "v", value)
    assert bool(calls) == saved
    if saved:
        assert isinstance(calls[0], JsonValue) and json.loads(calls[0].text) == value


def test_a_program_whose_ref_cannot_be_had_fails_alone(tmp_path: Path) -> None:
    """The worker fetches an earlier session's shared output for a program's ref files; one
    that cannot be had fails that task with the reason, and the worker goes on."""
    class Outputs:
        def local(self, task_id: int, name: str) -> object:
            raise KeyError(task_id)

        def remote(self, task_id: int, name: str) -> tuple[object, bytes]:
            raise KeyError(f"ctx.load({task_id}, {name!r}): no task {task_id} finished ok before this session")

    spec = ModelSpec(objectives=("y",), local_dir=str(tmp_path / "local"), command=("true",))
    model = build_model(spec, 1, "node", lambda *report, send=True: None, refs=WorkerRefs(Outputs()))
    result = model(Task(5, {"data": "mexplore-ref:task/2/weights"}))
    assert result.status is Status.FAILED
    assert "its refs could not be handed over" in result.error and "no task 2 finished ok" in result.error
