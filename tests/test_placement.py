"""Placing tasks of several ranks on the job's worker slots (sans-I/O: no MPI here).

The MPI side (real communicators, nested mpiexec) is in ``test_parallel_tasks.py``.
"""

import random

import pytest

from mexplore.errors import AlgorithmError
from mexplore.queue.dispatch import PlacingDispatcher
from mexplore.queue.placement import Placement
from mexplore.queue.policies import Async
from mexplore.types import Result, Shape, Status

TWO_NODES = {1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "b"}  # the master sits on a


def test_a_task_that_fits_a_node_goes_on_the_fullest_node_that_holds_it():
    place = Placement(TWO_NODES)
    assert place.take(Shape(ranks=2)) == ([1, 2], ["a", "a"])  # a has 3 free, b 4: best fit is a
    assert place.take(Shape(ranks=2)) == ([4, 5], ["b", "b"])  # a has 1 left now
    assert place.take(Shape(ranks=3)) is None  # 1 free on a, 2 on b: no node holds 3
    assert place.free_count == 3
    place.give_back([1, 2])
    assert place.take(Shape(ranks=3)) == ([1, 2, 3], ["a", "a", "a"])


def test_a_task_larger_than_any_node_takes_whole_idle_nodes():
    place = Placement(TWO_NODES)
    slots, hosts = place.take(Shape(ranks=5))
    assert slots[:5] == [4, 5, 6, 7, 1] and hosts[:5] == ["b"] * 4 + ["a"]
    assert sorted(slots) == list(range(1, 8))  # the rest of node a is held: no other task shares it
    assert place.free_count == 0


def test_nodes_spreads_the_ranks_evenly_over_whole_nodes():
    place = Placement(TWO_NODES)
    slots, hosts = place.take(Shape(ranks=4, nodes=2))
    assert hosts[:4].count("a") == 2 and hosts[:4].count("b") == 2
    assert sorted(slots) == list(range(1, 8))
    place.give_back(slots)
    assert place.take(Shape(ranks=1, nodes=1)) == ([4, 5, 6, 7], ["b"] * 4)  # a whole node, for one rank


@pytest.mark.parametrize(("shape", "why"), [
    (Shape(ranks=8), "needs 8 ranks and the job has 7 worker slots"),
    (Shape(ranks=3, nodes=3), "needs 3 nodes"),
    (Shape(ranks=1, nodes=2), "cannot be spread over 2 nodes"),
    (Shape(ranks=7, nodes=2), "needs 4 slots per node"),
])
def test_a_shape_that_can_never_fit_says_why(shape, why):
    assert why in Placement(TWO_NODES).never_fits(shape)
    assert Placement(TWO_NODES).never_fits(Shape(ranks=6, nodes=2)) is None


def _dispatcher(hosts, all_run=True, retries=0, budget=None):
    return PlacingDispatcher(hosts, lambda p, kind: Shape(ranks=p["n"], nodes=p.get("nodes", 0)), {None: all_run},
                             Async(), budget, retries)


def _answer(task, worker, status=Status.OK):
    return Result(task_id=task.id, status=status, objective=1.0 if status is Status.OK else None,
                  started=float(worker), ended=10.0 + worker, rank=worker, error=None if status is Status.OK else "x")


def test_random_mixes_never_oversubscribe_and_every_task_runs_once():
    rng = random.Random(7)
    d = _dispatcher(TWO_NODES, budget=300)
    busy: dict[int, int] = {}  # slot -> the task holding it
    running: dict[int, tuple] = {}  # task id -> (task, runners still to answer)
    done: list[int] = []
    while d.finished < 300:
        if want := d.wanted():
            d.propose([{"n": rng.choice((1, 1, 1, 2, 3, 5))} for _ in range(min(want, 3))])
        for worker, (task,) in d.assign():
            for slot in task.group.slots:
                assert busy.get(slot, task.id) == task.id, "a slot given to two tasks at once"
                busy[slot] = task.id
            running.setdefault(task.id, (task, set(task.group.runners)))
        assert running, "nothing runs although slots are free"
        task_id = rng.choice(sorted(running))
        task, left = running[task_id]
        worker = left.pop()
        final, _ = d.complete(worker, [_answer(task, worker)])
        del busy[worker]  # a rank that has answered is free at once
        if not left:
            del running[task_id]
            for slot in set(task.group.slots) - set(task.group.runners):
                del busy[slot]
            assert [t.id for t, _ in final] == [task_id]
            assert final[0][1].slots == list(task.group.slots)
            done.append(task_id)
    assert sorted(done) == list(range(300)) and d.idle


def test_a_large_task_is_passed_by_at_most_as_many_tasks_as_the_job_has_slots():
    d = _dispatcher({1: "a", 2: "a", 3: "a", 4: "a"})
    d.propose([{"n": 1}, {"n": 4}] + [{"n": 1}] * 40)
    running = {task.id: task for _, (task,) in d.assign()}
    assert 1 not in running  # the 4-rank task waits: slot 1 holds task 0
    started_past = len(running) - 1
    while 1 not in running:
        task_id = min(running)
        task = running.pop(task_id)
        d.complete(task.group.leader, [_answer(task, task.group.leader)])
        fresh = {task.id: task for _, (task,) in d.assign()}
        started_past += len([i for i in fresh if i != 1])
        running.update(fresh)
    assert started_past <= 4
    assert running[1].group.slots == (1, 2, 3, 4)


def test_tasks_of_whole_nodes_that_wait_are_not_all_tried_each_round():
    """A whole-node task's ranks free their slots one by one, and each freed slot asks for
    a proposal that cannot run there, until as many wait as the job has slots; every round
    tried each of them (milliseconds per task at thousands of workers). A round now stops
    trying once no waiting task's need can be met."""
    rng = random.Random(3)
    hosts = {rank: f"n{(rank - 1) // 4}" for rank in range(1, 33)}  # 8 nodes of 4 slots
    d = _dispatcher(hosts, budget=120)
    takes = 0
    take = d.placement.take

    def counted(*args):
        nonlocal takes
        takes += 1
        return take(*args)

    d.placement.take = counted
    running: dict[int, tuple] = {}
    while d.finished < 120:
        if want := d.wanted():
            d.propose([{"n": 4, "nodes": 1}] * want)
        takes = 0
        sends = d.assign()
        placed = {task.id for _, (task,) in sends}
        assert takes <= len(placed) + 1, "a round tried more waiting tasks than it placed, plus one"
        assert len(d.pending) <= 32, "no more wait than the job has slots"
        for worker, (task,) in sends:
            running.setdefault(task.id, (task, set()))[1].add(worker)
        task_id = rng.choice(sorted(running))
        task, left = running[task_id]
        worker = left.pop()
        d.complete(worker, [_answer(task, worker)])
        if not left:
            del running[task_id]


def test_a_follower_that_fails_fails_the_task_and_a_retry_is_placed_again():
    d = _dispatcher({1: "a", 2: "a", 3: "a"}, retries=1)
    d.propose([{"n": 2}])
    (leader, (task,)), (follower, _) = d.assign()
    assert d.placement.free_count == 1
    assert d.complete(leader, [_answer(task, leader)]) == ([], [])  # waits for its other rank
    assert d.placement.free_count == 2  # the leader's slot is free at once
    final, retried = d.complete(follower, [_answer(task, follower, Status.FAILED)])
    assert final == [] and retried[0].status is Status.FAILED and "rank 2 of the task's 2" in retried[0].error
    again = d.assign()
    assert [t.attempt for _, (t,) in again] == [1, 1] and again[0][1][0].group is not None
    assert d.complete(again[0][0], [_answer(task, again[0][0])]) == ([], [])
    assert d.complete(again[0][0], [_answer(task, again[0][0])]) == ([], [])  # a duplicate is dropped


def test_a_command_task_is_sent_to_its_leader_alone_and_holds_the_other_slots():
    d = _dispatcher({1: "a", 2: "a", 3: "a"}, all_run=False)
    d.propose([{"n": 3}, {"n": 1}])
    sends = d.assign()
    assert [(w, t.id) for w, (t,) in sends] == [(1, 0)]
    final, _ = d.complete(1, [_answer(sends[0][1][0], 1)])
    assert final[0][1].slots == [1, 2, 3] and d.placement.free_count == 3


def test_a_proposal_that_can_never_fit_stops_the_run_with_the_reason():
    d = _dispatcher({1: "a", 2: "a"})
    with pytest.raises(AlgorithmError, match="needs 3 ranks and the job has 2 worker slots"):
        d.propose([{"n": 3}])
    assert d.next_id == 0 and not d.pending  # never numbered


FOUR_GPUS = {1: "1", 2: "2", 3: "3", 4: "0", 5: "1", 6: "2", 7: "3"}  # local rank mod 4; node b wraps to 0 at 4
GPU_NODES = {1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "b"}


def test_a_task_with_gpus_takes_slots_owning_that_many_distinct_gpus_on_one_node():
    place = Placement(GPU_NODES, {1: "1", 2: "2", 3: "3", 4: "0", 5: "1", 6: "2", 7: "3"})
    slots, hosts = place.take(Shape(ranks=1, gpus=2))
    assert hosts == ["a", "a"] and len(slots) == 2  # one runs, the other is held for its GPU
    assert place.gpus_of(slots, 2) == ("1", "2")
    assert place.take(Shape(ranks=1, gpus=2)) == ([4, 5], ["b", "b"])  # a has one GPU left
    assert place.take(Shape(ranks=1, gpus=3)) is None
    assert Placement(GPU_NODES, FOUR_GPUS).never_fits(Shape(gpus=4)) is None


def test_gpus_that_no_node_has_can_never_fit():
    assert "at most 4" in Placement(GPU_NODES, FOUR_GPUS).never_fits(Shape(gpus=5))
    assert "MEXPLORE_GPUS_PER_NODE" in Placement(GPU_NODES).never_fits(Shape(gpus=1))
    big_without_gpus = {**{rank: "big" for rank in range(1, 9)}, 9: "small", 10: "small"}
    placement = Placement(big_without_gpus, {9: "0", 10: "1"})  # 8 slots and no GPU; 2 slots and 2 GPUs
    assert "no node of the job has both" in placement.never_fits(Shape(ranks=4, gpus=1)), "it would wait for good"
    assert placement.never_fits(Shape(ranks=2, gpus=2)) is None


def test_shared_gpus_are_never_given_to_two_tasks_at_once():
    shared = {1: "0", 2: "1", 3: "0", 4: "1"}  # 4 slots, 2 GPUs: two slots own each GPU
    d = PlacingDispatcher({w: "a" for w in shared}, lambda p, kind: Shape(gpus=p["g"]), {None: False}, Async(), None,
                          gpus=shared)
    d.propose([{"g": 1}, {"g": 1}, {"g": 1}])
    sends = d.assign()
    assert sorted(task.group.gpus for _, (task,) in sends) == [("0",), ("1",)]  # the third waits
    first = sends[0][1][0]
    d.complete(sends[0][0], [_answer(first, sends[0][0])])
    [(_, (third,))] = d.assign()
    assert third.group.gpus == first.group.gpus  # the freed GPU, and only then


def uneven_nodes(chance: random.Random, nodes: int) -> dict[int, str]:
    """Worker ranks on ``nodes`` nodes of 1 to 6 slots each."""
    hosts = {}
    for node in range(nodes):
        for _ in range(chance.randint(1, 6)):
            hosts[len(hosts) + 1] = f"n{node:02d}"
    return hosts


def test_the_fullest_fitting_node_found_from_buckets_is_the_one_a_look_at_every_node_finds():
    """Tasks on one node take the node with the fewest free slots that holds them, the first
    of such nodes in node order; the buckets that find it without looking at every node
    agree with that look over thousands of random takes and give-backs on uneven nodes."""
    chance = random.Random(7)
    placement = Placement(uneven_nodes(chance, 60))
    held: list[list[int]] = []
    for _ in range(5000):
        if held and (chance.random() < 0.45 or placement.free_count < 6):
            placement.give_back(held.pop(chance.randrange(len(held))))
            continue
        ranks = chance.randint(1, 6)
        free = {node: set(slots) for node, slots in placement._free.items()}
        fitting = [node for node, slots in free.items() if len(slots) >= ranks]
        expected = None
        if fitting:
            node = min(fitting, key=lambda name: len(free[name]))
            expected = (sorted(free[node])[:ranks], [node] * ranks)
        taken = placement.take(Shape(ranks=ranks))
        assert taken == expected
        if taken is not None:
            held.append(taken[0])
    assert placement.free_count == sum(len(slots) for slots in placement._free.values())


def test_with_pools_every_choice_is_the_one_a_look_at_every_slot_finds():
    """Pools move slots while tasks run; the counts of free slots by pool and node that
    find a node without looking at every slot agree with that look, over thousands of
    random takes, give-backs and moves of free and held slots."""
    chance = random.Random(11)
    hosts = uneven_nodes(chance, 40)
    placement = Placement(hosts)
    for slot in hosts:
        placement.moved(slot, chance.choice("abs"))
    held: list[list[int]] = []
    for _ in range(5000):
        roll = chance.random()
        if held and (roll < 0.4 or placement.free_count < 6):
            placement.give_back(held.pop(chance.randrange(len(held))))
        elif roll < 0.55:  # into a pool no slot was in before, now and then
            placement.moved(chance.choice(list(hosts)), chance.choice("abs") if roll < 0.54 else f"new{roll}")
        else:
            pools, ranks = frozenset(chance.choice(["a", "as", "s"])), chance.randint(1, 6)
            free = {node: {slot for slot in slots if placement.pool_of[slot] in pools}
                    for node, slots in placement._free.items()}
            most = max(sum(placement.pool_of[slot] in pools for slot in slots) for slots in placement.slots_of.values())
            taken = placement.take(Shape(ranks=ranks), pools)
            if most >= ranks:  # on one node: the fewest free slots of the pools that hold it, the first such node
                fitting = [node for node, slots in free.items() if len(slots) >= ranks]
                node = min(fitting, key=lambda name: len(free[name])) if fitting else None
                assert taken == (None if node is None else (sorted(free[node])[:ranks], [node] * ranks))
            elif sum(map(len, free.values())) < ranks:
                assert taken is None
            else:  # spread over the nodes with most of them, the most first (in node order among equals)
                assert taken == spread_over_nodes(placement, free, ranks)
            if taken is not None:
                held.append(taken[0])
        by_pool = {}
        for slots in placement._free.values():
            for slot in slots:
                by_pool[placement.pool_of[slot]] = by_pool.get(placement.pool_of[slot], 0) + 1
        assert {pool: n for pool, n in placement.free_by_pool.items() if n} == by_pool
    assert placement.free_count == sum(len(slots) for slots in placement._free.values())


def spread_over_nodes(placement: Placement, free: dict[str, set[int]], ranks: int) -> tuple[list[int], list[str]]:
    """A pool's free slots over as few nodes as hold ``ranks``, the nodes with most first."""
    chosen: list[int] = []
    for node in sorted(free, key=lambda name: -len(free[name])):
        chosen += sorted(free[node])[:ranks - len(chosen)]
    return chosen, [placement.node_of[slot] for slot in chosen]


def look_at_every_slot(placement: Placement, shape: Shape, pools) -> tuple[list[int], list[str]] | None:
    """What the placement rule (the module's docstring) chooses, found by looking at every
    node and slot."""
    nodes = list(placement.slots_of)  # node order
    free = {node: sorted(slot for slot in placement._free[node] if pools is None or placement.pool_of[slot] in pools)
            for node in nodes}
    size = {node: len(slots) for node, slots in placement.slots_of.items()}
    if shape.gpus:
        choices = []
        for at, node in enumerate(nodes):
            owners, in_use = {}, placement._gpus_in_use[node]
            for slot in free[node]:
                gpu = placement.gpu_of[slot]
                if gpu is not None and gpu not in owners and gpu not in in_use and len(owners) < shape.gpus:
                    owners[gpu] = slot
            chosen = list(owners.values()) + [slot for slot in free[node] if slot not in owners.values()]
            chosen = chosen[:max(len(owners), shape.ranks)]
            if len(owners) == shape.gpus and len(chosen) >= shape.ranks:
                choices.append((len(free[node]), at, chosen))
        if not choices:
            return None
        _, at, chosen = min(choices)
        return chosen, [nodes[at]] * len(chosen)
    most = max(sum(pools is None or placement.pool_of[slot] in pools for slot in placement.slots_of[node])
               for node in nodes)
    if not shape.nodes and shape.ranks <= most:
        fitting = [node for node in nodes if len(free[node]) >= shape.ranks]
        if not fitting:
            return None
        node = min(fitting, key=lambda name: len(free[name]))
        return free[node][:shape.ranks], [node] * shape.ranks
    if not shape.nodes and pools is not None:
        return spread_over_nodes(placement, free, shape.ranks) if sum(map(len, free.values())) >= shape.ranks else None
    idle = sorted((node for node in nodes if len(free[node]) == size[node]), key=lambda name: -size[name])
    if shape.nodes:
        per_node = -(-shape.ranks // shape.nodes)
        chosen = [node for node in idle if size[node] >= per_node][:shape.nodes]
        if len(chosen) < shape.nodes:
            return None
        counts = [shape.ranks // shape.nodes + (i < shape.ranks % shape.nodes) for i in range(shape.nodes)]
    else:
        chosen, held = [], 0
        for node in idle:
            if held >= shape.ranks:
                break
            chosen.append(node)
            held += size[node]
        if held < shape.ranks:
            return None
        counts = [min(size[node], shape.ranks - sum(size[n] for n in chosen[:i])) for i, node in enumerate(chosen)]
    runners = [slot for node, count in zip(chosen, counts) for slot in placement.slots_of[node][:count]]
    reserved = [slot for node in chosen for slot in placement.slots_of[node] if slot not in runners]
    return runners + reserved, [placement.node_of[slot] for slot in runners + reserved]


@pytest.mark.parametrize("seed", range(3))
def test_whole_nodes_and_gpus_found_from_buckets_are_what_a_look_at_every_slot_finds(seed):
    """Tasks of whole nodes, of GPUs and of ranks, with and without pools, are placed from
    buckets kept up to date (not by looking at every node, which cost milliseconds per
    task at thousands of nodes); over thousands of random takes, give-backs of slots and
    GPUs, and moves of slots between pools, every choice is the one a look at every slot
    makes."""
    chance = random.Random(seed)
    hosts = uneven_nodes(chance, 30)
    gpus_per_node = {node: chance.choice([0, 1, 2, 4]) for node in set(hosts.values())}
    local: dict[str, int] = {}
    gpus = {}
    for slot, node in hosts.items():
        local[node] = local.get(node, -1) + 1
        gpus[slot] = str(local[node] % gpus_per_node[node]) if gpus_per_node[node] else None
    placement = Placement(hosts, gpus)
    for slot in hosts:
        placement.moved(slot, chance.choice("ab"))
    held: list[tuple[list[int], str, tuple[str, ...]]] = []
    for _ in range(4000):
        roll = chance.random()
        if held and (roll < 0.4 or placement.free_count < 4):
            slots, node, taken_gpus = held.pop(chance.randrange(len(held)))
            placement.give_back(slots)
            if taken_gpus:
                placement.give_back_gpus(node, taken_gpus)
        elif roll < 0.5:
            placement.moved(chance.choice(list(hosts)), chance.choice("ab"))
        else:
            pools = chance.choice([None, frozenset("a"), frozenset("ab")])
            shape = chance.choice([Shape(ranks=chance.randint(1, 3), gpus=chance.randint(1, 3)),
                                   Shape(ranks=chance.randint(1, 8), nodes=chance.randint(1, 2)),
                                   Shape(ranks=chance.randint(1, 14))])
            expected = look_at_every_slot(placement, shape, pools)
            taken = placement.take(shape, pools)
            assert taken == expected, (shape, pools)
            if taken is not None:
                taken_gpus = placement.gpus_of(taken[0], shape.gpus) if shape.gpus else ()
                held.append((taken[0], taken[1][0], taken_gpus))
    assert placement.free_count == sum(len(slots) for slots in placement._free.values())
