"""Per-connection limits as pure arithmetic on a clock the caller passes in: flood
control (PROTOCOL.txt 8.3) and the throttle of a connection's error log lines.

The link asks these objects for a verdict; they never read a clock or a socket, so
their tests are plain and instant. Who may connect at all is chatd.admission's.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"  # drop the line, answer rate_limited (too many lines)
    BYTES = "bytes"  # drop the line, answer rate_limited (too many bytes)
    FLOOD = "flood"  # answer excess_flood and close


class FloodGuard:
    """Two token buckets and an excess counter (PROTOCOL.txt 8.3).

    Lines: `burst` tokens, refilled at `rate` a second; every line takes one. Bytes:
    `byte_burst` tokens, refilled at `byte_rate` a second; every line takes its size.
    A line passes while the byte bucket is not empty, and may leave it in debt: a line
    of any size up to the line limit can pass, yet over time no more than `byte_rate`
    bytes a second get through (a line limit of 64 KiB at 2 lines a second would let
    128 KiB a second through). A line refused by either bucket takes nothing from
    either and adds one to the excess, which drains at `rate` a second; excess
    reaching `2 * burst` means the client keeps flooding well past the limit.
    `byte_rate` 0: lines only.
    """

    __slots__ = ("rate", "burst", "tokens", "excess", "stamp", "byte_rate", "byte_burst",
                 "byte_tokens")

    def __init__(self, rate: float, burst: int, now: float, *, byte_rate: float = 0.0,
                 byte_burst: int = 0) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.excess = 0.0
        self.stamp = now
        self.byte_rate = byte_rate
        self.byte_burst = byte_burst
        self.byte_tokens = float(byte_burst)

    def take(self, now: float, size: int = 0) -> Verdict:
        """A line of `size` bytes arrived: may it pass?"""
        self._refill(now)
        if self.tokens < 1.0:
            verdict = Verdict.LIMITED
        elif self.byte_rate and self.byte_tokens <= 0.0:
            verdict = Verdict.BYTES
        else:
            self.tokens -= 1.0
            self.byte_tokens -= size
            return Verdict.OK
        self.excess += 1.0
        return Verdict.FLOOD if self.excess >= 2 * self.burst else verdict

    def charge(self, tokens: float, now: float) -> None:
        """A request that cost more than a line (a big reply): its cost comes out of the
        bucket, down to one burst in debt, so costly requests come slower (8.3)."""
        self._refill(now)
        self.tokens = max(-float(self.burst), self.tokens - tokens)

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        self.stamp = now
        if elapsed > 0:
            refill = elapsed * self.rate
            self.tokens = min(float(self.burst), self.tokens + refill)
            self.excess = max(0.0, self.excess - refill)
            if self.byte_rate:
                self.byte_tokens = min(float(self.byte_burst),
                                       self.byte_tokens + elapsed * self.byte_rate)


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
