"""Agents (``mexplore.Agents``): methods in threads of their own sharing the IoC queue,
handlers fed each N results, one exception stopping the run; without MPI, then under it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import journal, run_cli, small_space
from test_futures import serve

from mexplore import Agents, agent, on_results
from mexplore.algorithms.base import StudyInfo
from mexplore.queue.agents import as_run_function
from mexplore.queue.build import build_algorithm
from mexplore.queue.futures import ImperativeAlgorithm


class Sweep(Agents):
    seen: list

    def setup(self):
        self.batches = []

    @agent
    def explore(self):
        futures = [self.queue.submit({**self.space.sample(self.rng)}) for _ in range(12)]
        for future in futures:
            future.result()

    @on_results(every=4)
    def count(self, results):
        self.batches.append(len(results))
        Sweep.seen = self.batches


def test_an_agent_and_a_handler_fed_every_four_results():
    algorithm = ImperativeAlgorithm(as_run_function(Sweep), small_space(), StudyInfo(seed=3))
    assert serve(algorithm) == 12
    assert Sweep.seen == [4, 4, 4]
    assert algorithm.name == "Sweep"


class Broken(Agents):
    @agent
    def explore(self):
        self.queue.map([self.space.sample(self.rng) for _ in range(2)])
        threading.Event().wait(30)  # would wait; the handler's error ends the campaign first

    @on_results(every=1)
    def fails(self, results):
        raise RuntimeError("the surrogate diverged")


def test_an_exception_in_a_handler_stops_the_campaign_and_reaches_the_master():
    algorithm = ImperativeAlgorithm(as_run_function(Broken), small_space(), StudyInfo(seed=3))
    with pytest.raises(RuntimeError, match="the surrogate diverged"):
        serve(algorithm)


def test_a_campaign_needs_an_agent_and_is_built_by_name(tmp_path):
    (tmp_path / "campaign.py").write_text(
        "from mexplore import Agents, on_results\n\n\nclass Idle(Agents):\n"
        "    @on_results()\n    def react(self, results):\n        pass\n")
    algorithm = build_algorithm(f"{tmp_path / 'campaign.py'}:Idle", small_space(), StudyInfo(), {})
    with pytest.raises(TypeError, match="Idle has no @agent method"):
        for _ in range(200):
            algorithm.propose(range(1))
            threading.Event().wait(0.005)


CAMPAIGN = '''
from mexplore import Agents, agent, on_results


class ActiveLearning(Agents):
    """Colmena's pattern: simulations on their pool, a surrogate retrained every 4 results
    on its own pool, the waiting candidates reprioritized by its fit."""

    def setup(self):
        self.pending = [self.queue.submit(self.space.sample(self.rng)) for _ in range(40)]
        self.points = []

    @agent
    def simulate(self):
        for future in self.pending:
            future.result()

    @on_results(kind="simulate", every=4)
    def retrain(self, results):
        self.points += [(r.params["x"], r.objective) for r in results if r.ok]
        xs, ys = zip(*self.points)
        fit = self.queue.submit({"xs": list(xs), "ys": list(ys)}, kind="train").result()
        waiting = [f for f in self.pending if f.status == "queued"]
        coef = fit.metrics["coef"]
        self.queue.set_priorities(waiting, [-(coef[0] * f.params["x"] ** 2 + coef[1] * f.params["x"] + coef[2])
                                            for f in waiting])
'''


@pytest.mark.mpi
def test_an_active_learning_campaign_of_agents_on_two_pools(tmp_path: Path) -> None:
    from test_task_kinds import study

    path = study(tmp_path, "budget = 20")
    path.write_text(path.read_text().replace("budget = 12\n", "")
                    .replace("[algorithm]", "[pools]\ntrain = 1\n[algorithm]")
                    .replace(":steer", ":ActiveLearning"))
    (tmp_path / "steer.py").write_text(CAMPAIGN)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path,
                   env={"SIMULATE_SECONDS": "0.02"})
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    simulations = [r for r in records if "kind" not in r]
    trainings = [r for r in records if r.get("kind") == "train"]
    assert len(simulations) == 20 and len(trainings) >= 3, "a training per 4 simulations, until the budget"
    assert len({r["rank"] for r in trainings}) == 1 and trainings[0]["rank"] not in {r["rank"] for r in simulations}
