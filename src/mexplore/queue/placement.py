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
- a task that cannot be placed now lets the tasks behind it pass, but only until as many
  have started past it as the job has slots: from then on nothing starts before it, so
  the slots it needs free up and a stream of small tasks cannot starve a large one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..types import Group, Shape


class Placement:
    """The free worker slots of each node and the choice of slots for a task.

    ``hosts`` maps each worker rank to its node. A node's slots are its worker ranks, in
    rank order (on the master's node, one fewer than elsewhere)."""

    def __init__(self, hosts: Mapping[int, str]) -> None:
        self.node_of = dict(hosts)
        self.slots_of: dict[str, tuple[int, ...]] = {}
        for rank in sorted(self.node_of):
            node = self.node_of[rank]
            self.slots_of[node] = (*self.slots_of.get(node, ()), rank)
        self._free: dict[str, set[int]] = {node: set(slots) for node, slots in self.slots_of.items()}
        self.free_count = len(self.node_of)
        self.largest = max((len(slots) for slots in self.slots_of.values()), default=0)

    # -- questions ----------------------------------------------------------------------
    def never_fits(self, shape: Shape) -> str | None:
        """Why a task of this shape can never be placed in this job, or None if it can."""
        total, nodes = len(self.node_of), len(self.slots_of)
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
    def take(self, shape: Shape) -> tuple[list[int], list[str]] | None:
        """Slots for a task of ``shape`` (leader first) and their nodes, now taken; None
        when they are not free now."""
        if shape.nodes == 0 and shape.ranks <= self.largest:
            return self._on_one_node(shape.ranks)
        return self._on_whole_nodes(shape)

    def give_back(self, slots: Iterable[int]) -> None:
        for rank in slots:
            self._free[self.node_of[rank]].add(rank)
            self.free_count += 1

    def _on_one_node(self, ranks: int) -> tuple[list[int], list[str]] | None:
        fitting = [node for node, free in self._free.items() if len(free) >= ranks]
        if not fitting:
            return None
        node = min(fitting, key=lambda name: len(self._free[name]))
        chosen = sorted(self._free[node])[:ranks]
        self._take(node, chosen)
        return chosen, [node] * ranks

    def _on_whole_nodes(self, shape: Shape) -> tuple[list[int], list[str]] | None:
        idle = [node for node, free in self._free.items() if len(free) == len(self.slots_of[node])]
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

    def _take(self, node: str, slots: Iterable[int]) -> None:
        free = self._free[node]
        for rank in slots:
            free.discard(rank)
            self.free_count -= 1


def group_for(slots: list[int], hosts: list[str], ranks: int, all_run: bool) -> Group:
    """The :class:`Group` of a task placed on ``slots``: its first ``ranks`` slots run it
    (all of them for a Python model, the leader alone when it launches a program); the
    rest of a whole node is only held."""
    used = tuple(slots[:ranks])
    return Group(slots=tuple(slots), hosts=tuple(hosts), runners=used if all_run else used[:1])
