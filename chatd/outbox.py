"""The writer: the hub's effects become one write per connection per event-loop turn.

Nothing here awaits a client (the flush is scheduled on the event loop). The shell
replays each `Effects` (chatd.effects) here in order. The hub speaks updates; they
become bytes here (`encode`), in the mode of whoever reads them: a room's update once
per mode that has readers in the room (`broadcast_update`), not once per reader. A room
is two channels, one a mode: (room key, text mode?).

`send` appends bytes for one connection to its outbox. `broadcast` stores a
line once, in its channel's turn buffer; at the flush every member that had nothing
special this turn gets the same joined bytes, so a line costs O(1) when it is broadcast
and each member one write per turn, however many lines the turn held. Members with a
share of their own (the senders, whose lines skip them; those who got a reply or joined
mid-turn) get their own join, in order. `enter` and `exit` keep the writer's own
membership of each channel: on `exit`, what the channel owed the member so far moves to
its outbox first, so every connection gets exactly its lines, in order. A channel with
no members and nothing to write is forgotten.

Past `max_send_queue` bytes handed to a connection's outlet and not yet sent, it is cut
off (PROTOCOL.txt 8.2). `send_paced` lines (a resume's replay) are written only while
the connection has less than half of that unsent; what it is sent meanwhile waits
behind them, counted against the same bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeAlias

from chatd import protocol as p
from chatd.effects import Page
from chatd.serverlog import ServerLog

Channel: TypeAlias = tuple[str, bool]  # (room key, text mode)

# After a flush in which one room took long (a join announced to thousands: over
# SPREAD_AFTER), the next flush waits as long as that flush took, up to SPREAD_MAX:
# arrivals meanwhile (a burst of joins) go out in one flush, one write per member,
# instead of one flush each. Only a costly room starts it: a flush of many ordinary
# rooms (66,000 deliveries a second in 200 rooms of 50) routinely takes over 0.5 ms,
# and a rule on the whole flush's cost delayed a third of a city run's flushes, by 2 ms
# each on average (issue 29). Ordinary rooms of hundreds take well under SPREAD_AFTER.
SPREAD_AFTER = 0.002
SPREAD_MAX = 0.02
# How often a paced connection's queue is looked at besides each flush: at half the
# default send queue in flight, enough for over 50 MB a second to one reader.
PACE_EVERY = 0.002


class Outlet(Protocol):
    """Where a connection's bytes go: a TCP stream writer, or a WebSocket's sender."""

    def send(self, data: bytes) -> int:
        """Hand `data` over; the bytes handed over and not yet sent, after it, or -1 if
        the connection is closing (then nothing was written)."""
        ...

    def close(self) -> None:
        """Send what is buffered, then close."""
        ...

    def abort(self) -> None: ...


def encode(update: p.Update, text: bool) -> bytes:
    return p.encode_text(update) if text else p.encode_json(update)


def page_parts(page: Page[Any], text: bool) -> tuple[list[p.Update], list[bytes]]:
    """What a `Page` sends a reader in that mode, and its bytes: the lines that fit the
    page's limit as sent (PROTOCOL.txt 3.8: at least one, the oldest or the `newest`;
    a line's size differs by mode, and what is sent must fit the send queue, 8.2),
    then the history_end that counts them."""
    lines, total, limit = page.lines, 0, page.limit
    sent: list[p.Update] = []
    parts: list[bytes] = []
    for line in reversed(lines) if page.newest else lines:
        data = encode(line, text)
        total += len(data)
        if parts and total > limit:
            break
        sent.append(line)
        parts.append(data)
    if page.newest:
        sent.reverse()
        parts.reverse()
    end = p.HistoryEnd(page.room, len(parts), page.more or len(parts) < len(lines))
    return [*sent, end], [*parts, encode(end, text)]


class Receiver(Protocol):
    """What the writer needs of a connection (chatd.server.Connection)."""

    @property
    def text(self) -> bool:
        """Its mode: which channel of a room it reads."""
        ...


    out: list[bytes]  # bytes for it alone, in order
    queued: bool  # in the writer's dirty list
    buffer: ChannelBuffer | None  # the turn buffer of the channel it is in
    buffer_from: int  # where its share of that buffer's broadcasts starts this turn
    buffer_own: list[tuple[int, bytes]] | None  # its replies: (broadcasts before, bytes)
    closing: bool
    gone: bool

    @property
    def outlet(self) -> Outlet: ...

    def drop(self, reason: str) -> None: ...


class ChannelBuffer:
    """One channel's members, and its broadcasts during one loop turn (replies wait on
    their member)."""

    __slots__ = ("channel", "data", "dirty", "peers", "skip", "special")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.peers: set[Receiver] = set()
        self.data: list[bytes] = []  # the broadcasts
        self.skip: list[Receiver | None] = []  # each goes to all members but this one
        self.special: set[Receiver] = set()  # members whose share is not the common one
        self.dirty = False

    def share(self, conn: Receiver) -> bytes:
        """What this turn owes one member: the broadcasts from where it joined, less its
        own lines, with its replies in between where they came."""
        at = conn.buffer_from
        parts: list[bytes] = []
        for pos, reply in conn.buffer_own or ():
            if pos > at:
                self._others(conn, at, pos, parts)
            parts.append(reply)
            at = max(at, pos)
        self._others(conn, at, len(self.data), parts)
        return b"".join(parts)

    def _others(self, conn: Receiver, start: int, stop: int, parts: list[bytes]) -> None:
        """The broadcasts in [start, stop) not sent by `conn`, onto `parts`: whole runs
        at a time, found with list.index (C), not a test per line (a sender's share is
        computed every turn it talks). Sinks compare by identity, as index needs."""
        data, skip, at = self.data, self.skip, start
        while at < stop:
            try:
                own = skip.index(conn, at, stop)
            except ValueError:
                break
            parts.extend(data[at:own])
            at = own + 1
        parts.extend(data[at:stop])

    def clear(self) -> None:
        self.data.clear()
        self.skip.clear()
        for conn in self.special:
            if conn.buffer is self:  # its share here is written; others' are not ours
                conn.buffer_from, conn.buffer_own = 0, None
        self.special.clear()
        self.dirty = False


class Paced:
    """A connection's paced lines, and what it was sent meanwhile (in order after them)."""

    __slots__ = ("after", "after_bytes", "lines")

    def __init__(self, lines: Iterator[bytes]) -> None:
        self.lines = lines
        self.after: list[bytes] = []
        self.after_bytes = 0


class Writer:
    def __init__(self, max_send_queue: int, log: ServerLog,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.max_send_queue = max_send_queue
        self.log = log
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None  # set once the server runs
        self.written = 0  # bytes handed to outlets (the heap trims and chatd.metrics read it)
        self.lines_out = 0  # lines for clients, one per receiver (chatd.metrics)
        self.cut_off = 0  # connections dropped for a full send queue
        self.channels: dict[Channel, ChannelBuffer] = {}
        self.rooms: dict[str, list[ChannelBuffer]] = {}  # a room's channels, one a mode
        self._dirty_channels: list[ChannelBuffer] = []
        self._dirty: list[Receiver] = []
        self._pending = False  # a flush is scheduled
        self._wait = 0.0  # seconds before the next flush (see SPREAD_AFTER)
        self._paced: dict[Receiver, Paced] = {}
        self._pacer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ updates

    def send_update(self, conn: Receiver, update: p.Update) -> int:
        """An update for one connection, in its mode; the bytes it took."""
        data = p.encode_text(update) if conn.text else p.encode_json(update)
        if data:
            self.send(conn, data)
        return len(data)

    def send_page(self, conn: Receiver, page: Page[Any]) -> int:
        """A history page (see `page_parts`) in one write; the bytes of its lines, which
        flood control charges (8.3): an empty page costs nothing."""
        _, parts = page_parts(page, conn.text)
        self.send(conn, b"".join(parts))
        return sum(map(len, parts[:-1]))

    def send_paced_updates(self, conn: Receiver, updates: Iterator[p.Update]) -> None:
        text = conn.text
        self.send_paced(conn, (encode(update, text) for update in updates))

    def broadcast_update(self, room: str, update: p.Update, skip: Receiver | None) -> None:
        """An update for every local member of the room but `skip`: encoded once per
        mode that has members here."""
        bufs = self.rooms.get(room)
        if bufs is None:
            return
        for buf in bufs:
            if buf.peers:
                self._store(buf, p.encode_text(update) if buf.channel[1]
                            else p.encode_json(update), skip)

    def enter_room(self, room: str, conn: Receiver) -> None:
        self.enter((room, conn.text), conn)

    def exit_room(self, room: str, conn: Receiver) -> None:
        self.exit((room, conn.text), conn)

    # ------------------------------------------------------------------ bytes

    def send(self, conn: Receiver, data: bytes) -> None:
        """Bytes for one connection, in order with its channel's lines of this turn."""
        buf = conn.buffer
        if buf is not None:
            if conn.buffer_own is None:
                conn.buffer_own = []
            conn.buffer_own.append((len(buf.data), data))
            buf.special.add(conn)
            self._mark(buf)
        else:
            self._to_outbox(conn, data)
        self.lines_out += 1

    def send_paced(self, conn: Receiver, lines: Iterator[bytes]) -> None:
        """Lines for one connection, after what it was sent so far and before anything
        sent after: written as its send queue drains (PROTOCOL.txt 8.2, 10.2), never
        more than half the queue ahead of the client."""
        buf = conn.buffer
        if buf is not None and (buf.data or conn.buffer_own):  # what it is owed so far
            owed = buf.share(conn)
            conn.buffer_from, conn.buffer_own = len(buf.data), None
            buf.special.add(conn)
            if owed:
                conn.out.append(owed)
        paced = self._paced.get(conn)
        if paced is not None:  # after the paced lines it already has
            paced.lines = _chain(paced.lines, [b"".join(conn.out)] if conn.out else [], lines)
            conn.out.clear()
            return
        if conn.out:
            lines = _chain([b"".join(conn.out)], lines)
            conn.out.clear()
        self._paced[conn] = Paced(lines)
        self.pace()

    def broadcast(self, channel: Channel, data: bytes, skip: Receiver | None) -> None:
        """A line for every member of the channel but `skip`: stored once."""
        buf = self.channels.get(channel)
        if buf is None or not buf.peers:
            return  # nobody here reads this channel
        self._store(buf, data, skip)

    def _store(self, buf: ChannelBuffer, data: bytes, skip: Receiver | None) -> None:
        buf.data.append(data)
        buf.skip.append(skip)
        if skip is not None and skip.buffer is buf:  # a sender of the other mode is not here
            buf.special.add(skip)
            self.lines_out -= 1
        # Counted here, once a line, not once a receiver at the flush (the fan-out stays
        # one shared write per member); an update is one line in JSON and nearly always
        # in text mode (chatd.metrics calls them lines).
        self.lines_out += len(buf.peers)
        self._mark(buf)

    def enter(self, channel: Channel, conn: Receiver) -> None:
        buf = self.channels.get(channel)
        if buf is None:
            buf = self.channels[channel] = ChannelBuffer(channel)
            self.rooms.setdefault(channel[0], []).append(buf)
        buf.peers.add(conn)
        conn.buffer = buf
        if buf.data:  # its share starts after what was broadcast before it entered
            conn.buffer_from = len(buf.data)
            buf.special.add(conn)

    def exit(self, channel: Channel, conn: Receiver) -> None:
        buf = self.channels.get(channel)
        if buf is None or conn.buffer is not buf:
            return
        if buf.data or conn.buffer_own:  # settle what it is owed so far, before it leaves
            owed = buf.share(conn)
            if owed:
                self._to_outbox(conn, owed)
        if conn.closing and not conn.queued:  # the channel's flush was to close it
            self._to_outbox(conn, b"")
        buf.special.discard(conn)
        buf.peers.discard(conn)
        conn.buffer, conn.buffer_from, conn.buffer_own = None, 0, None
        if not buf.peers and not buf.dirty:
            self._forget(buf)

    def _forget(self, buf: ChannelBuffer) -> None:
        """A channel with no members and nothing to write goes."""
        del self.channels[buf.channel]
        room = self.rooms[buf.channel[0]]
        room.remove(buf)
        if not room:
            del self.rooms[buf.channel[0]]

    def close_soon(self, conn: Receiver) -> bool:
        """True if the flush will close `conn` after writing what it is owed."""
        if conn in self._paced:
            self._to_outbox(conn, b"")  # closed once its paced lines are written
            return True
        buf = conn.buffer
        if buf is not None:
            buf.special.add(conn)  # its share is written (and it is closed) at the flush
            self._mark(buf)
            return True
        return conn.queued

    # ------------------------------------------------------------------ the flush

    def _to_outbox(self, conn: Receiver, data: bytes) -> None:
        if data:
            conn.out.append(data)
        if not conn.queued:
            conn.queued = True
            self._dirty.append(conn)
            self._schedule()

    def _mark(self, buf: ChannelBuffer) -> None:
        if not buf.dirty:
            buf.dirty = True
            self._dirty_channels.append(buf)
            self._schedule()

    def _schedule(self) -> None:
        if not self._pending and self.loop is not None:
            self._pending = True
            if self._wait <= 0.0:
                self.loop.call_soon(self.flush)
            else:  # see SPREAD_AFTER
                self.loop.call_later(self._wait, self.flush)

    def flush(self) -> None:
        """Once per loop turn: one write per connection that has output waiting."""
        self._pending = False
        clock = self.clock
        started = clock()
        costliest = 0.0
        channels, self._dirty_channels = self._dirty_channels, []
        for buf in channels:
            room_started = clock()
            special = buf.special
            if buf.data:
                common = b"".join(buf.data)  # nobody outside `special` is a sender
                # A copy: a write can end a connection, which changes the channel's set.
                for conn in tuple(buf.peers):
                    self._write(conn, buf.share(conn) if conn in special else common)
            else:  # only replies this turn: just their receivers
                for conn in tuple(special):
                    self._write(conn, buf.share(conn))
            buf.clear()
            if not buf.peers and self.channels.get(buf.channel) is buf:
                self._forget(buf)
            costliest = max(costliest, clock() - room_started)
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            if conn.queued:
                self._write(conn, b"")
        if self._paced:
            self.pace()
        self._wait = min(clock() - started, SPREAD_MAX) if costliest > SPREAD_AFTER else 0.0

    def pace(self) -> None:
        """Write paced lines to each connection that has room for them (see
        `send_paced`); while some are left, look again in PACE_EVERY."""
        for conn, paced in list(self._paced.items()):
            self._pace(conn, paced)
        if self._paced and self.loop is not None and self._pacer is None:
            self._pacer = self.loop.call_later(PACE_EVERY, self._pace_again)

    def _pace_again(self) -> None:
        self._pacer = None
        self.pace()

    def _pace(self, conn: Receiver, paced: Paced) -> None:
        outlet = conn.outlet
        unsent = outlet.send(b"") if not conn.gone else -1
        if unsent < 0:
            del self._paced[conn]
            return
        budget = self.max_send_queue // 2
        while unsent < budget:
            data = next(paced.lines, None)
            if data is None:  # all written: what waited behind them goes now
                del self._paced[conn]
                if paced.after:
                    conn.out[:0] = paced.after  # before anything queued since
                if paced.after or conn.closing:
                    self._write(conn, b"")
                return
            unsent = outlet.send(data)
            if unsent < 0:
                del self._paced[conn]
                return
            self.written += len(data)
            self.lines_out += 1

    def _write(self, conn: Receiver, data: bytes) -> None:
        out = conn.out
        if out:  # earlier bytes for it alone (before it entered this channel) go first
            data = b"".join(out) + data if data else b"".join(out)
            out.clear()
        conn.queued = False
        if conn.gone:
            return
        if self._paced:
            paced = self._paced.get(conn)
            if paced is not None:  # after its paced lines, within the same bound
                paced.after.append(data)
                paced.after_bytes += len(data)
                if paced.after_bytes > self.max_send_queue // 2:
                    del self._paced[conn]
                    self._cut_off(conn)
                return
        outlet = conn.outlet
        if data:
            unsent = outlet.send(data)
            if unsent < 0:
                return
            self.written += len(data)
            if unsent > self.max_send_queue:
                self._cut_off(conn)
                return
        if conn.closing:
            outlet.close()

    def _cut_off(self, conn: Receiver) -> None:
        self.log.warning(f"{conn} disconnected: send queue over "
                         f"{self.max_send_queue} bytes (the client is not reading)")
        self.cut_off += 1
        conn.drop("send queue full")


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part
