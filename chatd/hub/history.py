"""What the hub remembers of what was said: each room's recent lines, the history of
rooms nobody is in (`Archive`), the private lines sessions keep for resume (`Inboxes`),
all bounded in bytes (PROTOCOL.txt 8.6), and the pages of it a reader asks for (3.8).
The store that outlives the process (chatd.store, or a cluster's room streams:
chatd.roomstreams) is the `HistorySink` given at construction or by `use_sink`."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Generic, Protocol

from chatd.hub.base import ENTRY_OVERHEAD, Entry, HubConfig, Key, P, entries_cost, entry_cost
from chatd.hub.state import Session


class HistorySink(Protocol):
    """Where chat lines go to outlive the process (chatd.store); loaded per room on demand."""

    durable: bool  # keeps every line, so a room nobody is in needs no copy in memory

    def load(self, room: str, limit: int) -> list[Entry]: ...

    def append(self, room: str, entry: Entry) -> None: ...

    def accepting(self) -> bool:
        """False while the sink cannot keep more lines: new room lines are refused."""
        ...


class NoSink:
    durable = False

    def load(self, room: str, limit: int) -> list[Entry]:
        return []

    def append(self, room: str, entry: Entry) -> None:
        pass

    def accepting(self) -> bool:
        return True


class Archive:
    """The history of rooms nobody is in, while it fits in `budget` (oldest room goes
    first), for a hub whose history has no database: a room that fills again gets its
    lines back. With a database, a room's history is simply loaded again."""

    __slots__ = ("budget", "bytes", "rooms")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.bytes = 0
        self.rooms: dict[str, tuple[list[Entry], int]] = {}  # oldest first

    def put(self, room: str, lines: list[Entry], cost: int) -> None:
        self.take(room)
        self.rooms[room] = (lines, cost)
        self.bytes += cost
        while self.bytes > self.budget and self.rooms:
            self.take(next(iter(self.rooms)))

    def take(self, room: str) -> list[Entry]:
        lines, cost = self.rooms.pop(room, ([], 0))
        self.bytes -= cost
        return lines


class Inboxes(Generic[P]):
    """The private lines sessions keep for resume (PROTOCOL.txt 8.6), bounded in bytes:
    per session by `per_session` (and `count` lines), in all by `budget`, past which the
    oldest private line on the server goes first. A line is a few bytes or 64 KiB, so
    a count alone let 50 sessions hold 150 MB (issue 22)."""

    __slots__ = ("budget", "bytes", "count", "order", "per_session")

    def __init__(self, budget: int, per_session: int, count: int) -> None:
        self.budget, self.per_session, self.count = budget, per_session, max(1, count)
        self.bytes = 0
        # Every kept line, oldest first; log order is key order, so the oldest here is
        # the oldest of its session's inbox too.
        self.order: OrderedDict[tuple[Key, str], Session[P]] = OrderedDict()

    def keep(self, session: Session[P], entry: Entry) -> None:
        """Add the newest line; the session's (then the server's) oldest go past a bound.
        The newest line always stays."""
        inbox = session.inbox
        if inbox is None:
            inbox = session.inbox = deque()
        cost = entry_cost(entry)
        inbox.append(entry)
        session.inbox_bytes += cost
        self.bytes += cost
        self.order[(entry.key, session.sid)] = session
        self._bound(session)

    def _bound(self, session: Session[P]) -> None:
        inbox = session.inbox
        assert inbox is not None
        while len(inbox) > 1 and (len(inbox) > self.count
                                  or session.inbox_bytes > self.per_session):
            self._drop_oldest(session)
        while self.bytes > self.budget and len(self.order) > 1:
            self._drop_oldest(next(iter(self.order.values())))

    def _drop_oldest(self, session: Session[P]) -> None:
        assert session.inbox
        entry = session.inbox.popleft()
        cost = entry_cost(entry)
        session.inbox_bytes -= cost
        self.bytes -= cost
        del self.order[(entry.key, session.sid)]
        if not session.inbox:
            session.inbox = None

    def drop(self, session: Session[P]) -> None:
        """The session ended: its lines go with it."""
        for entry in session.inbox or ():
            del self.order[(entry.key, session.sid)]
        self.bytes -= session.inbox_bytes
        session.inbox, session.inbox_bytes = None, 0

    def reindex(self, sessions: Iterable[Session[P]]) -> None:
        """Count what restored sessions hold (a snapshot carries their inboxes)."""
        held = [s for s in sessions if s.inbox]
        self.bytes, self.order = 0, OrderedDict()
        for session in held:
            assert session.inbox is not None
            session.inbox = deque(session.inbox)  # bounded here, not by maxlen
            session.inbox_bytes = entries_cost(session.inbox)
            self.bytes += session.inbox_bytes
        pairs = sorted((((e.key, s.sid), s) for s in held for e in s.inbox or ()),
                       key=lambda pair: pair[0])
        self.order.update(pairs)
        for session in held:  # within bounds again, were they changed since the snapshot
            if session.inbox:
                self._bound(session)


class History(Generic[P]):
    """The recent lines of every room in memory (`lines`, by room key, sorted by key and
    trimmed lazily), within `config.history_memory` bytes in all; loaded from the sink
    the first time a room is read."""

    __slots__ = ("archive", "bytes", "config", "inboxes", "keeps", "lines", "sink",
                 "takes_all", "_loaded")

    def __init__(self, config: HubConfig, sink: HistorySink | None = None) -> None:
        self.config = config
        self.sink: HistorySink = sink or NoSink()
        # Whether there is a sink to write to (and to ask whether it takes more): a chat
        # line skips two calls where there is none.
        self.keeps = sink is not None
        # Whether the sink takes every room line or only this node's own (chatd.roomstreams:
        # the node that writes the snapshot writes the room streams, from any node).
        self.takes_all = False
        self.lines: dict[str, list[Entry]] = {}
        self.bytes = 0  # entry_cost of every line in `lines`
        self._loaded: set[str] = set()  # rooms whose history was read from the sink
        self.archive = Archive(config.history_memory // 4)
        self.inboxes: Inboxes[P] = Inboxes(config.private_memory, config.inbox_bytes,
                                           config.inbox_size)

    def use_sink(self, sink: HistorySink, takes_all: bool) -> None:
        self.sink, self.takes_all, self.keeps = sink, takes_all, True

    def remember(self, room: str, entry: Entry, own: bool) -> None:
        """A room line, said on this node (`own`) or another."""
        lines = self.lines.get(room)
        if not lines:
            self.retained(room)  # loads what the sink kept, before adding to it
            lines = self.lines.setdefault(room, [])
        lines.append(entry)
        self.bytes += ENTRY_OVERHEAD + 2 * (len(entry.message) + len(entry.name))  # entry_cost
        if len(lines) >= 2 * self.config.history_size:
            self._trim(room, len(lines) - self.config.history_size)
        if self.bytes > self.config.history_memory:
            self._shrink(room)
        # In a cluster, the node the line came from writes it, once
        if self.keeps and (own or self.takes_all):
            self.sink.append(room, entry)

    def _trim(self, room: str, count: int) -> None:
        """Forget a room's oldest `count` lines (the database, if any, keeps them)."""
        lines = self.lines[room]
        self.bytes -= entries_cost(lines[:count])
        del lines[:count]

    def _shrink(self, room: str) -> None:
        """Over the memory budget (PROTOCOL.txt 8.6): the room that grew gives up its
        oldest lines first, keeping its newest; then, if that is not enough, the others."""
        for victim in (room, *(r for r in self.lines if r != room)):
            excess = self.bytes - self.config.history_memory
            if excess <= 0:
                return
            count = 0
            lines = self.lines[victim]
            for entry in lines[:-1] if victim == room else lines:
                if excess <= 0:
                    break
                excess -= entry_cost(entry)
                count += 1
            self._trim(victim, count)

    def retained(self, room: str) -> list[Entry]:
        """The room's last `history_size` lines (loaded from the sink on first use)."""
        lines = self.lines.get(room)
        if not lines and room not in self._loaded:
            self._loaded.add(room)
            lines = self.lines[room] = self.archive.take(room) or self.sink.load(
                room, self.config.history_size)
            self.bytes += entries_cost(lines)
        if lines is None:
            return []
        size = self.config.history_size
        return lines if len(lines) <= size else lines[-size:]

    def forget(self, room: str) -> None:
        """Nobody is in the room any more: its lines leave memory for the database, or
        for the archive."""
        self._loaded.discard(room)
        lines = self.lines.pop(room, [])
        cost = entries_cost(lines)
        self.bytes -= cost
        if lines and not self.sink.durable:
            self.archive.put(room, lines, cost)

    def keep_private(self, holder: Session[P], entry: Entry) -> None:
        """A private line kept in the holder's inbox, for its resume (10.2)."""
        self.inboxes.keep(holder, entry)

