"""The writer: the hub's effects become one write per connection per event-loop turn.

Nothing here awaits a client (the flush is scheduled on the event loop). The shell
replays each `Effects` (chatd.effects) here in order. The hub speaks updates; they
become bytes here (`encode`), in the mode of whoever reads them: a room's update once
per mode that has readers in the room (`broadcast_update`), not once per reader. A room
is three channels, one a mode: (room key, mode): JSON, text for those whose current room
it is, and text with the room's name before each line for those who have it among
their other rooms (PROTOCOL.txt 17.10).

`send` appends bytes for one connection to its outbox. `broadcast` stores a
line once, in its channel's turn buffer; at the flush every member that had nothing
special this turn gets the same joined bytes, so a line costs O(1) when it is broadcast
and each member one write per turn, however many lines the turn held. Members with a
share of their own (the senders, whose lines skip them; those who got a reply or joined
mid-turn) get their own join, in order: each broadcast and reply has its place in the
turn (`seq`). A connection reads one channel of each of its rooms; one that reads
several is sent each of their lines into its outbox as the line is made, so it gets
them in the order they were made, replies among them, with nothing to merge (its last
id seen is a true mark for a resume, 10.2): with a line or two a turn for each reader
(a city of small rooms) that costs less than a shared buffer, and one room's fan-out
is as it was. `enter` and `exit` keep the writer's own membership of each channel: on
`exit`, what the channel owed the member so far stays owed in its place, and a member
that comes to read several channels, or one again, takes what it was owed along, so
every connection gets exactly its lines, in order. A channel with no members and
nothing to write is forgotten.

Past `max_send_queue` bytes handed to a connection's outlet and not yet sent, it is cut
off (PROTOCOL.txt 8.2). `send_paced` lines (a resume's replay) are written only while
the connection has less than half of that unsent; what it is sent meanwhile waits
behind them, counted against the same bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeAlias

from chatd import protocol as p
from chatd.effects import Page
from chatd.serverlog import ServerLog

Channel: TypeAlias = tuple[str, int]  # (room key, mode: JSON, TEXT or PREFIXED)
JSON, TEXT, PREFIXED = 0, 1, 2

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


def encode_in(update: p.Update, mode: int) -> bytes:
    """An update as a channel of that mode reads it."""
    if mode == JSON:
        return p.encode_json(update)
    room = getattr(update, "room", None) if mode == PREFIXED else None
    return p.encode_text(update, p.room_prefix(room)) if room else p.encode_text(update)


def page_parts(page: Page[Any], mode: int) -> tuple[list[p.Update], list[bytes]]:
    """What a `Page` sends a reader in that mode (JSON, TEXT or PREFIXED: a room a
    text reader has among its other rooms, 17.10), and its bytes: the lines that fit
    the page's limit as sent (PROTOCOL.txt 3.8: at least one, the oldest or the
    `newest`; a line's size differs by mode, and what is sent must fit the send queue,
    8.2), then the history_end that counts them."""
    lines, total, limit = page.lines, 0, page.limit
    sent: list[p.Update] = []
    parts: list[bytes] = []
    for line in reversed(lines) if page.newest else lines:
        data = encode_in(line, mode)
        total += len(data)
        if parts and total > limit:
            break
        sent.append(line)
        parts.append(data)
    if page.newest:
        sent.reverse()
        parts.reverse()
    end = p.HistoryEnd(page.room, len(parts), page.more or len(parts) < len(lines))
    return [*sent, end], [*parts, encode_in(end, mode)]


class Receiver(Protocol):
    """What the writer needs of a connection (chatd.connection.Connection)."""

    @property
    def text(self) -> bool:
        """Its mode: which channel of a room it reads."""
        ...

    out: list[bytes]  # bytes for it alone, written before its share of this turn
    queued: bool  # in the writer's dirty list
    bufs: list[ChannelBuffer]  # the turn buffers of the channels it reads (one a room)
    starts: dict[ChannelBuffer, int] | None  # where its share of a buffer starts this turn
    own: list[tuple[int, bytes]] | None  # its replies this turn: (place in the turn, bytes)
    special: bool  # its share this turn is its own (in the writer's special list)
    closing: bool
    gone: bool

    @property
    def outlet(self) -> Outlet: ...

    def drop(self, reason: str) -> None: ...


class Apart:
    """The skip of a broadcast that several members of a channel do not get from it (the
    sender, readers sent a copy of their own): equal to each of them, so the
    `list.index` of `ChannelBuffer.others` finds it for any of them."""

    __slots__ = ("conns",)

    def __init__(self, skip: Receiver | None, apart: Sequence[Receiver]) -> None:
        self.conns = (*apart, skip) if skip is not None else tuple(apart)

    def __eq__(self, other: object) -> bool:
        return any(other is conn for conn in self.conns)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__


class ChannelBuffer:
    """One channel's members, and its broadcasts during one loop turn, each with its
    place in the turn (`seq`, across channels)."""

    __slots__ = ("channel", "data", "dirty", "multi", "peers", "seq", "skip")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.peers: set[Receiver] = set()
        # The members that read other channels too: each broadcast goes to their outbox
        # as it is made (`Writer._store`), so their lines of several channels are in the
        # order they were made with nothing to merge; the flush writes the channel's
        # joined bytes to the others (while there are none: one room's fan-out, as is).
        self.multi: set[Receiver] = set()
        self.data: list[bytes] = []  # the broadcasts
        # each goes to all members but this one (or these: Apart)
        self.skip: list[Receiver | Apart | None] = []
        self.seq: list[int] = []  # each one's place in the turn
        self.dirty = False

    def owed(self, conn: Receiver, start: int) -> list[tuple[int, bytes]]:
        """The broadcasts from `start` not sent by `conn`, with their places."""
        data, skip, seq = self.data, self.skip, self.seq
        return [(seq[i], data[i]) for i in range(start, len(data))
                if skip[i] is not conn and skip[i] != conn]

    def others(self, conn: Receiver, start: int, parts: list[bytes]) -> None:
        """The broadcasts from `start` not sent by `conn`, onto `parts`: whole runs at a
        time, found with list.index (C), not a test per line (a sender's share is
        computed every turn it talks). Receivers compare by identity, as index needs."""
        data, skip, at, stop = self.data, self.skip, start, len(self.data)
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
        self.seq.clear()
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
        self._special: list[Receiver] = []  # connections whose share is their own this turn
        self._seq = 0  # the place of the turn's last broadcast or reply
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
        buf = _buffer_of(conn, p.name_key(page.room)) if conn.text else None
        _, parts = page_parts(page, buf.channel[1] if buf is not None else int(conn.text))
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
                mode = buf.channel[1]
                self._store(buf, p.encode_json(update) if mode == JSON
                            else encode_in(update, mode), skip)

    def broadcast_mentioning(self, room: str, update: p.Update, skip: Receiver | None,
                             mentioned: Sequence[Receiver], own: Sequence[Receiver] = ()
                             ) -> None:
        """`broadcast_update`, but the JSON readers of `mentioned` get their own copy,
        marked (PROTOCOL.txt 18.6), in the same place: encoded apart, they are few, and
        the others still share one encoding. Text mode shows nothing more. So do the
        sender's other devices in `own`, marked "own" (18.4)."""
        apart = Apart(skip, (*mentioned, *own) if own else mentioned)
        for buf in self.rooms.get(room, ()):
            if buf.peers:
                mode = buf.channel[1]
                self._store(buf, encode_in(update, mode), apart if mode == JSON else skip)
        if isinstance(update, p.Chat):
            if mentioned:
                marked = encode_in(replace(update, mention=True), JSON)
                for conn in mentioned:
                    self.send(conn, marked)
            if own:
                marked = encode_in(replace(update, own=True), JSON)
                for conn in own:
                    self.send(conn, marked)

    def multicast_update(self, room: str, update: p.Update, conns: Sequence[Receiver]
                         ) -> None:
        """An update for some members of the room: encoded once per mode they read the
        room in (a connection not in the room reads it plain)."""
        made: dict[int, bytes] = {}
        for conn in conns:
            buf = _buffer_of(conn, room)
            mode = buf.channel[1] if buf is not None else int(conn.text)
            data = made.get(mode)
            if data is None:
                data = made[mode] = encode_in(update, mode)
            if data:
                self.send(conn, data)

    def enter_room(self, room: str, conn: Receiver, prefixed: bool = False) -> None:
        self.enter((room, (PREFIXED if prefixed else TEXT) if conn.text else JSON), conn)

    def exit_room(self, room: str, conn: Receiver) -> None:
        buf = _buffer_of(conn, room)
        if buf is not None:
            self.exit(buf.channel, conn)

    # ------------------------------------------------------------------ bytes

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _special_now(self, conn: Receiver) -> None:
        """Its share this turn is computed on its own at the flush."""
        if not conn.special:
            conn.special = True
            self._special.append(conn)
            self._schedule()

    def _share(self, conn: Receiver) -> bytes:
        """What this turn owes `conn` so far: its channels' broadcasts from where it
        entered, less its own lines, and its replies, in the order they were made."""
        starts, own = conn.starts, conn.own
        live = [buf for buf in conn.bufs if buf.data]
        if not own and len(live) <= 1:  # one channel: whole runs, no sort
            parts: list[bytes] = []
            for buf in live:
                buf.others(conn, starts.get(buf, 0) if starts else 0, parts)
            return b"".join(parts)
        placed = list(own or ())
        for buf in live:
            placed += buf.owed(conn, starts.get(buf, 0) if starts else 0)
        placed.sort(key=_first)
        return b"".join([data for _, data in placed])

    def send(self, conn: Receiver, data: bytes) -> None:
        """Bytes for one connection, in order with its channels' lines of this turn."""
        if len(conn.bufs) == 1 or conn.own:  # its place among one channel's lines
            if conn.own is None:
                conn.own = []
            conn.own.append((self._next(), data))
            self._special_now(conn)
        else:
            self._to_outbox(conn, data)
        self.lines_out += 1

    def send_paced(self, conn: Receiver, lines: Iterator[bytes]) -> None:
        """Lines for one connection, after what it was sent so far and before anything
        sent after: written as its send queue drains (PROTOCOL.txt 8.2, 10.2), never
        more than half the queue ahead of the client."""
        if conn.special:  # what it is owed so far; from now on only what comes after
            owed = self._share(conn)
            conn.own = None
            conn.starts = {buf: len(buf.data) for buf in conn.bufs if buf.data} or None
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

    def _store(self, buf: ChannelBuffer, data: bytes, skip: Receiver | Apart | None
               ) -> None:
        buf.data.append(data)
        buf.skip.append(skip)
        self._seq = seq = self._seq + 1  # `_next`, inline: once a line a channel
        buf.seq.append(seq)
        multi = buf.multi
        if type(skip) is Apart:  # the sender and those who get their own copy
            for conn in skip.conns:
                if conn in buf.peers:
                    if conn not in multi:
                        self._special_now(conn)
                    self.lines_out -= 1
            if multi:
                self._to_each(multi, data, skip.conns)
        else:
            if skip is not None and skip in buf.peers:  # a sender of the other mode is not here
                if skip not in multi:
                    self._special_now(skip)  # type: ignore[arg-type]
                self.lines_out -= 1
            if multi:
                self._to_each(multi, data, (skip,))  # type: ignore[arg-type]
        # Counted here, once a line, not once a receiver at the flush (the fan-out stays
        # one shared write per member); an update is one line in JSON and nearly always
        # in text mode (chatd.metrics calls them lines).
        self.lines_out += len(buf.peers)
        if not buf.dirty:  # `_mark`, inline
            buf.dirty = True
            self._dirty_channels.append(buf)
            self._schedule()

    def _to_each(self, conns: Iterable[Receiver], data: bytes,
                 skip: tuple[Receiver | None, ...]) -> None:
        for conn in conns:
            if conn not in skip:
                conn.out.append(data)
                if not conn.queued:
                    conn.queued = True
                    self._dirty.append(conn)

    def enter(self, channel: Channel, conn: Receiver) -> None:
        buf = self.channels.get(channel)
        if buf is None:
            buf = self.channels[channel] = ChannelBuffer(channel)
            self.rooms.setdefault(channel[0], []).append(buf)
        if conn in buf.peers:
            return
        buf.peers.add(conn)
        if conn.bufs:  # it reads several channels now (see ChannelBuffer.multi)
            if len(conn.bufs) == 1:
                self._settle(conn)
                conn.bufs[0].multi.add(conn)
            conn.bufs.append(buf)
            buf.multi.add(conn)
            return
        conn.bufs.append(buf)
        if buf.data:  # its share starts after what was broadcast before it entered
            if conn.starts is None:
                conn.starts = {}
            conn.starts[buf] = len(buf.data)
            self._special_now(conn)

    def exit(self, channel: Channel, conn: Receiver) -> None:
        buf = self.channels.get(channel)
        if buf is None or conn not in buf.peers:
            return
        buf.peers.discard(conn)
        conn.bufs.remove(buf)
        if conn in buf.multi:  # what it was owed is in its outbox already
            buf.multi.discard(conn)
            if len(conn.bufs) == 1:  # one channel left: from now on read as one
                (left,) = conn.bufs
                left.multi.discard(conn)
                if left.data:  # its share of it starts after what it was given
                    conn.starts = {left: len(left.data)}
                    self._special_now(conn)
            if conn.closing:  # the channel's flush was to close it
                self._to_outbox(conn, b"")
        else:
            starts = conn.starts
            start = starts.pop(buf, 0) if starts else 0
            if start < len(buf.data):  # what it is owed so far stays owed, in its place
                owed = buf.owed(conn, start)
                if owed:
                    if conn.own is None:
                        conn.own = []
                    conn.own += owed
                    self._special_now(conn)
            if conn.closing:  # the channel's flush was to close it
                self._special_now(conn)
        if not buf.peers and not buf.dirty:
            self._forget(buf)

    def _settle(self, conn: Receiver) -> None:
        """Before a connection reading one channel reads several: what this turn owes
        it so far goes to its outbox, in order, as the flush would have written it."""
        owed = self._share(conn)
        conn.special, conn.starts, conn.own = False, None, None
        self._to_outbox(conn, owed)

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
        if len(conn.bufs) > 1:  # all it is owed is in its outbox
            self._to_outbox(conn, b"")
            return True
        if conn.bufs or conn.special:
            self._special_now(conn)  # its share is written (and it is closed) at the flush
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
            if buf.data:
                common = b"".join(buf.data)  # nobody but the special ones is a sender
                # A copy: a write can end a connection, which changes the channel's set.
                self._write_each(
                    tuple(buf.peers - buf.multi) if buf.multi else tuple(buf.peers), common)
            costliest = max(costliest, clock() - room_started)
        special, self._special = self._special, []
        for conn in special:
            if conn.special:
                data = self._share(conn)
                conn.special, conn.starts, conn.own = False, None, None
                self._write(conn, data)
        for buf in channels:
            buf.clear()
            if not buf.peers and self.channels.get(buf.channel) is buf:
                self._forget(buf)
        for conn in self._special:  # made special by a write just now (a drop): the
            conn.starts = None  # buffers it counted in are empty again
        self._seq = 0
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

    def _write_each(self, conns: tuple[Receiver, ...], data: bytes) -> None:
        """`data` to each of `conns` but the special ones: `_write`, with the common
        case (nothing else for it, open, not paced) inline, as this is done once a
        delivery (a city: one line a turn to each of 66,000 readers a second)."""
        limit, paced, sent = self.max_send_queue, self._paced, 0
        for conn in conns:
            if conn.special:
                continue
            if conn.out or conn.gone or conn.closing or (paced and conn in paced):
                self._write(conn, data)
                continue
            unsent = conn.outlet.send(data)
            if unsent >= 0:
                sent += 1
                if unsent > limit:
                    self._cut_off(conn)
        self.written += sent * len(data)

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


def _buffer_of(conn: Receiver, room: str) -> ChannelBuffer | None:
    """The buffer of the room's channel the connection reads, if any."""
    for buf in conn.bufs:
        if buf.channel[0] == room:
            return buf
    return None


def _first(placed: tuple[int, bytes]) -> int:
    return placed[0]


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part
