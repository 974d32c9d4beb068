"""Per-connection limits as pure arithmetic on a clock the caller passes in.

The I/O shell asks these objects for a verdict; they never read a clock or a socket,
so their tests are plain and instant (PROTOCOL.txt 8.3).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from enum import Enum
from typing import Final

from chatd.protocol import ErrorCode

# What one group of Admission's throttle table costs, and each connect time it keeps
# (measured: 200 bytes with one time, 820 with twenty).
THROTTLE_GROUP_BYTES: Final = 200
THROTTLE_STAMP_BYTES: Final = 32


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


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    message: str


class Admission:
    """Who may connect (PROTOCOL.txt 8.4): counts per address group and in all, where a
    session held for resume (10.1) counts like an open connection, and a per-address
    rate of new connections.

    An address group is an IPv4 address, or an IPv6 prefix (/64 by default): one
    subscriber usually gets a whole /64, so counting IPv6 addresses one by one would
    give a single client 2^64 of them.

    When a group (or the server) is at its limit and holds sessions, the oldest held
    session gives its slot to the new connection (the caller ends that session), so
    held sessions can neither pile up nor lock out a client that comes back.
    """

    __slots__ = ("held", "held_in", "ipv6_prefix", "max_clients", "max_per_ip", "per_group",
                 "recent", "table_size", "throttle", "total", "window")

    def __init__(self, max_clients: int = 5000, max_per_ip: int = 10, *, ipv6_prefix: int = 64,
                 throttle: int = 20, window: float = 60.0, table_size: int = 100_000,
                 table_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_clients = max_clients  # 0: no limit
        self.max_per_ip = max_per_ip  # 0: no limit
        self.ipv6_prefix = ipv6_prefix
        self.throttle = throttle  # new connections a group may make per window; 0: off
        self.window = window
        # Groups whose recent connects are remembered: as many as fit `table_bytes` when
        # each holds its most (one /64 after another of a large IPv6 block makes a new
        # group each: 100,000 of them took 129 MiB as deques of 20 connect times).
        self.table_size = max(1, min(table_size, table_bytes // (
            THROTTLE_GROUP_BYTES + max(1, throttle) * THROTTLE_STAMP_BYTES)))
        self.per_group: dict[str, int] = {}  # open connections + held sessions
        self.total = 0
        self.held: dict[str, str] = {}  # session id -> group, oldest first
        # group -> its held sessions, oldest first: finding the one to evict costs O(1),
        # not a scan of every held session per refused connect
        self.held_in: dict[str, dict[str, None]] = {}
        self.recent: dict[str, list[float]] = {}  # group -> its connect times in the window

    def group(self, ip: str) -> str:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ip
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.IPv6Network((address, self.ipv6_prefix), strict=False))
        return ip

    def admit(self, ip: str, now: float, *, throttle: bool = True
              ) -> Refused | str | None:
        """None: admitted (and counted). A session id: admitted, taking the slot of that
        held session, which the caller must end. Refused: not admitted, not counted.
        `throttle` False: counted without taking a new connection of the address's
        window (a web page request: the WebSocket it may become asks `throttled`)."""
        group = self.group(ip)
        if throttle and (refused := self.throttled(ip, now)) is not None:
            return refused
        if self.max_per_ip and self.per_group.get(group, 0) >= self.max_per_ip:
            sid = self._take_held(group)
            if sid is None:
                return Refused(ErrorCode.TOO_MANY_CONNECTIONS,
                               f"{group} has its maximum of {self.max_per_ip} connections")
            return sid  # the counts stay: the slot changes hands within the group
        if self.max_clients and self.total >= self.max_clients:
            sid = self._take_held(None)
            if sid is None:
                return Refused(ErrorCode.SERVER_FULL,
                               f"the server has its maximum of {self.max_clients} connections")
            self.per_group[group] = self.per_group.get(group, 0) + 1
            return sid  # the total stays: the slot moved to this group
        self.per_group[group] = self.per_group.get(group, 0) + 1
        self.total += 1
        return None

    def throttled(self, ip: str, now: float) -> Refused | None:
        """Takes one new connection of the address's window; Refused if it has none."""
        group = self.group(ip)
        if self.throttle and not self._may_connect(group, now):
            return Refused(ErrorCode.TOO_MANY_CONNECTIONS,
                           f"too many new connections from {group} in {self.window:g}s; "
                           "wait a little and try again")
        return None

    def release(self, ip: str) -> None:
        """A counted connection ended without leaving a held session."""
        self._drop(self.group(ip))

    def hold(self, sid: str, ip: str) -> None:
        """A counted connection ended; its session is held and keeps the slot."""
        group = self.group(ip)
        self.held[sid] = group
        self.held_in.setdefault(group, {})[sid] = None

    def unhold(self, sid: str) -> None:
        """A held session ended or was resumed: its slot is free."""
        group = self._forget_held(sid)
        if group is not None:
            self._drop(group)

    def _forget_held(self, sid: str) -> str | None:
        group = self.held.pop(sid, None)
        if group is not None:
            sids = self.held_in[group]
            del sids[sid]
            if not sids:
                del self.held_in[group]
        return group

    def _drop(self, group: str) -> None:
        count = self.per_group.get(group, 0) - 1
        if count > 0:
            self.per_group[group] = count
        else:
            self.per_group.pop(group, None)
        self.total = max(0, self.total - 1)

    def _take_held(self, group: str | None) -> str | None:
        """The oldest held session (of `group`, or of any), no longer held; its group's
        count drops unless the slot stays in that group."""
        sids = self.held if group is None else self.held_in.get(group, {})
        if not sids:
            return None
        sid = next(iter(sids))
        held_group = self._forget_held(sid)
        if group is None and held_group is not None:
            self._drop(held_group)
            self.total += 1  # the total stays: the caller counts the slot anew
        return sid

    def _may_connect(self, group: str, now: float) -> bool:
        recent = self.recent.pop(group, None)  # back in at the end: newest last
        if recent is None:
            self._forget_old(now)
            recent = []  # a deque costs 600 bytes even for one time; a list 90
        self.recent[group] = recent
        start = now - self.window
        old = 0
        while old < len(recent) and recent[old] <= start:
            old += 1
        del recent[:old]
        if len(recent) >= self.throttle:
            return False
        recent.append(now)
        return True

    def _forget_old(self, now: float) -> None:
        """Keeps the table bounded: groups idle for a window go, oldest first; at the
        bound the oldest group goes anyway (it forgets its recent connects)."""
        start = now - self.window
        for group in list(itertools.islice(self.recent, 4)):
            times = self.recent[group]
            if not times or times[-1] <= start:
                del self.recent[group]
        while len(self.recent) >= self.table_size:
            del self.recent[next(iter(self.recent))]


class PasswordThrottle:
    """Wrong passwords per address group (PROTOCOL.txt 11.2): after `free` wrong ones in
    a row, the group must wait before its next connection, longer after each further
    one (1 s, 2 s, 4 s ... up to `max_wait`). A group's record goes after `forget_after`
    seconds without a wrong password; the table is bounded like Admission's.
    """

    __slots__ = ("failures", "forget_after", "free", "max_wait", "table_size")

    def __init__(self, free: int = 3, max_wait: float = 300.0, forget_after: float = 600.0,
                 table_size: int = 100_000) -> None:
        self.free = free
        self.max_wait = max_wait
        self.forget_after = forget_after
        self.table_size = table_size
        # group -> [wrong passwords in a row, time of the last, refusals logged since]
        self.failures: dict[str, list[float]] = {}

    def wait(self, group: str, now: float) -> float:
        """Seconds this group must still wait before it may connect (0: it may)."""
        entry = self.failures.get(group)
        if entry is None:
            return 0.0
        count, last, _ = entry
        if now - last >= self.forget_after:
            del self.failures[group]
            return 0.0
        return max(0.0, last + self._delay(int(count)) - now)

    def failed(self, group: str, now: float) -> int:
        """A wrong password from `group`; returns how many in a row."""
        entry = self.failures.pop(group, None)
        count = (int(entry[0]) if entry is not None else 0) + 1
        if len(self.failures) >= self.table_size:
            del self.failures[next(iter(self.failures))]
        self.failures[group] = [count, now, 0]
        return count

    def first_refusal(self, group: str) -> bool:
        """True once per wait: the log says a group is refused once, not per connection."""
        entry = self.failures.get(group)
        if entry is None or entry[2]:
            return False
        entry[2] = 1
        return True

    def _delay(self, count: int) -> float:
        if count <= self.free:
            return 0.0
        return min(self.max_wait, 2.0 ** (count - self.free - 1))
