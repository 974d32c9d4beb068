"""Moderation state, pure: operator credentials, bans, mutes and room topics (PROTOCOL.txt 15).

The hub (chatd.hub) owns one `Moderation` and changes it only while applying commands, so
every cluster node holds the same bans, mutes and topics at the same point of the log.
Times are the log's clock (seconds since the epoch); nothing here reads a clock.

A name ban is keyed by `name_key`, so it covers the name's look-alikes (5.1). An address
ban is a network: one IPv4 address, or an IPv6 address widened to its /64 (one subscriber
usually has a whole /64), or a prefix given as ADDRESS/LENGTH.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol, TypeVar

from chatd import protocol as p
from chatd.protocol import ErrorCode, ProtocolError

MAX_BANS: Final = 10_000  # bans held at once; past it, the oldest expiring one goes
MAX_MUTES: Final = 10_000
IPV6_BAN_PREFIX: Final = 64  # an IPv6 address is banned with its /64
MIN_PREFIX: Final = {4: 8, 6: 32}  # broader prefixes are refused: a typo could ban everyone

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_opers(spec: str) -> tuple[tuple[str, str], ...]:
    """"name:pw,name2:pw2" (CHATD_OPERS) or one "name:pw" (--oper) -> pairs; ValueError
    names the faulty entry without its password."""
    pairs = []
    for item in spec.split(","):
        name, sep, password = item.strip().partition(":")
        if not sep or not name.strip() or not password:
            raise ValueError(f"operator {name.strip()[:32] or '?'}: give NAME:PASSWORD")
        pairs.append((p.normalize_name(name), password))
    return tuple(pairs)


class Credentials:
    """Operator names and passwords. A check compares against every entry in constant
    time, so neither the name nor the password leaks through timing."""

    __slots__ = ("_entries",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._entries = [(p.name_key(name).encode(), password.encode())
                         for name, password in pairs]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def check(self, name: str, password: str) -> bool:
        key, given = p.name_key(name).encode(), password.encode()
        ok = False
        for entry_key, entry_password in self._entries:
            # Both compared always: & rather than `and`, so no comparison is skipped.
            ok |= hmac.compare_digest(key, entry_key) & hmac.compare_digest(
                given, entry_password)
        return ok


def ban_network(text: str) -> str:
    """An address or prefix as a ban stores it ("192.0.2.7/32", "2001:db8::/64")."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ProtocolError(ErrorCode.BAD_FIELD,
                            f"{text[:60]!r} is not an IPv4/IPv6 address or prefix") from None
    if isinstance(net, ipaddress.IPv6Network) and "/" not in text:
        net = net.supernet(new_prefix=IPV6_BAN_PREFIX)
    if net.prefixlen < MIN_PREFIX[net.version]:
        raise ProtocolError(ErrorCode.BAD_FIELD, f"prefix {net} is too broad (at least "
                            f"/{MIN_PREFIX[net.version]} for IPv{net.version})")
    return str(net)


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class BanRecord:
    kind: str  # "name" or "address"
    key: str  # the name's key, or the network
    label: str  # the name as typed, or the network
    until: float  # log time the ban ends; 0: permanent
    by: str
    reason: str
    since: float

    def describe(self) -> str:
        """ "until 2026-11-29T05:00:00.000Z" or "permanently", and the reason."""
        when = f"until {p.format_time(self.until)}" if self.until else "permanently"
        return when + (f" ({self.reason})" if self.reason else "")

    def until_stamp(self) -> str:
        """When the ban ends, as the error line's "until" says it; "": permanent."""
        return p.format_time(self.until) if self.until else ""

    def entry(self) -> p.BanEntry:
        return p.BanEntry(self.kind, self.label, p.format_time(self.until) if self.until else "",
                          self.by, self.reason, p.format_time(self.since))


def ban_error(ban: BanRecord, name: str) -> p.Error:
    """What a banned name or address is told, before it is closed (15.3)."""
    what = f"the name {name} is" if ban.kind == "name" else f"your address ({ban.label}) is"
    return p.Error(ErrorCode.BANNED,
                   f"{what} banned from this server by {ban.by} {ban.describe()}",
                   until=ban.until_stamp())


@dataclass(slots=True)
class MuteRecord:
    by: str
    reason: str
    name: str = ""  # the key of the name its person goes by now (it follows a /nick)
    network: str = ""  # where they joined from (`subscriber`): a rejoin from there is them


def subscriber(ip: str) -> str:
    """An address as a mute remembers a person by: IPv4 as it is, IPv6 by its /64."""
    address = _address(ip)
    if address is None:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_BAN_PREFIX), strict=False))
    return str(address)


K = TypeVar("K")


def _lift(table: dict[K, dict[str, MuteRecord]], key: str, room: str | None) -> int:
    """Remove the mutes of the name `key` (in `room`, or every room) from `table`."""
    gone = 0
    for holder, rooms in list(table.items()):
        for r in [r for r, m in rooms.items() if m.name == key and room in (None, r)]:
            del rooms[r]
            gone += 1
        if not rooms:
            del table[holder]
    return gone


@dataclass(frozen=True, slots=True)
class TopicRecord:
    text: str
    by: str
    since: float


class Moderation:
    """Bans, mutes and topics; each table bounded."""

    __slots__ = ("bans", "left", "mutes", "networks", "topics")

    def __init__(self) -> None:
        self.bans: dict[tuple[str, str], BanRecord] = {}  # (kind, key) -> ban
        self.networks: dict[str, Network] = {}  # address bans, parsed once
        # A mute follows the person (PROTOCOL.txt 15.4): their session while it lasts,
        # then their name and network, so a rejoin under the name from there is them.
        self.mutes: dict[str, dict[str, MuteRecord]] = {}  # session id -> room key -> mute
        self.left: dict[tuple[str, str], dict[str, MuteRecord]] = {}  # (name key, network) -> ...
        self.topics: dict[str, TopicRecord] = {}  # room key -> topic

    # ------------------------------------------------------------------ bans

    def ban(self, record: BanRecord) -> None:
        if len(self.bans) >= MAX_BANS and (record.kind, record.key) not in self.bans:
            self.expire(record.since)
            if len(self.bans) >= MAX_BANS:  # the one ending soonest goes
                oldest = min(self.bans.values(), key=lambda b: b.until or float("inf"))
                self.unban(oldest.kind, oldest.key)
        self.bans[(record.kind, record.key)] = record
        if record.kind == "address":
            self.networks[record.key] = ipaddress.ip_network(record.key)

    def unban(self, kind: str, key: str) -> BanRecord | None:
        self.networks.pop(key, None) if kind == "address" else None
        return self.bans.pop((kind, key), None)

    def expire(self, now: float) -> list[BanRecord]:
        gone = [b for b in self.bans.values() if b.until and b.until <= now]
        for ban in gone:
            self.unban(ban.kind, ban.key)
        return gone

    def name_ban(self, name: str, now: float) -> BanRecord | None:
        if not self.bans:
            return None
        ban = self.bans.get(("name", p.name_key(name)))
        return ban if ban is not None and (not ban.until or ban.until > now) else None

    def check_name(self, name: str, now: float) -> None:
        """Refuse a name banned now (a rename, PROTOCOL.txt 15.3)."""
        if (ban := self.name_ban(name, now)) is not None:
            raise ProtocolError(ErrorCode.NAME_BANNED, f"the name {name} is banned "
                                f"{ban.describe()}", until=ban.until_stamp())

    def address_ban(self, ip: str, now: float) -> BanRecord | None:
        if not self.networks:
            return None
        address = _address(ip)
        if address is None:
            return None
        for key, net in self.networks.items():
            if address.version == net.version and address in net:
                ban = self.bans[("address", key)]
                if not ban.until or ban.until > now:
                    return ban
        return None

    def listed(self, now: float) -> tuple[p.BanEntry, ...]:
        return tuple(b.entry() for b in sorted(self.bans.values(), key=lambda b: b.since)
                     if not b.until or b.until > now)

    # ------------------------------------------------------------------ mutes

    def mute(self, room: str, sid: str, *, name: str, address: str, by: str, reason: str
             ) -> None:
        if sid not in self.mutes and len(self.mutes) + len(self.left) >= MAX_MUTES:
            if self.left:  # people who left go first, the oldest
                del self.left[next(iter(self.left))]
            else:
                del self.mutes[next(iter(self.mutes))]
        self.mutes.setdefault(sid, {})[room] = MuteRecord(by, reason, p.name_key(name),
                                                    subscriber(address))

    def unmute(self, room: str | None, name: str) -> int:
        """Lift the mutes of whoever goes by `name` now, or left under it."""
        key = p.name_key(name)
        return _lift(self.mutes, key, room) + _lift(self.left, key, room)

    def is_muted(self, name: str, room: str | None) -> bool:
        key = p.name_key(name)
        return any(m.name == key and room in (None, r) for table in (self.mutes, self.left)
                   for rooms in table.values() for r, m in rooms.items())

    def muted(self, room: str, sid: str) -> MuteRecord | None:
        rooms = self.mutes.get(sid) if self.mutes else None
        return rooms.get(room) if rooms else None

    def renamed(self, sid: str, name: str) -> None:
        for mute in self.mutes.get(sid, {}).values():
            mute.name = p.name_key(name)

    def ended(self, sid: str) -> None:
        """The session is gone: its mutes wait for the person under its name."""
        rooms = self.mutes.pop(sid, None)
        if rooms:
            mute = next(iter(rooms.values()))
            self.left.setdefault((mute.name, mute.network), {}).update(rooms)

    def joined(self, sid: str, names: Iterable[str], address: str) -> None:
        """A new session: the person who left muted under one of `names` (the name it
        asked for, the one it got) from the same network is muted again."""
        if not self.left:
            return
        network = subscriber(address)
        for name in names:
            rooms = self.left.pop((p.name_key(name), network), None)
            if rooms:
                for mute in rooms.values():
                    mute.name = p.name_key(name)
                self.mutes.setdefault(sid, {}).update(rooms)

    # ------------------------------------------------------------------ replication

    def snapshot(self) -> dict[str, Any]:
        return {"bans": [asdict(b) for b in self.bans.values()],
                "mutes": [[room, holder, asdict(m)] for holder, rooms in self.mutes.items()
                          for room, m in rooms.items()],
                "left": [[room, asdict(m)] for rooms in self.left.values()
                         for room, m in rooms.items()],
                "topics": {room: asdict(t) for room, t in self.topics.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        for ban in data.get("bans", ()):
            self.ban(BanRecord(**ban))
        for item in data.get("mutes", ()):
            if len(item) == 3:  # (an older snapshot's mutes were by name: not a person)
                room, holder, mute = item
                self.mutes.setdefault(holder, {})[room] = MuteRecord(**mute)
        for room, mute in data.get("left", ()):
            record = MuteRecord(**mute)
            self.left.setdefault((record.name, record.network), {})[room] = record
        for room, topic in data.get("topics", {}).items():
            self.topics[room] = TopicRecord(**topic)


class ModerationSink(Protocol):
    """Where bans and topics go to outlive the process (chatd.store, PROTOCOL.txt 15.6)."""

    def load_moderation(self) -> dict[str, Any]: ...

    def save_ban(self, ban: BanRecord) -> None: ...

    def drop_ban(self, kind: str, key: str) -> None: ...

    def save_topic(self, room: str, topic: TopicRecord | None) -> None: ...
