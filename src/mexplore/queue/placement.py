"""Where a parallel task runs: the job's worker slots by node, and the rule that picks them.

Pure bookkeeping (no MPI, no files): the :class:`~.dispatch.PlacingDispatcher` asks it for
slots when a task of several ranks is handed out and gives them back when it ends. Every
worker rank is one slot; a slot runs one task at a time, so the allocation is never
oversubscribed however tasks of different sizes mix.

The rule, in the order tasks wait:

- a task of R ranks with no ``nodes`` goes on one node when R fits on any node of the job
  (the node with the fewest free slots that still holds it, so large holes stay whole);
  when R is more than any node has, it takes as few whole free nodes as hold R;
- a task with ``nodes = N`` takes N whole free nodes (no other task shares them) and its
  R ranks are spread evenly over them;
- a task with ``gpus = G`` goes on one node, on free slots that own G distinct GPUs
  (slots owning a GPU not yet taken first); it holds more slots than its ranks when they
  own fewer GPUs than it needs, so no other task runs on its GPUs;
- a task that cannot be placed now lets the tasks behind it pass, but only until as many
  have started past it as the job has slots: from then on nothing starts before it, so
  the slots it needs free up and a stream of small tasks cannot starve a large one.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Mapping

from ..types import Group, Shape


class Placement:
    """The free worker slots of each node and the choice of slots for a task.

    ``hosts`` maps each worker rank to its node and ``gpus`` (if given) to the GPU it owns
    or None. A node's slots are its worker ranks, in rank order (on the master's node, one
    fewer than elsewhere).

    With ``[pools]`` each slot is in one pool (``pool_of``, kept up to date by
    :meth:`moved`) and a task may take only slots of the pools that run its kind. For each
    set of pools a task asks for, the free slots of those pools are counted node by node
    and the nodes bucketed by that count (an :class:`_Index`, built at the first such
    task and kept up to date after), so finding a node for a task costs the same with 10
    workers or 100,000, pools or not."""

    def __init__(self, hosts: Mapping[int, str], gpus: Mapping[int, str | None] | None = None) -> None:
        self.node_of = dict(hosts)
        self.gpu_of = {rank: (gpus or {}).get(rank) for rank in self.node_of}
        self.slots_of: dict[str, tuple[int, ...]] = {}
        for rank in sorted(self.node_of):
            node = self.node_of[rank]
            self.slots_of[node] = (*self.slots_of.get(node, ()), rank)
        self._free: dict[str, set[int]] = {node: set(slots) for node, slots in self.slots_of.items()}
        self._gpus_in_use: dict[str, set[str]] = {node: set() for node in self.slots_of}
        self.free_count = len(self.node_of)
        self.largest = max((len(slots) for slots in self.slots_of.values()), default=0)
        self._nodes = list(self.slots_of)  # in order: a node's index breaks ties between nodes
        self._index = {node: index for index, node in enumerate(self._nodes)}
        self.pool_of: dict[int, Hashable] = dict.fromkeys(self.node_of)
        self.free_by_pool: dict[Hashable, int] = {None: self.free_count}
        self._everything = _Index(None, self.largest, [len(slots) for slots in self.slots_of.values()],
                                  [len(slots) for slots in self.slots_of.values()])
        self._indexes: dict[frozenset[Hashable], _Index] = {}

    # -- questions ----------------------------------------------------------------------
    def never_fits(self, shape: Shape) -> str | None:
        """Why a task of this shape can never be placed in this job, or None if it can."""
        total, nodes = len(self.node_of), len(self.slots_of)
        if shape.gpus:
            most = max((len(self._gpus(slots)) for slots in self.slots_of.values()), default=0)
            if shape.nodes > 1 or shape.ranks > self.largest:
                return "a task with gpus runs on one node and it needs more ranks or nodes than one node has"
            if shape.gpus > most:
                where = f"the job's nodes have at most {most}" if most else \
                    "the job's workers have none (MEXPLORE_GPUS_PER_NODE, or the site's gpus_per_node, is not set)"
                return f"it needs {shape.gpus} GPUs on one node and {where}"
        if shape.ranks > total:
            return f"it needs {shape.ranks} ranks and the job has {total} worker slots"
        if shape.nodes > nodes:
            return f"it needs {shape.nodes} nodes and the job's workers are on {nodes}"
        if shape.nodes and shape.ranks < shape.nodes:
            return f"{shape.ranks} ranks cannot be spread over {shape.nodes} nodes"
        if shape.nodes:
            smallest = sorted(len(slots) for slots in self.slots_of.values())[-shape.nodes]
            if -(-shape.ranks // shape.nodes) > smallest:
                return (f"{shape.ranks} ranks over {shape.nodes} nodes needs {-(-shape.ranks // shape.nodes)} "
                        f"slots per node and the job's {shape.nodes} largest nodes have {smallest} or more")
        return None

    # -- choices ------------------------------------------------------------------------
    def take(self, shape: Shape, pools: frozenset[Hashable] | None = None) -> tuple[list[int], list[str]] | None:
        """Slots for a task of ``shape`` (leader first) and their nodes, now taken; None
        when they are not free now. With ``pools``, only slots of those pools are taken (the
        pools that run the task's kind), and a node is whole only when every one of its
        slots is free and in them; a task of ``ranks`` alone that no node has enough slots
        of those pools for is spread over several nodes' (the pool's slots are split over
        nodes)."""
        index = self._everything if pools is None else self._index_of(pools)
        if pools is not None and not (shape.gpus or shape.nodes) and index.most_on_a_node() < shape.ranks:
            return self._spread(shape.ranks, self._free_in(pools))
        if shape.nodes == 0 and shape.ranks <= self.largest and not shape.gpus:
            return self._on_one_node(shape.ranks, index)
        free = self._free if pools is None else self._free_in(pools)
        if shape.gpus:
            return self._with_gpus(shape, free)
        return self._on_whole_nodes(shape, free)

    def moved(self, slot: int, pool: Hashable) -> None:
        """The slot is now in ``pool`` (a pool resized)."""
        before = self.pool_of[slot]
        if before == pool:
            return
        self.pool_of[slot] = pool
        self.free_by_pool.setdefault(pool, 0)
        node = self._index[self.node_of[slot]]
        is_free = slot in self._free[self.node_of[slot]]
        if is_free:
            self.free_by_pool[before] -= 1
            self.free_by_pool[pool] += 1
        for index in self._indexes.values():
            change = (pool in index.pools) - (before in index.pools)
            if change:
                index.totals_moved(node, change)
                if is_free:
                    index.by_free.add(node, change)

    def _index_of(self, pools: frozenset[Hashable]) -> _Index:
        if (index := self._indexes.get(pools)) is None:  # a set of pools not asked for before: O(slots), once
            free = [sum(self.pool_of[slot] in pools for slot in self._free[node]) for node in self._nodes]
            totals = [sum(self.pool_of[slot] in pools for slot in self.slots_of[node]) for node in self._nodes]
            index = self._indexes[pools] = _Index(pools, self.largest, free, totals)
        return index

    def _free_in(self, pools: frozenset[Hashable]) -> dict[str, set[int]]:
        """Each node's free slots of ``pools``: a look at every slot, for the rarer shapes."""
        return {node: {slot for slot in slots if self.pool_of[slot] in pools} for node, slots in self._free.items()}

    def _spread(self, ranks: int, free: Mapping[str, set[int]]) -> tuple[list[int], list[str]] | None:
        """A pool's slots lie on several nodes and no node has enough of them for the task:
        it takes free ones over as few nodes as hold it (else it would wait for good)."""
        chosen: list[int] = []
        for node in sorted(free, key=lambda name: -len(free[name])):
            chosen += sorted(free[node])[:ranks - len(chosen)]
            if len(chosen) == ranks:
                for taken_node in {self.node_of[slot] for slot in chosen}:
                    self._take(taken_node, [slot for slot in chosen if self.node_of[slot] == taken_node])
                return chosen, [self.node_of[slot] for slot in chosen]
        return None

    def free_slots(self) -> list[int]:
        """The slots no task holds now."""
        return [slot for slots in self._free.values() for slot in slots]

    def give_back(self, slots: Iterable[int]) -> None:
        for rank in slots:
            node = self.node_of[rank]
            free = self._free[node]
            if rank not in free:
                free.add(rank)
                self._counted(node, rank, +1)

    def _on_one_node(self, ranks: int, index: _Index) -> tuple[list[int], list[str]] | None:
        """On the node with the fewest free slots (of the index's pools) that holds the task."""
        found = index.by_free.fullest_fitting(ranks)
        if found is None:
            return None
        node = self._nodes[found]
        chosen = sorted(slot for slot in self._free[node] if index.holds(self.pool_of[slot]))[:ranks]
        self._take(node, chosen)
        return chosen, [node] * ranks

    def _on_whole_nodes(self, shape: Shape, free: Mapping[str, set[int]]) -> tuple[list[int], list[str]] | None:
        idle = [node for node, slots in free.items() if len(slots) == len(self.slots_of[node])]
        idle.sort(key=lambda name: -len(self.slots_of[name]))
        if shape.nodes:
            per_node = -(-shape.ranks // shape.nodes)
            chosen_nodes = [node for node in idle if len(self.slots_of[node]) >= per_node][:shape.nodes]
            if len(chosen_nodes) < shape.nodes:
                return None
            counts = [shape.ranks // shape.nodes + (i < shape.ranks % shape.nodes) for i in range(shape.nodes)]
        else:
            chosen_nodes, held = [], 0
            for node in idle:
                if held >= shape.ranks:
                    break
                chosen_nodes.append(node)
                held += len(self.slots_of[node])
            if held < shape.ranks:
                return None
            counts, left = [], shape.ranks
            for node in chosen_nodes:
                counts.append(min(left, len(self.slots_of[node])))
                left -= counts[-1]
        runners, hosts = [], []
        for node, count in zip(chosen_nodes, counts):
            runners += self.slots_of[node][:count]
            hosts += [node] * count
        reserved = [rank for node in chosen_nodes for rank in self.slots_of[node] if rank not in runners]
        for node in chosen_nodes:
            self._take(node, self.slots_of[node])
        return runners + reserved, hosts + [self.node_of[rank] for rank in reserved]

    def _with_gpus(self, shape: Shape, free_of: Mapping[str, set[int]]) -> tuple[list[int], list[str]] | None:
        """Free slots of one node owning ``shape.gpus`` distinct GPUs, at least
        ``shape.ranks`` of them: on the node with the fewest free slots that has them."""
        choices = []
        for node, free in free_of.items():
            owners: dict[str, int] = {}
            in_use = self._gpus_in_use[node]
            for rank in sorted(free):
                gpu = self.gpu_of[rank]
                if gpu is not None and gpu not in owners and gpu not in in_use and len(owners) < shape.gpus:
                    owners[gpu] = rank
            if len(owners) < shape.gpus:
                continue
            chosen = list(owners.values())
            chosen += [rank for rank in sorted(free) if rank not in owners.values()][:max(0, shape.ranks - len(chosen))]
            if len(chosen) >= shape.ranks:
                choices.append((len(free), node, chosen))
        if not choices:
            return None
        _, node, chosen = min(choices)
        self._take(node, chosen)
        self._gpus_in_use[node].update(self.gpus_of(chosen, shape.gpus))
        return chosen, [node] * len(chosen)

    def gpus_of(self, slots: Iterable[int], count: int) -> tuple[str, ...]:
        """The first ``count`` distinct GPUs the ``slots`` own."""
        return tuple(self._gpus(slots))[:count]

    def give_back_gpus(self, node: str, gpus: Iterable[str]) -> None:
        """A task given ``gpus`` (on ``node``) has ended: others may have them. (Several
        slots may own one GPU, when a node has more workers than GPUs: a GPU is in use, for
        tasks that ask for GPUs, until the task holding it ends, whichever slot owns it.)"""
        self._gpus_in_use[node].difference_update(gpus)

    def _gpus(self, slots: Iterable[int]) -> dict[str, None]:
        return dict.fromkeys(gpu for rank in slots if (gpu := self.gpu_of[rank]) is not None)

    def _take(self, node: str, slots: Iterable[int]) -> None:
        free = self._free[node]
        for rank in slots:
            if rank in free:
                free.discard(rank)
                self._counted(node, rank, -1)

    def _counted(self, node: str, slot: int, change: int) -> None:
        """The slot was taken (-1) or given back (+1): every count of free slots follows."""
        self.free_count += change
        pool = self.pool_of[slot]
        self.free_by_pool[pool] += change
        where = self._index[node]
        self._everything.by_free.add(where, change)
        for index in self._indexes.values():
            if pool in index.pools:
                index.by_free.add(where, change)


def group_for(slots: list[int], hosts: list[str], ranks: int, all_run: bool, gpus: tuple[str, ...] = ()) -> Group:
    """The :class:`Group` of a task placed on ``slots``: its first ``ranks`` slots run it
    (all of them for a Python model, the leader alone when it launches a program); the
    rest (of a whole node, or slots taken for their GPUs) is only held."""
    used = tuple(slots[:ranks])
    return Group(slots=tuple(slots), hosts=tuple(hosts), runners=used if all_run else used[:1], gpus=gpus)


class _NodesByFree:
    """The nodes (by index) in buckets by their count of free slots, so that the node with
    the fewest free slots that holds R, the first of them in node order, is found in
    O(largest node + log nodes) instead of by looking at every node: with thousands of
    nodes that look was most of the master's time per task. Each bucket is a heap of node
    indices; a node that left a bucket stays in its heap until it comes to the top
    (``counts`` says where each node really is), and a heap is rebuilt when such stale
    entries outnumber the live ones."""

    def __init__(self, largest: int, counts: list[int]) -> None:
        self.counts = counts
        self.heaps: list[list[int]] = [[] for _ in range(largest + 1)]
        self.live = [0] * (largest + 1)
        for index, count in enumerate(counts):
            self.heaps[count].append(index)
            self.live[count] += 1

    def add(self, index: int, change: int) -> None:
        """The node's count of free slots changes by ``change``."""
        before = self.counts[index]
        after = self.counts[index] = before + change
        self.live[before] -= 1
        self.live[after] += 1
        heap = self.heaps[after]
        heapq.heappush(heap, index)
        if len(heap) > 2 * self.live[after] + 64:  # mostly stale: keep the live ones, once each
            self.heaps[after] = sorted({node for node in heap if self.counts[node] == after})

    def fullest_fitting(self, ranks: int) -> int | None:
        """The first node, in node order, of those with the fewest free slots, at least ``ranks``."""
        for count in range(max(ranks, 1), len(self.heaps)):
            heap = self.heaps[count]
            while heap and self.counts[heap[0]] != count:
                heapq.heappop(heap)
            if heap:
                return heap[0]
        return None


class _Index:
    """The slots of some pools (``pools``; None: every slot), node by node: the nodes
    bucketed by their free slots of those pools (best fit in O(largest node + log
    nodes)), and how many nodes have each count of such slots, free or not (whether a
    task fits on one node at all, in O(largest node))."""

    def __init__(self, pools: frozenset[Hashable] | None, largest: int, free: list[int], totals: list[int]) -> None:
        self.pools = pools
        self.by_free = _NodesByFree(largest, free)
        self.totals = totals
        self.nodes_with = [0] * (largest + 1)
        for total in totals:
            self.nodes_with[total] += 1

    def holds(self, pool: Hashable) -> bool:
        return self.pools is None or pool in self.pools

    def most_on_a_node(self) -> int:
        """The most slots of these pools that one node has."""
        return next((total for total in range(len(self.nodes_with) - 1, -1, -1) if self.nodes_with[total]), 0)

    def totals_moved(self, node: int, change: int) -> None:
        self.nodes_with[self.totals[node]] -= 1
        self.totals[node] += change
        self.nodes_with[self.totals[node]] += 1
