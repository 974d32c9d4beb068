"""Per-connection limits as pure arithmetic on a clock the caller passes in.

The I/O shell asks these objects for a verdict; they never read a clock or a socket,
so their tests are plain and instant (PROTOCOL.txt 8.3).
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"  # drop the line, answer rate_limited
    FLOOD = "flood"  # answer excess_flood and close


class FloodGuard:
    """A token bucket (`burst` tokens, refilled at `rate` a second) plus an excess counter.

    Every line takes a token. A line finding none is dropped and adds one to the
    excess, which drains at `rate` a second; excess reaching `2 * burst` means the
    client keeps flooding well past the limit.
    """

    __slots__ = ("rate", "burst", "tokens", "excess", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.excess = 0.0
        self.stamp = now

    def take(self, now: float) -> Verdict:
        elapsed = now - self.stamp
        self.stamp = now
        if elapsed > 0:
            refill = elapsed * self.rate
            self.tokens = min(float(self.burst), self.tokens + refill)
            self.excess = max(0.0, self.excess - refill)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return Verdict.OK
        self.excess += 1.0
        return Verdict.FLOOD if self.excess >= 2 * self.burst else Verdict.LIMITED


class ErrorLogThrottle:
    """Logs the first few errors of a connection per window, then only a count of the rest."""

    __slots__ = ("per_window", "window", "start", "logged", "suppressed")

    def __init__(self, per_window: int = 5, window: float = 10.0) -> None:
        self.per_window = per_window
        self.window = window
        self.start = float("-inf")
        self.logged = 0
        self.suppressed = 0

    def admit(self, now: float) -> tuple[bool, int]:
        """(log this error?, errors suppressed in the window that just ended)."""
        ended = 0
        if now - self.start >= self.window:
            ended, self.suppressed = self.suppressed, 0
            self.start, self.logged = now, 0
        if self.logged < self.per_window:
            self.logged += 1
            return True, ended
        self.suppressed += 1
        return False, ended

    def pending(self) -> int:
        """Errors suppressed and not reported yet (to report when the connection ends)."""
        count, self.suppressed = self.suppressed, 0
        return count
