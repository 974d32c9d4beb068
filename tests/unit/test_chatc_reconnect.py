"""Unit tests of chatc.reconnect: the delays between reconnect attempts."""

from __future__ import annotations

import random

import pytest

from chatc.reconnect import Backoff


def test_backoff_grows_to_a_cap_of_2s_with_jitter_of_up_to_half() -> None:
    """Issue 23 item 3: a server back after a restart is found within about 2 s."""
    backoff = Backoff()
    for n in range(1, 30):
        base = min(2.0, 0.25 * 2 ** (n - 1))
        low, high = backoff.delay(n, lambda: 0.0), backoff.delay(n, lambda: 0.999999)
        assert low == pytest.approx(base / 2)
        assert high == pytest.approx(base, rel=1e-5)
    assert max(backoff.delay(n, random.random) for n in range(1, 100)) <= 2.0


def test_clients_coming_back_are_spread_over_a_second() -> None:
    """5,000 clients that lost the same server do not all try again in one instant."""
    draw = random.Random(23).random
    backoff = Backoff()
    delays = sorted(backoff.delay(8, draw) for _ in range(5000))
    assert delays[0] >= 1.0 and delays[-1] <= 2.0
    per_tenth = [sum(1 for d in delays if 1.0 + k / 10 <= d < 1.1 + k / 10)
                 for k in range(10)]
    assert max(per_tenth) < 700  # about 500 in each tenth of a second


def test_attempts_the_server_answered_keep_within_its_connect_throttle() -> None:
    """PROTOCOL.txt 8.4: 20 new connections per 60 s per address by default; a refused
    connection (nothing listening) does not count there, an answered one does."""
    backoff = Backoff()
    for draw in (lambda: 0.0, lambda: 0.5, lambda: 0.999999):
        assert 3.0 <= backoff.delay(1, draw, reached=True) < 6.0
        assert 3.0 <= backoff.delay(9, draw, reached=True) < 6.0
    waits = [backoff.delay(n, random.random, reached=True) for n in range(1, 200)]
    elapsed, count = 0.0, 0
    for wait in waits:  # how many attempts fit in the first minute
        elapsed += wait
        count += elapsed < 60
    assert count <= 20
