"""Who may connect, as pure arithmetic on a clock the caller passes in: the connection
limits per address group and in all (PROTOCOL.txt 8.4), the wait after wrong server and
operator passwords (11.2, 15.1), and address bans (15.3).

The I/O shells ask these objects for a verdict; they never read a clock or a socket,
so their tests are plain and instant. What a refused client reads is worded here too
(`AdmissionPolicy`), so the shells only carry a `Refusal` out.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from chatd import protocol as p
from chatd.protocol import ErrorCode

if TYPE_CHECKING:
    from chatd.moderation import BanRecord

# Why a held session ended when a new connection took its slot (PROTOCOL.txt 8.4).
REPLACED: Final = "replaced by a newer connection from the same address"
# What one group of Admission's throttle table costs, and each connect time it keeps
# (measured: 200 bytes with one time, 820 with twenty).
THROTTLE_GROUP_BYTES: Final = 200
THROTTLE_STAMP_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class Refusal:
    """A connection not admitted: the error it gets, and how loud the log says so."""

    code: str
    message: str
    retry_after: int | None = None  # the error line's fields (PROTOCOL.txt 7)
    until: str | None = None
    log_level: Literal["debug", "info", "warning"] = "warning"

    def line(self) -> bytes:
        """The one line a refused connection gets (its mode is not known: JSON)."""
        return p.encode_json(p.Error(self.code, self.message, until=self.until,
                                     retry_after=self.retry_after))


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
        if ":" not in ip:  # IPv4, or no address: itself (unparsed: a connect asks 4 times)
            return ip
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
              ) -> Refusal | str | None:
        """None: admitted (and counted). A session id: admitted, taking the slot of that
        held session, which the caller must end. Refusal: not admitted, not counted.
        `throttle` False: counted without taking a new connection of the address's
        window (a web page request: the WebSocket it may become asks `throttled`)."""
        group = self.group(ip)
        if throttle and (refused := self.throttled(ip, now)) is not None:
            return refused
        if self.max_per_ip and self.per_group.get(group, 0) >= self.max_per_ip:
            sid = self._take_held(group)
            if sid is None:
                return Refusal(ErrorCode.TOO_MANY_CONNECTIONS,
                               f"{group} has its maximum of {self.max_per_ip} connections")
            return sid  # the counts stay: the slot changes hands within the group
        if self.max_clients and self.total >= self.max_clients:
            sid = self._take_held(None)
            if sid is None:
                return Refusal(ErrorCode.SERVER_FULL,
                               f"the server has its maximum of {self.max_clients} connections")
            self.per_group[group] = self.per_group.get(group, 0) + 1
            return sid  # the total stays: the slot moved to this group
        self.per_group[group] = self.per_group.get(group, 0) + 1
        self.total += 1
        return None

    def throttled(self, ip: str, now: float) -> Refusal | None:
        """Takes one new connection of the address's window; Refusal if it has none."""
        group = self.group(ip)
        if self.throttle and not self._may_connect(group, now):
            return Refusal(ErrorCode.TOO_MANY_CONNECTIONS,
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


class AdmissionPolicy:
    """Who may connect, who must wait, and the words of every refusal: the connection
    limits (8.4), the wait after wrong server passwords (11.2) and operator passwords
    (15.1), and address bans (15.3), in that order of precedence."""

    __slots__ = ("admission", "oper_passwords", "password", "passwords")

    def __init__(self, admission: Admission, *, password: bool) -> None:
        self.admission = admission
        self.password = password  # the server has a password: wrong ones make a wait
        self.passwords = PasswordThrottle()
        self.oper_passwords = PasswordThrottle()

    def admit(self, ip: str, now: float, *, ban: Callable[[], BanRecord | None],
              throttle: bool = True) -> Refusal | str | None:
        """As `Admission.admit` (None, or a held session to end: admitted and counted),
        after the password wait and the address ban (`ban` looks it up when needed)."""
        group = self.admission.group(ip)
        wait = self.passwords.wait(group, now) if self.password else 0.0
        if wait > 0:
            return Refusal(ErrorCode.AUTH_THROTTLED, "too many wrong passwords from this "
                           f"address; try again in {math.ceil(wait)}s", math.ceil(wait),
                           log_level="warning" if self.passwords.first_refusal(group)
                           else "debug")
        if (record := ban()) is not None:
            return Refusal(ErrorCode.BANNED, f"your address ({record.label}) is banned from "
                           f"this server {record.describe()}", until=record.until_stamp(),
                           log_level="info")
        return self.admission.admit(ip, now, throttle=throttle)

    def web_socket(self, ip: str, now: float) -> Refusal | None:
        """A WebSocket upgrade from a counted web connection takes a new connection of
        the address's window (its page request did not)."""
        return self.admission.throttled(ip, now)

    def oper_refusal(self, ip: str, now: float) -> Refusal | None:
        """An operator login from an address that must still wait (15.1)."""
        wait = self.oper_passwords.wait(self.admission.group(ip), now)
        if wait <= 0:
            return None
        return Refusal(ErrorCode.OPER_THROTTLED, "too many wrong operator passwords from this "
                       f"address; try again in {math.ceil(wait)}s", math.ceil(wait))

    def wrong_password(self, ip: str, now: float) -> str | None:
        """A wrong server password; the log line when its address must now wait."""
        group = self.admission.group(ip)
        count = self.passwords.failed(group, now)
        wait = self.passwords.wait(group, now)
        if not wait:
            return None
        return (f"{count} wrong passwords in a row from {group}: its connections are "
                f"refused for {wait:g}s")

    def wrong_oper(self, ip: str, now: float) -> str:
        """A wrong operator password; the audit line (without the password)."""
        group = self.admission.group(ip)
        count = self.oper_passwords.failed(group, now)
        return f"audit: wrong operator name or password ({count} in a row from {group})"
