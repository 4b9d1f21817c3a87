"""Algorithms for the end-to-end tests: one imperative, one that fails mid-run."""

from mexplore.algorithms.base import Algorithm


def halving(queue, space, options):
    """EMEWS style: evaluate a batch, then resubmit the better half with higher priority."""
    points = [{"x": i / 10, "y": 0.5} for i in range(8)]
    results = queue.map(points)
    best = sorted(results, key=lambda r: r.objective)[:4]
    futures = [queue.submit({"x": r.params["x"], "y": 0.3}, priority=1) for r in best]
    for future in queue.as_completed(futures):
        future.result()


class Explodes(Algorithm):
    """Proposes points, then raises inside ask after ``after`` of them."""

    def __init__(self, space, info=None, *, after=6):
        super().__init__(space, info)
        self.after, self.count = after, 0

    def ask(self, n):
        if self.count >= self.after:
            raise ValueError("the algorithm broke")
        self.count += n
        return [{"x": 0.1 * i, "y": 0.2} for i in range(n)]
