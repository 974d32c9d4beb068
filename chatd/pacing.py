"""Paced lines (a resume's replay, PROTOCOL.txt 10.2): written to a connection only while
it has less than half the send queue unsent (8.2), so that a long replay never runs its
reader into the bound; what it is sent meanwhile waits behind them (`Paced.after`,
counted against the same bound by the writer, chatd.outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from chatd.channels import Receiver

# How often a paced connection's queue is looked at besides each flush: at half the
# default send queue in flight, enough for over 50 MB a second to one reader.
PACE_EVERY = 0.002


class Paced:
    """A connection's paced lines, and what it was sent meanwhile (in order after them)."""

    __slots__ = ("after", "after_bytes", "lines")

    def __init__(self, lines: Iterator[bytes]) -> None:
        self.lines = lines
        self.after: list[bytes] = []
        self.after_bytes = 0


class Counted(Protocol):
    """What the pacer shares with the writer (chatd.outbox.Outbox): its loop, its
    bound, and its counts of bytes and lines handed to outlets."""

    loop: asyncio.AbstractEventLoop | None
    max_send_queue: int
    written: int
    lines_out: int


class Pacer:
    """The connections with paced lines, each written as its send queue drains."""

    def __init__(self, writer: Counted, write: Callable[[Receiver, bytes], None]) -> None:
        self.writer = writer
        self.write = write  # the writer's write of a connection's waiting bytes
        # Read by the writer's write path too: never rebound, so it can hold it.
        self.paced: dict[Receiver, Paced] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, conn: Receiver, lines: Iterator[bytes]) -> None:
        """Lines for `conn` after what is in its outbox, and after its paced lines if it
        has some already."""
        paced = self.paced.get(conn)
        if paced is not None:  # after the paced lines it already has
            paced.lines = _chain(paced.lines, [b"".join(conn.out)] if conn.out else [], lines)
            conn.out.clear()
            return
        if conn.out:
            lines = _chain([b"".join(conn.out)], lines)
            conn.out.clear()
        self.paced[conn] = Paced(lines)
        self.pace()

    def pace(self) -> None:
        """Write paced lines to each connection that has room for them; while some are
        left, look again in PACE_EVERY."""
        for conn, paced in list(self.paced.items()):
            self._pace(conn, paced)
        loop = self.writer.loop
        if self.paced and loop is not None and self._timer is None:
            self._timer = loop.call_later(PACE_EVERY, self._pace_again)

    def _pace_again(self) -> None:
        self._timer = None
        self.pace()

    def _pace(self, conn: Receiver, paced: Paced) -> None:
        outlet = conn.outlet
        unsent = outlet.send(b"") if not conn.gone else -1
        if unsent < 0:
            del self.paced[conn]
            return
        writer = self.writer
        budget = writer.max_send_queue // 2
        while unsent < budget:
            data = next(paced.lines, None)
            if data is None:  # all written: what waited behind them goes now
                del self.paced[conn]
                if paced.after:
                    conn.out[:0] = paced.after  # before anything queued since
                if paced.after or conn.closing:
                    self.write(conn, b"")
                return
            unsent = outlet.send(data)
            if unsent < 0:
                del self.paced[conn]
                return
            writer.written += len(data)
            writer.lines_out += 1


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part
