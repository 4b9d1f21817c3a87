"""``mexplore.testing``: the conformance suite for algorithms (see docs/algorithms.md)."""

from .conformance import (
    MIXED_SPACE,
    AlgorithmConformance,
    Outcomes,
    drive,
    journaled,
    objective,
)

__all__ = ["MIXED_SPACE", "AlgorithmConformance", "Outcomes", "drive", "journaled", "objective"]
