"""Output: deliveries become one write per connection per event-loop turn.

Nothing here awaits a client. A delivery to one connection (a reply, an ack) is
appended to its outbox. A broadcast to a room's peer set is stored once, in the
room's turn buffer; at the flush every member that had nothing special this turn gets
the same joined bytes, so a line costs O(1) when it is broadcast and each member one
write per turn, however many lines the turn held. Members with a share of their own
(the senders, whose lines skip them; those who got a reply or joined mid-turn) get
their own join, in order. When a member leaves the room's set, what the room owed it
so far moves to its outbox first (the hub says so through `audience_changing`), so
every connection gets exactly its lines, in order.

Past `max_send_queue` unsent bytes a connection is cut off (PROTOCOL.txt 8.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from typing import Protocol

from chatd.serverlog import ServerLog


class Sink(Protocol):
    """What the writer needs of a connection (chatd.server.Connection)."""

    out: list[bytes]  # bytes for it alone, in order
    queued: bool  # in the writer's dirty list
    room: RoomBuffer | None  # the turn buffer of the room set it is in
    room_from: int  # where its share of that buffer's broadcasts starts this turn
    room_own: list[tuple[int, bytes]] | None  # its replies: (broadcasts before, bytes)
    closing: bool
    gone: bool

    @property
    def transport(self) -> asyncio.Transport | None: ...

    def drop(self, reason: str) -> None: ...


class RoomBuffer:
    """One room set's broadcasts during one loop turn (replies wait on their member)."""

    __slots__ = ("data", "dirty", "peers", "skip", "special")

    def __init__(self, peers: Collection[Sink]) -> None:
        self.peers = peers  # the hub's live set for the room
        self.data: list[bytes] = []  # the broadcasts
        self.skip: list[Sink | None] = []  # each goes to all members but this one
        self.special: set[Sink] = set()  # members whose share is not the common one
        self.dirty = False

    def share(self, conn: Sink) -> bytes:
        """What this turn owes one member: the broadcasts from where it joined, less its
        own lines, with its replies in between where they came."""
        data, skip, at = self.data, self.skip, conn.room_from
        parts: list[bytes] = []
        for pos, reply in conn.room_own or ():
            parts.extend(d for d, s in zip(data[at:pos], skip[at:pos], strict=True)
                         if s is not conn)
            parts.append(reply)
            at = max(at, pos)
        parts.extend(d for d, s in zip(data[at:], skip[at:], strict=True) if s is not conn)
        return b"".join(parts)

    def clear(self) -> None:
        self.data.clear()
        self.skip.clear()
        for conn in self.special:
            conn.room_from, conn.room_own = 0, None
        self.special.clear()
        self.dirty = False


Delivery = tuple[Collection[Sink], bytes, Sink | None]


class Writer:
    def __init__(self, max_send_queue: int, log: ServerLog) -> None:
        self.max_send_queue = max_send_queue
        self.log = log
        self.loop: asyncio.AbstractEventLoop | None = None  # set once the server runs
        self.written = 0  # bytes handed to transports (the server trims the heap by it)
        self._rooms: dict[int, RoomBuffer] = {}  # id(peer set) -> its buffer
        self._dirty_rooms: list[RoomBuffer] = []
        self._dirty: list[Sink] = []
        self._pending = False

    def deliver(self, deliveries: Iterable[Delivery]) -> None:
        for targets, data, skip in deliveries:
            if type(targets) is set:  # a room's peer set: store the line once
                buf = self._rooms.get(id(targets)) or self._room(targets)
                buf.data.append(data)
                buf.skip.append(skip)
                if skip is not None:
                    buf.special.add(skip)
                if not buf.dirty:
                    buf.dirty = True
                    self._dirty_rooms.append(buf)
            else:
                for conn in targets:
                    if conn is not skip:
                        self._to_one(conn, data)
        if self._dirty or self._dirty_rooms:
            self._schedule()

    def _to_one(self, conn: Sink, data: bytes) -> None:
        buf = conn.room
        if buf is not None:  # in order with the room's lines of this turn
            if conn.room_own is None:
                conn.room_own = []
            conn.room_own.append((len(buf.data), data))
            buf.special.add(conn)
            if not buf.dirty:
                buf.dirty = True
                self._dirty_rooms.append(buf)
        else:
            conn.out.append(data)
            if not conn.queued:
                conn.queued = True
                self._dirty.append(conn)

    def _room(self, peers: Collection[Sink]) -> RoomBuffer:
        buf = self._rooms[id(peers)] = RoomBuffer(peers)  # the set lives as long as its room
        return buf

    def audience_changing(self, peers: Collection[Sink], conn: Sink, joining: bool) -> None:
        """The hub is about to add `conn` to, or remove it from, a room's peer set."""
        buf = self._rooms.get(id(peers)) or self._room(peers)
        if joining:
            conn.room = buf
            if buf.data:  # its share starts after what was broadcast before this turn
                conn.room_from = len(buf.data)
                buf.special.add(conn)
            return
        if buf.data or conn.room_own:  # settle what it is owed so far, before it leaves
            owed = buf.share(conn)
            if owed:
                conn.out.append(owed)
                if not conn.queued:
                    conn.queued = True
                    self._dirty.append(conn)
        buf.special.discard(conn)
        conn.room, conn.room_from, conn.room_own = None, 0, None

    def close_soon(self, conn: Sink) -> bool:
        """True if the flush will close `conn` after writing what it is owed."""
        buf = conn.room
        if buf is not None:
            buf.special.add(conn)  # its share is written (and it is closed) at the flush
            if not buf.dirty:
                buf.dirty = True
                self._dirty_rooms.append(buf)
            self._schedule()
            return True
        return conn.queued

    def _schedule(self) -> None:
        if not self._pending and self.loop is not None:
            self._pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Once per loop turn: one write per connection that has output waiting."""
        self._pending = False
        rooms, self._dirty_rooms = self._dirty_rooms, []
        for buf in rooms:
            special = buf.special
            if buf.data:
                common = b"".join(buf.data)  # nobody outside `special` is a sender
                # A copy: a write can end a connection, which changes the room's set.
                for conn in tuple(buf.peers):
                    self._write(conn, buf.share(conn) if conn in special else common)
            else:  # only replies this turn: just their receivers
                for conn in tuple(special):
                    self._write(conn, buf.share(conn))
            buf.clear()
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            if conn.queued:
                self._write(conn, b"")

    def _write(self, conn: Sink, data: bytes) -> None:
        out = conn.out
        if out:  # earlier bytes for it alone (before it joined this room) go first
            data = b"".join(out) + data if data else b"".join(out)
            out.clear()
        conn.queued = False
        transport = conn.transport
        if conn.gone or transport is None or transport.is_closing():
            return
        if data:
            transport.write(data)
            self.written += len(data)
            if transport.get_write_buffer_size() > self.max_send_queue:
                self.log.warning(f"{conn} disconnected: send queue over "
                                 f"{self.max_send_queue} bytes (the client is not reading)")
                conn.drop("send queue full")
                return
        if conn.closing:
            transport.close()


