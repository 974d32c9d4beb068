"""chatd.cluster's pure parts (the Redis side is tested end to end: tests/e2e/test_cluster.py)."""

from __future__ import annotations

from chatd.cluster import BACKOFF_FIRST, BACKOFF_MAX, Backoff


def test_backoff_doubles_up_to_its_bound_and_starts_again_after_a_success() -> None:
    backoff = Backoff()
    waits = [backoff.failed() for _ in range(10)]
    assert waits[:3] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST]
    assert max(waits) == waits[-1] == BACKOFF_MAX
    backoff.reset()
    assert backoff.failed() == BACKOFF_FIRST
