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
from collections import Counter
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
    workers or 100,000, pools or not; so do whole nodes and nodes with free GPUs."""

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
        self._nodes = list(self.slots_of)  # in order: a node's index breaks ties between nodes
        self._index = {node: index for index, node in enumerate(self._nodes)}
        self._sizes = [len(self.slots_of[node]) for node in self._nodes]
        self.largest = max(self._sizes, default=0)
        self._sizes_ascending = sorted(self._sizes)
        self._gpus_and_sizes = {(len(self._gpus(slots)), len(slots)) for slots in self.slots_of.values()}
        self._most_gpus = max((gpus for gpus, _ in self._gpus_and_sizes), default=0)
        self.pool_of: dict[int, Hashable] = dict.fromkeys(self.node_of)
        self.free_by_pool: dict[Hashable, int] = {None: self.free_count}
        self._everything = _Index(None, self._sizes, list(self._sizes), list(self._sizes))
        self._indexes: dict[frozenset[Hashable], _Index] = {}
        self._counting_gpus: list[_Index] = []  # the indexes whose nodes are bucketed by open GPUs too

    # -- questions ----------------------------------------------------------------------
    def never_fits(self, shape: Shape) -> str | None:
        """Why a task of this shape can never be placed in this job, or None if it can."""
        total, nodes = len(self.node_of), len(self.slots_of)
        if shape.gpus:
            most = self._most_gpus
            if shape.nodes > 1 or shape.ranks > self.largest:
                return "a task with gpus runs on one node and it needs more ranks or nodes than one node has"
            if shape.gpus > most:
                where = f"the job's nodes have at most {most}" if most else \
                    "the job's workers have none (MEXPLORE_GPUS_PER_NODE, or the site's gpus_per_node, is not set)"
                return f"it needs {shape.gpus} GPUs on one node and {where}"
            if not any(gpus >= shape.gpus and size >= shape.ranks for gpus, size in self._gpus_and_sizes):
                return (f"it needs {shape.gpus} GPUs and {shape.ranks} ranks on one node and no node of the job "
                        "has both")
        if shape.ranks > total:
            return f"it needs {shape.ranks} ranks and the job has {total} worker slots"
        if shape.nodes > nodes:
            return f"it needs {shape.nodes} nodes and the job's workers are on {nodes}"
        if shape.nodes and shape.ranks < shape.nodes:
            return f"{shape.ranks} ranks cannot be spread over {shape.nodes} nodes"
        if shape.nodes:
            smallest = self._sizes_ascending[-shape.nodes]
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
        if shape.gpus:
            return self._with_gpus(shape, index)
        if shape.nodes:
            return self._on_whole_nodes(shape, index)
        if shape.ranks <= index.most_on_a_node():
            return self._on_one_node(shape.ranks, index)
        if pools is not None:
            return self._spread(shape.ranks, index)
        return self._on_whole_nodes(shape, index)

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
                    index.add(node, change)
        self._gpus_changed(node)

    def _index_of(self, pools: frozenset[Hashable]) -> _Index:
        if (index := self._indexes.get(pools)) is None:  # a set of pools not asked for before: O(slots), once
            free = [sum(self.pool_of[slot] in pools for slot in self._free[node]) for node in self._nodes]
            totals = [sum(self.pool_of[slot] in pools for slot in self.slots_of[node]) for node in self._nodes]
            index = self._indexes[pools] = _Index(pools, self._sizes, free, totals)
        return index

    def _spread(self, ranks: int, index: _Index) -> tuple[list[int], list[str]] | None:
        """A pool's slots lie on several nodes and no node has enough of them for the task:
        it takes free ones over as few nodes as hold it, those with the most first (else it
        would wait for good)."""
        if sum(self.free_by_pool.get(pool, 0) for pool in index.pools or ()) < ranks:
            return None
        chosen: list[int] = []
        for count in range(self.largest, 0, -1):
            if len(chosen) == ranks:
                break
            for node in index.by_free.firsts(count, -(-(ranks - len(chosen)) // count)):
                name = self._nodes[node]
                chosen += sorted(slot for slot in self._free[name] if index.holds(self.pool_of[slot]))[:ranks - len(chosen)]
        for node in dict.fromkeys(self.node_of[slot] for slot in chosen):
            self._take(node, [slot for slot in chosen if self.node_of[slot] == node])
        return chosen, [self.node_of[slot] for slot in chosen]

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
                self._gpus_changed(self._index[node])

    def _on_one_node(self, ranks: int, index: _Index) -> tuple[list[int], list[str]] | None:
        """On the node with the fewest free slots (of the index's pools) that holds the task."""
        found = index.fullest_fitting(ranks)
        if found is None:
            return None
        node = self._nodes[found]
        chosen = sorted(slot for slot in self._free[node] if index.holds(self.pool_of[slot]))[:ranks]
        self._take(node, chosen)
        return chosen, [node] * ranks

    def _on_whole_nodes(self, shape: Shape, index: _Index) -> tuple[list[int], list[str]] | None:
        """Whole free nodes (every slot free and in the index's pools), the largest first:
        ``nodes`` of them with the ranks spread evenly, else as few as hold the ranks."""
        sizes = self._sizes
        if shape.nodes:
            per_node = -(-shape.ranks // shape.nodes)
            chosen = index.idle_nodes(shape.nodes, per_node)
            if len(chosen) < shape.nodes:
                return None
            counts = [shape.ranks // shape.nodes + (i < shape.ranks % shape.nodes) for i in range(shape.nodes)]
        else:
            found = index.idle_holding(shape.ranks)
            if found is None:
                return None
            chosen, counts, left = found, [], shape.ranks
            for node in chosen:
                counts.append(min(left, sizes[node]))
                left -= counts[-1]
        chosen_nodes = [self._nodes[node] for node in chosen]
        runners, hosts = [], []
        for node, count in zip(chosen_nodes, counts):
            runners += self.slots_of[node][:count]
            hosts += [node] * count
        reserved = [rank for node in chosen_nodes for rank in self.slots_of[node] if rank not in runners]
        for node in chosen_nodes:
            self._take(node, self.slots_of[node])
        return runners + reserved, hosts + [self.node_of[rank] for rank in reserved]

    def _with_gpus(self, shape: Shape, index: _Index) -> tuple[list[int], list[str]] | None:
        """Free slots (of the index's pools) of one node owning ``shape.gpus`` distinct GPUs
        no task holds, at least ``shape.ranks`` of them: on the node with the fewest free
        slots that has them, the first such node in node order."""
        found = self._counting_open_gpus(index).fewest_free_with_gpus(shape.ranks, shape.gpus, self._most_gpus)
        if found is None:
            return None
        node = self._nodes[found]
        free = sorted(slot for slot in self._free[node] if index.holds(self.pool_of[slot]))
        owners: dict[str, int] = {}
        in_use = self._gpus_in_use[node]
        for rank in free:
            gpu = self.gpu_of[rank]
            if gpu is not None and gpu not in owners and gpu not in in_use and len(owners) < shape.gpus:
                owners[gpu] = rank
        chosen = list(owners.values())
        chosen += [rank for rank in free if rank not in owners.values()][:max(0, shape.ranks - len(chosen))]
        in_use.update(owners)
        self._take(node, chosen)
        return chosen, [node] * len(chosen)

    def gpus_of(self, slots: Iterable[int], count: int) -> tuple[str, ...]:
        """The first ``count`` distinct GPUs the ``slots`` own."""
        return tuple(self._gpus(slots))[:count]

    def give_back_gpus(self, node: str, gpus: Iterable[str]) -> None:
        """A task given ``gpus`` (on ``node``) has ended: others may have them. (Several
        slots may own one GPU, when a node has more workers than GPUs: a GPU is in use, for
        tasks that ask for GPUs, until the task holding it ends, whichever slot owns it.)"""
        self._gpus_in_use[node].difference_update(gpus)
        self._gpus_changed(self._index[node])

    def _counting_open_gpus(self, index: _Index) -> _Index:
        """The index, its nodes bucketed by open GPUs too from now on (O(slots), once)."""
        if index.by_gpus is None:
            index.by_gpus = _Buckets([(free, self._open_gpus(node, index))
                                      for node, free in enumerate(index.by_free.key_of)])
            self._counting_gpus.append(index)
        return index

    def _open_gpus(self, node: int, index: _Index) -> int:
        """The distinct GPUs of the node that free slots of the index's pools own and no task holds."""
        name = self._nodes[node]
        in_use, gpu_of, pool_of = self._gpus_in_use[name], self.gpu_of, self.pool_of
        return len({gpu for slot in self._free[name]
                    if (gpu := gpu_of[slot]) is not None and gpu not in in_use and index.holds(pool_of[slot])})

    def _gpus_changed(self, node: int) -> None:
        """The node's free slots, their pools or its GPUs in use changed: its open GPUs follow."""
        for index in self._counting_gpus:
            index.by_gpus.set(node, (index.by_free.key_of[node], self._open_gpus(node, index)))  # type: ignore[union-attr]

    def _gpus(self, slots: Iterable[int]) -> dict[str, None]:
        return dict.fromkeys(gpu for rank in slots if (gpu := self.gpu_of[rank]) is not None)

    def _take(self, node: str, slots: Iterable[int]) -> None:
        free = self._free[node]
        for rank in slots:
            if rank in free:
                free.discard(rank)
                self._counted(node, rank, -1)
        self._gpus_changed(self._index[node])

    def _counted(self, node: str, slot: int, change: int) -> None:
        """The slot was taken (-1) or given back (+1): every count of free slots follows."""
        self.free_count += change
        pool = self.pool_of[slot]
        self.free_by_pool[pool] += change
        where = self._index[node]
        self._everything.add(where, change)
        for index in self._indexes.values():
            if pool in index.pools:
                index.add(where, change)


def group_for(slots: list[int], hosts: list[str], ranks: int, all_run: bool, gpus: tuple[str, ...] = ()) -> Group:
    """The :class:`Group` of a task placed on ``slots``: its first ``ranks`` slots run it
    (all of them for a Python model, the leader alone when it launches a program); the
    rest (of a whole node, or slots taken for their GPUs) is only held."""
    used = tuple(slots[:ranks])
    return Group(slots=tuple(slots), hosts=tuple(hosts), runners=used if all_run else used[:1], gpus=gpus)


class _Buckets:
    """The nodes (by index) in buckets by a key (a count of free slots, or a pair of
    counts), so that the first nodes of a bucket in node order are found without looking at
    every node: with thousands of nodes that look was most of the master's time per task.
    Each bucket is a heap of node indices; a node that left a bucket stays in its heap until
    it comes to the top (``key_of`` says where each node really is), and a heap is rebuilt
    when such stale entries outnumber the live ones."""

    def __init__(self, keys: list[Hashable]) -> None:
        self.key_of = keys
        self.live = Counter(keys)
        self.heaps: dict[Hashable, list[int]] = {}
        for node, key in enumerate(keys):
            self.heaps.setdefault(key, []).append(node)  # in node order: already a heap

    def set(self, node: int, key: Hashable) -> None:
        """The node's key is now ``key``."""
        before = self.key_of[node]
        if key == before:
            return
        self.key_of[node] = key
        self.live[before] -= 1
        self.live[key] += 1
        heap = self.heaps.setdefault(key, [])
        heapq.heappush(heap, node)
        if len(heap) > 2 * self.live[key] + 64:  # mostly stale: keep the live ones, once each
            self.heaps[key] = sorted({node for node in heap if self.key_of[node] == key})

    def first(self, key: Hashable) -> int | None:
        """The bucket's first node in node order; None when it is empty."""
        heap = self.heaps.get(key)
        if not heap:
            return None
        key_of = self.key_of
        while heap and key_of[heap[0]] != key:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def firsts(self, key: Hashable, count: int) -> list[int]:
        """The bucket's first ``count`` nodes in node order (all of them when it has fewer)."""
        heap = self.heaps.get(key, [])
        found: list[int] = []
        while heap and len(found) < count:
            node = heapq.heappop(heap)
            if self.key_of[node] == key and (not found or node != found[-1]):  # a node twice in a heap pops twice in a row
                found.append(node)
        for node in found:
            heapq.heappush(heap, node)
        return found


class _Index:
    """The slots of some pools (``pools``; None: every slot), node by node: the nodes
    bucketed by their free slots of those pools (best fit in O(largest node + log
    nodes)), the whole free nodes by size, and how many nodes have each count of such
    slots, free or not (whether a task fits on one node at all, in O(largest node)). Once a
    task with GPUs asks, the nodes are also bucketed by (free slots, open GPUs): those
    are counted by :class:`Placement`, which knows the GPUs."""

    def __init__(self, pools: frozenset[Hashable] | None, sizes: list[int], free: list[int], totals: list[int]) -> None:
        self.pools = pools
        self.sizes = sizes
        self.largest = max(sizes, default=0)
        self.by_free = _Buckets(free)
        self.idle = _Buckets([size if count == size else 0 for count, size in zip(free, sizes)])  # 0: not idle
        self.by_gpus: _Buckets | None = None
        self.totals = totals
        self.nodes_with = [0] * (self.largest + 1)
        for total in totals:
            self.nodes_with[total] += 1

    def holds(self, pool: Hashable) -> bool:
        return self.pools is None or pool in self.pools

    def add(self, node: int, change: int) -> None:
        """The node's count of free slots of these pools changes by ``change``."""
        count = self.by_free.key_of[node] + change  # type: ignore[operator]
        self.by_free.set(node, count)
        size = self.sizes[node]
        self.idle.set(node, size if count == size else 0)

    def fullest_fitting(self, ranks: int) -> int | None:
        """The first node, in node order, of those with the fewest free slots, at least ``ranks``."""
        for count in range(max(ranks, 1), self.largest + 1):
            if (node := self.by_free.first(count)) is not None:
                return node
        return None

    def idle_nodes(self, count: int, at_least: int) -> list[int]:
        """Up to ``count`` whole free nodes of at least ``at_least`` slots, the largest first
        (in node order among nodes of one size)."""
        chosen: list[int] = []
        for size in range(self.largest, max(at_least, 1) - 1, -1):
            if len(chosen) == count:
                break
            chosen += self.idle.firsts(size, count - len(chosen))
        return chosen

    def idle_holding(self, ranks: int) -> list[int] | None:
        """As few whole free nodes as hold ``ranks``, the largest first; None if all of them do not."""
        chosen: list[int] = []
        held = 0
        for size in range(self.largest, 0, -1):
            if held >= ranks:
                break
            found = self.idle.firsts(size, -(-(ranks - held) // size))
            chosen += found
            held += size * len(found)
        return chosen if held >= ranks else None

    def fewest_free_with_gpus(self, ranks: int, gpus: int, most_gpus: int) -> int | None:
        """The first node, in node order, of those with the fewest free slots, at least
        ``ranks``, that have ``gpus`` open GPUs (a node has at most ``most_gpus``)."""
        assert self.by_gpus is not None
        for free in range(max(ranks, gpus, 1), self.largest + 1):
            found = [node for open_gpus in range(gpus, min(free, most_gpus) + 1)
                     if (node := self.by_gpus.first((free, open_gpus))) is not None]
            if found:
                return min(found)
        return None

    def most_on_a_node(self) -> int:
        """The most slots of these pools that one node has (asked at every task: a plain loop,
        which returns at its first step unless pools were resized, is a fifth of the cost
        of a generator's)."""
        nodes_with = self.nodes_with
        for total in range(len(nodes_with) - 1, 0, -1):
            if nodes_with[total]:
                return total
        return 0

    def totals_moved(self, node: int, change: int) -> None:
        self.nodes_with[self.totals[node]] -= 1
        self.totals[node] += change
        self.nodes_with[self.totals[node]] += 1
