"""chatd.cluster's pure parts (the Redis side is tested end to end: tests/e2e/test_cluster.py)."""

from __future__ import annotations

from chatd.cluster import BACKOFF_FIRST, BACKOFF_MAX, Backoff
from chatd.streambudget import HELD_OVERHEAD, HeldBudget


def test_backoff_doubles_up_to_its_bound_and_starts_again_after_a_success() -> None:
    backoff = Backoff()
    waits = [backoff.failed() for _ in range(10)]
    assert waits[:3] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST]
    assert max(waits) == waits[-1] == BACKOFF_MAX
    backoff.reset()
    assert backoff.failed() == BACKOFF_FIRST


def test_held_budget_counts_text_bytes_plus_an_overhead_per_command() -> None:
    """PROTOCOL.txt 14.4: what a node holds while Redis is away is bounded in bytes."""
    budget = HeldBudget(10_000)
    assert budget.cost(None) == HELD_OVERHEAD
    assert budget.cost("é" * 100) == HELD_OVERHEAD + 200  # UTF-8 bytes, not characters
    big = budget.cost("x" * 4_000)
    budget.add(big)
    budget.add(big)
    assert not budget.fits(big)  # a third 4 KB line would pass 10,000 bytes
    assert budget.fits(10_000 - 2 * big)
    budget.remove(big)
    assert budget.fits(big)
    budget.remove(10 * big)  # never below zero, whatever the caller removes
    assert budget.total == 0
