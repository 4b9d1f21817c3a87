"""Failure reasons grouped for display (mexplore.failures): pure logic, no MPI."""

from __future__ import annotations

from mexplore.failures import (
    DISTINCT,
    OTHERS,
    REASON_LENGTH,
    FailureTally,
    is_failure,
    reason_of,
)
from mexplore.types import Status


def test_reason_is_the_last_line_of_the_error_or_the_status() -> None:
    traceback = "Traceback (most recent call last):\n  File 'm.py', line 3\nKeyError: 'val_loss'\n\n"
    assert reason_of(Status.FAILED, traceback) == "KeyError: 'val_loss'"
    assert reason_of("timeout", None) == "timeout"
    assert len(reason_of(Status.FAILED, "x" * 10_000)) == REASON_LENGTH


def test_tally_says_when_a_reason_is_new_and_ranks_by_count() -> None:
    tally = FailureTally()
    assert tally.add(0, Status.FAILED, "no 'val_loss'").text == "no 'val_loss'"
    assert tally.add(1, Status.FAILED, "no 'val_loss'") is None
    assert tally.add(2, Status.TIMEOUT, None).text == "timeout"
    for task_id in range(3, 8):
        tally.add(task_id, Status.FAILED, "no 'val_loss'")
    first, second = tally.most_common()
    assert (first.text, first.count, first.task_ids) == ("no 'val_loss'", 7, [0, 1, 3])
    assert first.describe() == "7 × no 'val_loss' (tasks 0, 1, 3, …)"
    assert second.describe() == "1 × timeout (task 2)"
    assert tally.total == 8 and len(tally) == 2


def test_distinct_reasons_are_bounded() -> None:
    tally = FailureTally()
    for task_id in range(DISTINCT + 50):
        tally.add(task_id, Status.FAILED, f"error {task_id}")
    assert len(tally) == DISTINCT + 1
    assert tally.most_common(1)[0].text == OTHERS and tally.most_common(1)[0].count == 50
    assert tally.total == DISTINCT + 50


def test_what_counts_as_a_failure() -> None:
    assert [s.value for s in Status if is_failure(s)] == ["failed", "timeout", "lost"]
