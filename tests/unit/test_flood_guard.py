"""chatd.limits.FloodGuard with the clock in the test's hands (PROTOCOL.txt 8.3): the exact
arithmetic behind the end-to-end flood tests, which run with a refill too slow to matter."""

from __future__ import annotations

from chatd.limits import FloodGuard, Verdict

T0 = 1000.0


def test_a_burst_passes_then_each_line_is_limited_until_twice_the_burst_floods() -> None:
    guard = FloodGuard(rate=2, burst=10, now=T0)
    verdicts = [guard.take(T0) for _ in range(30)]
    assert verdicts == [Verdict.OK] * 10 + [Verdict.LIMITED] * 19 + [Verdict.FLOOD]


def test_the_bucket_refills_at_the_rate_and_drains_the_excess() -> None:
    guard = FloodGuard(rate=2, burst=3, now=T0)
    assert [guard.take(T0) for _ in range(5)] == [Verdict.OK] * 3 + [Verdict.LIMITED] * 2
    assert guard.take(T0 + 0.25) == Verdict.LIMITED  # half a token: not yet
    assert guard.excess == 2 - 0.5 + 1
    assert guard.take(T0 + 0.5) == Verdict.OK  # the second half: one token, spent
    assert (guard.tokens, guard.excess) == (0, 2)
    assert guard.take(T0 + 100) == Verdict.OK  # long idle: full again, excess gone
    assert (guard.tokens, guard.excess) == (2, 0)


def test_a_costly_request_is_charged_down_to_one_burst_in_debt() -> None:
    guard = FloodGuard(rate=2, burst=10, now=T0)
    guard.charge(25, T0)
    assert guard.tokens == -10
    assert guard.take(T0) == Verdict.LIMITED
    assert guard.take(T0 + 5.25) == Verdict.LIMITED  # back to half a token
    assert guard.take(T0 + 5.5) == Verdict.OK  # 11 tokens refilled in 5.5 s
