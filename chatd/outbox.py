"""The outbox: bytes for connections become one write per connection per event-loop turn.

Nothing here awaits a client (the flush is scheduled on the event loop). The writer
(chatd.writer) encodes the hub's updates and puts their bytes here. A room is three
channels, one a mode (chatd.channels): (room key, mode): JSON, text for those whose
current room it is, and text with the room's name before each line for those who have
it among their other rooms (PROTOCOL.txt 17.10).

`send` appends bytes for one connection to its outbox. `broadcast` stores a
line once, in its channel's turn buffer; at the flush every member that had nothing
special this turn gets the same joined bytes, so a line costs O(1) when it is broadcast
and each member one write per turn, however many lines the turn held. Members with a
share of their own (the senders, whose lines skip them; those who got a reply or joined
mid-turn) get their own join, in order: each broadcast and reply has its place in the
turn (`seq`). A connection reads one channel of each of its rooms. One that reads
several reads each lazy channel of a turn (a channel is lazy from its first line of the
turn) as its one-channel readers do, one shared write, and if it is in two lazy
channels of the turn (a few readers a room in a city of rooms) it gets their lines
merged in the order they were made. Anything else for such a reader in the turn (a
reply, a replay, a member coming or going) first puts the lazy lines into the outboxes
of the readers of several channels, as they would have been put as they were made, and
those channels' later lines of the turn go into their outboxes as they are made: each
gets its lines and replies in the order they were made (its last id seen is a true mark
for a resume, 10.2). `enter` and `exit` keep the writer's own membership of each channel: on
`exit`, what the channel owed the member so far stays owed in its place, and a member
that comes to read several channels, or one again, takes what it was owed along, so
every connection gets exactly its lines, in order. A channel with no members and
nothing to write is forgotten.

Past `max_send_queue` bytes handed to a connection's outlet and not yet sent, it is cut
off (PROTOCOL.txt 8.2). `send_paced` lines (a resume's replay) are written only while
the connection has less than half of that unsent (chatd.pacing); what it is sent
meanwhile waits behind them, counted against the same bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter

from chatd.channels import (
    Apart,
    Channel,
    ChannelBuffer,
    Receiver,
    lazy_share,
    share_of,
)
from chatd.pacing import Pacer
from chatd.serverlog import ServerLog

# After a flush in which one room took long (a join announced to thousands: over
# SPREAD_AFTER), the next flush waits as long as that flush took, up to SPREAD_MAX:
# arrivals meanwhile (a burst of joins) go out in one flush, one write per member,
# instead of one flush each. Only a costly room starts it: a flush of many ordinary
# rooms (66,000 deliveries a second in 200 rooms of 50) routinely takes over 0.5 ms,
# and a rule on the whole flush's cost delayed a third of a city run's flushes, by 2 ms
# each on average (issue 29). A room of hundreds read whole (a lazy channel: every
# reader in one pass, ~9 us a delivery with the kernel's share) can take 2-4 ms on a
# slow VM moment: at 2 ms, the rule delayed city-multi's next flushes and made most of
# its tail (chatd alone, alternated: p99 13.3 and 10.7 ms with it, 5.8 and 6.7 without).
SPREAD_AFTER = 0.005
SPREAD_MAX = 0.02
# Channels of one turn whose readers of several channels read them lazily (see
# `_store`); the next one puts their lines into the outboxes and goes the eager way. A
# reader in two lazy channels gets a merge of its own, dearer than a delivery, and the
# more lazy channels the more such readers: a turn of city-multi holds 1.2 channels with
# such readers on average, but a slow turn dozens, and with no bound that turn's merges
# made the next turn slower still (p99 26-54 ms where the reference had 3-6, 08:12).
LAZY_CHANNELS = 2


class Outbox:
    """Bytes for connections, one write per connection per loop turn: the channels'
    members and turn buffers, each connection's share of the turn, the flush, paced
    lines (chatd.pacing) and the send-queue bound. chatd.writer.Writer puts the hub's
    updates into it."""

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
        # The channels this turn whose readers of several channels are not sent their
        # lines as they are made but read them as one-channel readers do (see `_store`),
        # and those of such readers whose share is their own (marked special, not
        # listed): the senders of lazy lines, and at the flush those in two of them.
        self._lazies: list[ChannelBuffer] = []
        self._lazy_talkers: list[Receiver] = []
        self._seq = 0  # the place of the turn's last broadcast or reply
        self._pending = False  # a flush is scheduled
        self._flush_soon: asyncio.Handle | None = None  # it, when it is a `call_soon`
        self._wait = 0.0  # seconds before the next flush (see SPREAD_AFTER)
        self.pacer = Pacer(self, self._write)
        self._paced = self.pacer.paced  # the same table: the write path reads it at hand

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

    def send(self, conn: Receiver, data: bytes) -> None:
        """Bytes for one connection, in order with its channels' lines of this turn."""
        if self._lazies and len(conn.bufs) > 1 and any(buf.lazy for buf in conn.bufs):
            self._put_lazy_lines()  # after the lines it is owed there
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
        if self._lazies:  # what it is owed of the lazy channels goes first
            self._put_lazy_lines()
        if conn.special:  # what it is owed so far; from now on only what comes after
            owed = share_of(conn)
            conn.own = None
            conn.starts = {buf: len(buf.data) for buf in conn.bufs if buf.data} or None
            if owed:
                conn.out.append(owed)
        self.pacer.add(conn, lines)

    def broadcast(self, channel: Channel, data: bytes, skip: Receiver | None) -> None:
        """A line for every member of the channel but `skip`: stored once."""
        buf = self.channels.get(channel)
        if buf is None or not buf.peers:
            return  # nobody here reads this channel
        self._store(buf, data, skip)

    def _store(self, buf: ChannelBuffer, data: bytes, skip: Receiver | Apart | None
               ) -> None:
        multi, peers = buf.multi, buf.peers
        # A channel with readers of several channels is lazy from its first line of the
        # turn: they read it at the flush as its one-channel readers do, one shared write,
        # and a reader in two lazy channels gets their lines merged in the order made.
        # Anything else for one of them this turn (a reply, a replay, a member coming or
        # going) first puts the lazy lines into their outboxes, as they would have been
        # put as they were made.
        lazy = buf.lazy
        if multi and not lazy:
            if not buf.data and len(self._lazies) < LAZY_CHANNELS:
                lazy = buf.lazy = True
                self._lazies.append(buf)
            elif self._lazies:  # eager (it sent them lines already, or too many lazy
                self._put_lazy_lines()  # channels): after the lazy lines
        buf.data.append(data)
        buf.skip.append(skip)
        self._seq = seq = self._seq + 1  # `_next`, inline: once a line a channel
        buf.seq.append(seq)
        eager = None if lazy else multi  # who is sent the line as it is made
        # Counted here, once a line, not once a receiver at the flush (the fan-out stays
        # one shared write per member); an update is one line in JSON and nearly always
        # in text mode (chatd.metrics calls them lines).
        receivers = len(peers)
        if type(skip) is Apart:  # the sender and those who get their own copy
            for conn in skip.conns:
                if conn in peers:
                    if conn not in multi:
                        self._special_now(conn)
                    elif eager is None:
                        self._lazy_talker(conn)
                    receivers -= 1
            if eager:
                self._to_each_but(eager, data, skip.conns)
        elif skip is not None and skip in peers:  # a sender of the other mode is not here
            # `_special_now`, inline: a talker's share is its own all its turns
            if not skip.special:  # type: ignore[union-attr]
                if skip not in multi:
                    self._special_now(skip)  # type: ignore[arg-type]
                elif eager is None:
                    self._lazy_talker(skip)  # type: ignore[arg-type]
            receivers -= 1
            if eager:
                self._to_each(eager, data, skip)  # type: ignore[arg-type]
        elif eager:
            self._to_each(eager, data, skip)  # type: ignore[arg-type]
        self.lines_out += receivers
        if not buf.dirty:  # `_mark`, inline
            buf.dirty = True
            self._dirty_channels.append(buf)
            self._schedule()

    def _lazy_talker(self, conn: Receiver) -> None:
        """A reader of several channels whose share of the lazy ones is its own: it sent
        one of their lines, or (found at the flush) it is in two of them. The flush
        writes it apart (`lazy_share`); special, so the shared writes pass it by."""
        if not conn.special:
            conn.special = True
            self._lazy_talkers.append(conn)

    def _put_lazy_lines(self) -> None:
        """The lazy channels' lines go into their several-channel readers' outboxes in
        the order they were made, as `_store` would have put them: the turn is lazy no
        more."""
        lazies, self._lazies = self._lazies, []
        for conn in self._lazy_talkers:
            conn.special = False
        self._lazy_talkers.clear()
        lines: list[tuple[int, bytes, Receiver | Apart | None, ChannelBuffer]] = []
        for buf in lazies:
            buf.lazy = False
            lines += zip(buf.seq, buf.data, buf.skip, [buf] * len(buf.data), strict=True)
        if len(lazies) > 1:
            lines.sort(key=itemgetter(0))
        for _, data, skip, buf in lines:
            if isinstance(skip, Apart):
                self._to_each_but(buf.multi, data, skip.conns)
            else:
                self._to_each(buf.multi, data, skip)

    def _to_each(self, conns: Iterable[Receiver], data: bytes, skip: Receiver | None
                 ) -> None:
        """`data` into the outbox of each of `conns` but `skip` (once a delivery to a
        reader of several rooms: an identity test, not `in` a tuple)."""
        dirty = self._dirty  # `_to_outbox`, inline; `_store` schedules the flush
        for conn in conns:
            if conn is not skip:
                conn.out.append(data)
                if not conn.queued:
                    conn.queued = True
                    dirty.append(conn)

    def _to_each_but(self, conns: Iterable[Receiver], data: bytes,
                     skip: tuple[Receiver, ...]) -> None:
        for conn in conns:
            if conn not in skip:
                self._to_outbox(conn, data)

    def enter(self, channel: Channel, conn: Receiver) -> None:
        if self._lazies:
            self._put_lazy_lines()
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
        if self._lazies:
            self._put_lazy_lines()
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
        owed = share_of(conn)
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
                self._flush_soon = self.loop.call_soon(self.flush)
            else:  # see SPREAD_AFTER
                self.loop.call_later(self._wait, self.flush)

    def flush_after_readers(self) -> None:
        """Bytes were just fed to a stream reader (chatd.tcp), whose task the loop runs
        in its next turn, among the callbacks ready then: the flush is put behind them,
        so that what those bytes cause is written in that same turn. Otherwise a flush
        scheduled by the first reader runs before the later ones, and theirs goes out a
        turn later: with the stream's reader woken a turn after the bytes come, a line
        took a turn more than with a bare protocol (issue 29)."""
        loop = self.loop
        if loop is None or self._wait > 0.0:  # a spread flush keeps its time
            return
        soon = self._flush_soon
        if soon is not None:
            soon.cancel()  # the loop skips it when its place comes
        self._pending = True
        self._flush_soon = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Once per loop turn: one write per connection that has output waiting."""
        self._pending = False
        self._flush_soon = None
        clock = self.clock
        started = clock()
        costliest = 0.0
        channels, self._dirty_channels = self._dirty_channels, []
        lazies, self._lazies = self._lazies, []
        if len(lazies) > 1:  # readers in two of them get their lines merged (a few a room)
            seen = set(lazies[0].multi)
            for buf in lazies[1:]:
                for conn in buf.multi & seen:  # found in C, not a test a delivery
                    self._lazy_talker(conn)
                seen |= buf.multi
        for buf in channels:
            room_started = clock()
            # Its members that read only it (when all read other channels too, their
            # lines are in their outboxes already: no set difference, no join), or all
            # of them if it is lazy.
            if buf.lazy:
                buf.lazy = False
                common = b"".join(buf.data)  # nobody but the special ones is a sender
                # A copy: a write can end a connection, which changes the channel's set.
                self._write_each(tuple(buf.peers), common)
            elif buf.data and len(buf.peers) > len(buf.multi):
                common = b"".join(buf.data)
                self._write_each(
                    tuple(buf.peers - buf.multi) if buf.multi else tuple(buf.peers), common)
            costliest = max(costliest, clock() - room_started)
        talkers, self._lazy_talkers = self._lazy_talkers, []
        for conn in talkers:
            if conn.special:  # listed once, however many lines it sent
                conn.special = False
                self._write(conn, lazy_share(conn, lazies))
        special, self._special = self._special, []
        for conn in special:
            if conn.special:
                data = share_of(conn)
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
        if dirty:
            self._write_outboxes(dirty)
        if self._paced:
            self.pacer.pace()
        self._wait = min(clock() - started, SPREAD_MAX) if costliest > SPREAD_AFTER else 0.0

    def pace(self) -> None:
        """Write paced lines to each connection that has room for them (see
        `send_paced`, chatd.pacing)."""
        self.pacer.pace()

    def _write_each(self, conns: tuple[Receiver, ...], data: bytes) -> None:
        """`data` to each of `conns` but the special ones: `_write`, with the common
        case (nothing else for it, open, not paced) inline, as this is done once a
        delivery (a city: one line a turn to each of 66,000 readers a second), and the
        outlet's `send` too where it has a transport to write to (Outlet.direct)."""
        # Counted by what is not written here (rare), not by what is (every delivery).
        limit, paced, elsewhere = self.max_send_queue, self._paced, 0
        for conn in conns:
            # `queued`, not `out`: an outbox is never filled without it, and the test
            # then reads the connection alone, not its outbox list too (one object less
            # a delivery, out of cache in a city of 10,000: see Receiver.direct).
            if conn.special or conn.queued or (paced and conn in paced):
                if not conn.special:  # the special ones are written after, on their own
                    self._write(conn, data)  # counts what it writes
                elsewhere += 1
                continue
            direct = conn.direct  # None once closing or gone (Receiver.direct)
            if direct is not None and not direct.is_closing():
                direct.write(data)
                if direct.get_write_buffer_size() > limit:
                    self._cut_off(conn)
                continue
            if conn.closing:  # a close (`_write`), or a connection gone: nothing to write
                self._write(conn, data)
                elsewhere += 1
                continue
            unsent = conn.outlet.send(data)
            if unsent < 0:
                elsewhere += 1
            elif unsent > limit:
                self._cut_off(conn)
        self.written += (len(conns) - elsewhere) * len(data)

    def _write_outboxes(self, conns: list[Receiver]) -> None:
        """Each of `conns` what its outbox holds: `_write`, with the common case (open,
        not paced) inline as in `_write_each`, as this is done once a connection a turn
        for every reader of several rooms (city-multi: nearly every delivery)."""
        limit, paced, sent = self.max_send_queue, self._paced, 0
        for conn in conns:
            if not conn.queued:
                continue
            out = conn.out
            direct = conn.direct  # None once closing or gone (Receiver.direct)
            if out and direct is not None and not (paced and conn in paced) \
                    and not direct.is_closing():
                conn.queued = False
                data = b"".join(out)  # one item: that bytes object itself, not a copy
                out.clear()
                direct.write(data)
                sent += len(data)
                if direct.get_write_buffer_size() > limit:
                    self._cut_off(conn)
                continue
            if not out or conn.closing or (paced and conn in paced):
                self._write(conn, b"")
                continue
            conn.queued = False  # a WebSocket (no transport of its own), or its transport
            # is closing (the send writes nothing then: -1)
            data = b"".join(out)
            out.clear()
            unsent = conn.outlet.send(data)
            if unsent >= 0:
                sent += len(data)
                if unsent > limit:
                    self._cut_off(conn)
        self.written += sent

    def _write(self, conn: Receiver, data: bytes) -> None:
        out = conn.out
        if out:  # earlier bytes for it alone (before it entered this channel) go first
            data = b"".join(out) + data if data else b"".join(out)
            out.clear()
        conn.queued = False
        if conn.gone or not (data or conn.closing):  # nothing to write (a talker owed
            return  # only its own line: the commonest special of a turn) and no close
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
