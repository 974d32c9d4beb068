"""What the writer (chatd.writer, chatd.outbox) writes to, and in: a connection as it
sees it (`Receiver`) and its socket (`Outlet`); a room's three channels, one a mode
(JSON, TEXT, and PREFIXED: text with the room's name before each line, for a text
reader who has the room among its other rooms, PROTOCOL.txt 17.10), and how an update
reads in each mode (`encode_in`, `page_parts`); one channel's members and its
broadcasts of one loop turn (`ChannelBuffer`), and what of this turn a member is owed
(`share_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

from chatd import protocol as p
from chatd.effects import Page

Channel: TypeAlias = tuple[str, int]  # (room key, mode: JSON, TEXT or PREFIXED)
JSON, TEXT, PREFIXED = 0, 1, 2


class Direct(Protocol):
    """A transport the writer may hand bytes to itself (asyncio.WriteTransport)."""

    def write(self, data: bytes) -> object: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


class Outlet(Protocol):
    """Where a connection's bytes go: a TCP stream writer, or a WebSocket's sender."""

    @property
    def direct(self) -> Direct | None:
        """The transport `send` writes to, for the writer's loops to write to without a
        call a delivery (chatd.outbox: `send` is `write` then `get_write_buffer_size`
        unless the transport is closing); None where `send` does more (a WebSocket's
        messages) or once the outlet is closed."""
        ...

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
    queued: bool  # in the writer's dirty list: always so while `out` holds bytes
    bufs: list[ChannelBuffer]  # the turn buffers of the channels it reads (one a room)
    starts: dict[ChannelBuffer, int] | None  # where its share of a buffer starts this turn
    own: list[tuple[int, bytes]] | None  # its replies this turn: (place in the turn, bytes)
    special: bool  # its share this turn is its own (in the writer's special list)
    closing: bool
    gone: bool

    @property
    def direct(self) -> Direct | None:
        """Its outlet's `direct` transport while it is open, None once it is closing or
        gone: what the writer's loops write to, with one test a delivery where they would
        make three (closing, gone, the outlet's transport), and one object fewer read (the
        outlet) at each of a city's 67,000 deliveries a second."""
        ...

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

    __slots__ = ("channel", "data", "dirty", "lazy", "multi", "peers", "seq", "skip")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.peers: set[Receiver] = set()
        # The members that read other channels too: each broadcast goes to their outbox
        # as it is made (chatd.outbox.Outbox._store), so their lines of several channels
        # are in the order they were made with nothing to merge; the flush writes the
        # channel's joined bytes to the others (while there are none: one room's fan-out,
        # as is).
        self.multi: set[Receiver] = set()
        self.data: list[bytes] = []  # the broadcasts
        # each goes to all members but this one (or these: Apart)
        self.skip: list[Receiver | Apart | None] = []
        self.seq: list[int] = []  # each one's place in the turn
        self.dirty = False
        # Its readers of several channels read it this turn as one-channel readers do
        # (chatd.outbox.Outbox._store), its lines not in their outboxes.
        self.lazy = False

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
        self.dirty = self.lazy = False


def share_of(conn: Receiver) -> bytes:
    """What this turn owes `conn` so far: its channels' broadcasts from where it
    entered, less its own lines, and its replies, in the order they were made."""
    starts, own = conn.starts, conn.own
    if not own and not starts and len(conn.bufs) == 1:
        skip = conn.bufs[0].skip
        if len(skip) == 1 and skip[0] is conn:  # a talker's turn: its own line alone
            return b""
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


def lazy_share(conn: Receiver, lazies: Sequence[ChannelBuffer]) -> bytes:
    """What the lazy channels (chatd.outbox) owe a reader of several channels that is
    in two of them or sent one of their lines: their lines but its own, in the order
    they were made."""
    mine = [buf for buf in conn.bufs if buf in lazies]
    if len(mine) == 1:
        parts: list[bytes] = []
        mine[0].others(conn, 0, parts)
        return b"".join(parts)
    placed: list[tuple[int, bytes]] = []
    for buf in mine:
        placed += buf.owed(conn, 0)
    placed.sort(key=_first)
    return b"".join([data for _, data in placed])


def buffer_of(conn: Receiver, room: str) -> ChannelBuffer | None:
    """The buffer of the room's channel the connection reads, if any."""
    for buf in conn.bufs:
        if buf.channel[0] == room:
            return buf
    return None


def _first(placed: tuple[int, bytes]) -> int:
    return placed[0]
