"""What every part of the hub shares: its configuration, what it needs of a connection,
and the order of the log (ids and the stamp of the entry being applied)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Protocol, TypeAlias, TypeVar

from chatd import protocol as p
from chatd.protocol import ErrorCode, ProtocolError


class Peer(Protocol):
    """What the hub needs of a connection: an id unique on this node, and its mode."""

    @property
    def cid(self) -> int: ...

    @property
    def text(self) -> bool: ...


P = TypeVar("P", bound=Peer)
Key: TypeAlias = tuple[int, int, int]


_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?(?:\.(\d{1,6}))?", re.ASCII)


def id_key(value: str) -> Key:
    """The order of an id: "42" (one process), "1700000000000-3" (a Redis stream id);
    ".N" marks the N-th further update made by the same command ("42.1")."""
    match = _ID.fullmatch(value)
    if match is None:
        raise ProtocolError(ErrorCode.BAD_ID, f"{value[:40]!r} is not a message id")
    return int(match[1]), int(match[2] or 0), int(match[3] or 0)


class Stamp:
    """The id and time of the log entry being applied. An entry making several updates
    (a user leaving several rooms, a node's users leaving, a cluster entry holding
    several commands) gives them ids "42", "42.1", "42.2", ..."""

    __slots__ = ("base", "key", "now", "time", "_used")

    def __init__(self, log_id: str, key: tuple[int, int], now: float) -> None:
        self.base = log_id
        self.key: Key = (key[0], key[1], 0)
        self.now = now
        self.time = p.format_time(now)
        self._used = 0

    def next_id(self) -> tuple[str, Key]:
        n, self._used = self._used, self._used + 1
        if n == 0:
            return self.base, self.key
        return f"{self.base}.{n}", (self.key[0], self.key[1], n)


@dataclass(frozen=True, slots=True)
class HubConfig:
    history_size: int = 1000  # chat lines kept per room
    history_on_join: int = 50  # lines a joiner receives after its welcome
    resume_grace: float = 120.0  # seconds a broken session waits for its client
    inbox_size: int = 100  # private lines kept per session for resume
    inbox_bytes: int = 256 * 1024  # ... and bytes of them (entry_cost), PROTOCOL.txt 8.6
    private_memory: int = 16 * 1024 * 1024  # bytes of private lines kept, in all sessions
    node_timeout: float = 5.0  # a node silent this long (log time) is declared gone
    server_name: str = "chatd"
    # Bytes (about) of history kept in memory for rooms with people in them; as much
    # again, a quarter of it, for rooms nobody is in when history has no database.
    history_memory: int = 64 * 1024 * 1024
    max_line_bytes: int = 0  # the server's line limit, announced in the welcome (4.1)
    max_rooms: int = p.DEFAULT_MAX_ROOMS  # rooms one session may be in at once (17.11)
    # Bytes of names in a welcome or a who answer (4.1, 4.7): a room of thousands, or
    # a crowd's long names, must not make every join's answer grow without end.
    names_bytes: int = 32 * 1024
    # Bytes of a history page (and a joiner's recent lines) as sent in the reader's mode
    # (3.8): half the send queue, so no page can cut its reader off (8.2).
    page_bytes: int = 128 * 1024
    # Operator names and passwords (PROTOCOL.txt 15.1); never in a repr or a log line.
    opers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Accounts (PROTOCOL.txt 18.9): --accounts, --registration, --account-expiry,
    # --max-accounts.
    accounts: str = "optional"
    registration: str = "open"
    account_expiry: float = 365 * 86400.0
    max_accounts: int = 100_000
    max_devices: int = 5  # connections (and held sessions) of one account at once (18.4)
    # Mark the copy of a room line that names its JSON reader (18.6, --no-mentions to
    # stop): a line naming nobody costs one translate, split and set test in C (about
    # half a microsecond; bench.hotpath measured +2% to +22% a line on a loaded machine).
    mentions: bool = True


@dataclass(slots=True)
class Entry:
    """One chat line as history keeps it."""

    key: Key
    id: str
    time: str
    name: str
    message: str
    sid: str = ""
    ref: str | None = None
    to: str | None = None  # set for private lines (kept in inboxes only)


ENTRY_OVERHEAD = 320  # bytes a history line costs besides its text (ids, time, objects)


def entry_cost(entry: Entry) -> int:
    """About what a line of history holds in memory (text at two bytes a character)."""
    return ENTRY_OVERHEAD + 2 * (len(entry.message) + len(entry.name))


_MESSAGE, _NAME = attrgetter("message"), attrgetter("name")


def entries_cost(entries: Iterable[Entry]) -> int:
    """`entry_cost` of every line, summed in C: a room's trim counts a thousand lines,
    once every thousand it is sent (bench.hotpath)."""
    entries = entries if isinstance(entries, list) else list(entries)
    return (ENTRY_OVERHEAD * len(entries)
            + 2 * (sum(map(len, map(_MESSAGE, entries))) + sum(map(len, map(_NAME, entries)))))
