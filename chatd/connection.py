"""One client connection as the server sees it, whichever its shell (a TCP stream, a
WebSocket): its link (chatd.link), its outlet, the writer's bookkeeping for it, and how
it ends (closed once its output is written, or cut off)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from chatd.channels import ChannelBuffer, Outlet
from chatd.link import Link, LinkConfig, Mode
from chatd.outbox import Outbox


class Owner(Protocol):
    """What a connection needs of its server (chatd.server.Server)."""

    link_config: LinkConfig  # the limits of connections made now

    @property
    def writer(self) -> Outbox: ...

    def uncount(self, conn: Connection) -> None: ...

    def linger(self, conn: Connection) -> asyncio.TimerHandle | None: ...


class Connection:
    """One client connection as the shell sees it: its link, its outlet, and the
    writer's bookkeeping (chatd.channels.Receiver). The hub knows it as a peer (cid, text)."""

    # What the writer reads of every reader at every delivery first: next to the
    # object's header, in the cache line the reference count brings in anyway.
    __slots__ = (
        "special", "out", "gone", "closing", "direct", "queued", "bufs", "outlet",
        "server", "cid", "link", "ip", "address", "drop_reason", "starts", "own",
        "held_sid", "linger", "counted",
    )

    def __init__(self, server: Owner, cid: int, outlet: Outlet, *, ip: str, address: str,
                 mode: Mode, detect_tls: bool) -> None:
        self.server = server
        self.cid = cid
        self.link: Link[Connection] = Link(self, server.link_config, time.monotonic(),
                                           mode=mode, detect_tls=detect_tls)
        self.outlet = outlet
        self.direct = outlet.direct  # None from the close on (chatd.channels.Receiver)
        self.ip = ip
        self.address = address
        self.out: list[bytes] = []
        self.queued = False  # in the writer's dirty list
        self.closing = False  # close once the outbox is written
        self.gone = False  # the connection has ended
        self.drop_reason: str | None = None
        self.bufs: list[ChannelBuffer] = []  # chatd.outbox: its channels' turn buffers
        self.starts: dict[ChannelBuffer, int] | None = None
        self.own: list[tuple[int, bytes]] | None = None
        self.special = False
        self.held_sid: str | None = None  # its session, when held for resume after it
        self.linger: asyncio.TimerHandle | None = None  # cuts it off if closing takes long
        self.counted = True  # holds a slot against the connection limits

    def __repr__(self) -> str:
        return f"#{self.cid} {self.address}"

    @property
    def text(self) -> bool:
        return self.link.text

    def close(self) -> None:
        """Close once what is queued for the client has been written."""
        if self.gone or self.closing:
            return
        self.closing = True
        self.direct = None
        # Its session has left (or is held) by now: the slot is free for a reconnect,
        # though the socket takes a moment more to close (8.9).
        self.server.uncount(self)
        # A client that does not take its last lines is cut off after a while (8.9).
        self.linger = self.server.linger(self)
        if not self.server.writer.close_soon(self):
            self.outlet.close()

    def drop(self, reason: str) -> None:
        """Cut the connection at once, discarding what it has not read."""
        if not self.gone:
            self.drop_reason = self.drop_reason or reason
            self.closing = True
            self.direct = None
            self.outlet.abort()
