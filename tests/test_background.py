"""[algorithm] background = true: an ask/tell algorithm on a thread of its own."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import journal, run_cli, write_study

from mexplore.algorithms.base import Algorithm, StudyInfo
from mexplore.config.study import StudyFileProblem
from mexplore.queue.background import Background
from mexplore.space import Float, Space
from mexplore.types import Result, Status

SPACE = Space({"x": Float(0.0, 1.0)}, {})


class Counting(Algorithm):
    """Proposes x = 0, 1, 2... (its own ids recorded), each after a wait it is released from."""

    def __init__(self, space: Space, info: StudyInfo | None = None) -> None:
        super().__init__(space, info)
        self.release = threading.Event()
        self.threads: set[str] = set()
        self.ids: list[int] = []
        self.told: list[tuple[int, float]] = []

    def propose(self, task_ids: range) -> list[dict]:
        self.threads.add(threading.current_thread().name)
        assert self.release.wait(30)
        self.ids += task_ids
        return [{"x": float(len(self.ids) - 1)}]

    def tell(self, results: list[Result]) -> None:
        self.told += [(r.task_id, r.objective) for r in results]

    def report(self, task_id: int, step: float, value: float) -> bool:
        return task_id == 0


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_proposals_come_from_the_thread_as_they_are_ready_and_results_map_back():
    inner = Counting(SPACE)
    algorithm = Background(inner)
    assert algorithm.propose(range(10, 12)) == []  # asked: none ready yet, the master goes on
    inner.release.set()
    wait_for(lambda: len(algorithm._ready) == 2, "two proposals computed")
    assert algorithm.propose(range(10, 12)) == [{"x": 0.0}, {"x": 1.0}]
    assert inner.threads == {"mexplore-algorithm"}
    assert algorithm.report(10, 1.0, 0.5) is True and algorithm.report(11, 1.0, 0.5) is False
    algorithm.tell([Result(task_id=11, params={"x": 1.0}, status=Status.OK, objective=5.0)])
    assert algorithm.propose(range(12, 13)) == []
    wait_for(lambda: len(algorithm._ready) == 1, "a third proposal")
    assert inner.told == [(1, 5.0)], "the engine's task 11 is the algorithm's own proposal 1"
    assert algorithm.propose(range(12, 13)) == [{"x": 2.0}]
    assert algorithm.take_thread_seconds() > 0 and algorithm.take_thread_seconds() == 0.0, "billed once"
    algorithm.close()


def test_an_exception_in_the_thread_reaches_the_masters_next_call():
    class Broken(Counting):
        def propose(self, task_ids: range) -> list[dict]:
            raise ValueError("the sampler broke")

    algorithm = Background(Broken(SPACE))
    assert algorithm.propose(range(1)) == []
    wait_for(lambda: algorithm._error is not None, "the error handed over")
    with pytest.raises(ValueError, match="the sampler broke"):
        algorithm.propose(range(1))
    algorithm.close()


def test_background_is_refused_for_an_algorithm_that_has_its_own_thread(tmp_path):
    (tmp_path / "steer.py").write_text("def steer(queue, space, options):\n    queue.map([{'x': 0.5}])\n")
    path = write_study(tmp_path, f"""
        [study]
        name = "bg"
        [model]
        python = "{tmp_path / 'm.py'}:f"
        [algorithm]
        name = "{tmp_path / 'steer.py'}:steer"
        background = true
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    (tmp_path / "m.py").write_text("def f(params, ctx):\n    return params['x']\n")
    from mexplore.config import load_study
    from mexplore.runtime.session import study_algorithm

    with pytest.raises(StudyFileProblem, match="background = true: .* already runs on a thread of its own"):
        study_algorithm(load_study(path), 2, 1)


@pytest.mark.mpi
def test_tpe_in_the_background_runs_the_budget_exactly_and_resumes(tmp_path):
    (tmp_path / "m.py").write_text("import time\ndef f(params, ctx):\n    time.sleep(0.01)\n"
                                   "    return (params['x'] - 0.3) ** 2\n")
    path = write_study(tmp_path, f"""
        [study]
        name = "bg"
        budget = 40
        output = "{tmp_path / 'out'}"
        [model]
        python = "{tmp_path / 'm.py'}:f"
        [algorithm]
        name = "optuna.tpe"
        background = true
        seed = 3
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert sorted(r["id"] for r in records) == list(range(40)) and all(r["status"] == "ok" for r in records)
    assert min(r["objective"] for r in records) < 0.01, "TPE learned through the thread"
    assert "background = true" in (tmp_path / "out" / "study.toml").read_text()
    more = run_cli("run", str(path), "-n", "4", "--progress", "off", "--set", "study.budget=50", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    ids = [r["id"] for r in journal(tmp_path / "out")]
    assert len(ids) == len(set(ids)) == 50 and set(range(40)) <= set(ids), "resumed: 10 more, none twice"
