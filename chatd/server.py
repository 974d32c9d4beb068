"""The asyncio shell: accept connections, read lines, feed the hub, write deliveries.

Built on asyncio transports and protocols (the layer asyncio streams are built on):
a connection is one small object with no task of its own, about 1.3 KiB where a
stream reader, writer and task cost about 5 KiB (see the benchmark issue's note).

Writes are coalesced: a delivery only appends bytes to the recipient's outbox, and
once per event-loop turn `_flush` hands each dirty outbox to its transport in one
`write`. Nothing on the broadcast path awaits a client; a client whose unsent output
passes `max_send_queue` is disconnected (PROTOCOL.txt section 8).
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chatd import protocol as p
from chatd.bus import Bus, LocalBus
from chatd.hub import Config as HubConfig
from chatd.hub import Delivery, Effects, Hub
from chatd.protocol import LINE_TOO_LONG, ErrorCode, ProtocolError
from chatd.serverlog import ServerLog

READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hosts: tuple[str, ...] | None = None  # None: every interface, IPv4 and IPv6
    port: int = 5000
    max_line_bytes: int = p.DEFAULT_MAX_LINE_BYTES
    max_send_queue: int = 256 * 1024
    shutdown_timeout: float = 3.0
    hub: HubConfig = field(default_factory=HubConfig)


class Connection(asyncio.Protocol):
    """One client connection: its line splitter, its outbox and its mode."""

    __slots__ = (
        "address",
        "cid",
        "closing",
        "drop_reason",
        "gone",
        "last_seen",
        "mode_known",
        "out",
        "queued",
        "server",
        "splitter",
        "text",
        "transport",
    )

    def __init__(self, server: Server, cid: int) -> None:
        self.server = server
        self.cid = cid
        self.text = False
        self.mode_known = False
        self.transport: asyncio.Transport | None = None
        self.splitter = p.LineSplitter(server.config.max_line_bytes)
        self.out: list[bytes] = []
        self.queued = False  # in the server's dirty list
        self.closing = False  # close once the outbox is written
        self.gone = False  # connection_lost has run
        self.drop_reason: str | None = None
        self.address = "?"
        self.last_seen = 0.0

    def __repr__(self) -> str:
        return f"#{self.cid} {self.address}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.last_seen = time.monotonic()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            host = f"[{peer[0]}]" if ":" in peer[0] else peer[0]
            self.address = f"{host}:{peer[1]}"
        self.server.opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        server = self.server
        for line in self.splitter.feed(data):
            if self.closing:
                return
            if line is LINE_TOO_LONG:
                server.fault(self, ProtocolError(
                    ErrorCode.LINE_TOO_LONG,
                    f"line longer than {self.splitter.max_bytes} bytes; skipped to its end"))
            else:
                assert isinstance(line, bytes)
                server.line(self, line)

    def eof_received(self) -> bool:
        # A last line without its newline still counts; then the client has left.
        rest = self.splitter.feed(b"\n") if self.splitter.pending else []
        for line in rest:
            if isinstance(line, bytes) and not self.closing:
                self.server.line(self, line)
        self.server.left(self, None)
        self.close()
        return True  # keep the transport until the outbox is written

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        reason = self.drop_reason or (_describe(exc) if exc is not None else None)
        self.server.left(self, reason)
        self.server.closed(self)
        self.out.clear()

    def close(self) -> None:
        """Close once what is queued for the client has been written."""
        self.closing = True
        if self.transport is not None and not self.queued:
            self.transport.close()

    def drop(self, reason: str) -> None:
        """Cut the connection at once, discarding what it has not read."""
        if self.transport is not None and not self.gone:
            self.drop_reason = reason
            self.closing = True
            self.transport.abort()


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


class Server:
    def __init__(self, config: ServerConfig, log: ServerLog) -> None:
        self.config = config
        self.log = log
        self.hub: Hub[Connection] = Hub(config.hub)
        self.bus: Bus = LocalBus(self.hub, self.apply_effects)
        self.connections: dict[int, Connection] = {}
        self.listeners: list[asyncio.Server] = []
        self._cid = 0
        self._dirty: list[Connection] = []
        self._flush_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_closed: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[str]:
        """Listen; returns the bound addresses ("127.0.0.1:5000")."""
        self._loop = asyncio.get_running_loop()
        self.log.attach(self._loop)
        hosts = list(self.config.hosts) if self.config.hosts else [None]
        for host in hosts:
            self.listeners.append(await self._loop.create_server(
                self._new_connection, host=host, port=self.config.port, backlog=4096))
        bound = []
        for listener in self.listeners:
            for sock in listener.sockets:
                addr = sock.getsockname()
                bound.append(f"[{addr[0]}]:{addr[1]}" if sock.family == socket.AF_INET6
                             else f"{addr[0]}:{addr[1]}")
        return bound

    def _new_connection(self) -> Connection:
        self._cid += 1
        return Connection(self, self._cid)

    async def shutdown(self) -> None:
        """Tell every client, flush what is queued, close; give up on laggards after a while."""
        for listener in self.listeners:
            listener.close()
        notice = p.Shutdown()
        by_mode = {False: p.encode_json(notice), True: p.encode_text(notice)}
        for conn in list(self.connections.values()):
            if not conn.closing:
                self.deliver([((conn,), by_mode[conn.text], None)])
                conn.close()
        self._flush()
        if self.connections:
            self._all_closed = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_closed.wait(), self.config.shutdown_timeout)
            except TimeoutError:
                for conn in list(self.connections.values()):
                    conn.drop("server shut down")
        self.log.flush()

    # ------------------------------------------------------------------ connection events

    def opened(self, conn: Connection) -> None:
        self.connections[conn.cid] = conn
        self.log.debug(f"{conn} connected")

    def closed(self, conn: Connection) -> None:
        self.connections.pop(conn.cid, None)
        self.log.debug(f"{conn} closed" + (f" ({conn.drop_reason})" if conn.drop_reason else ""))
        if self._all_closed is not None and not self.connections:
            self._all_closed.set()

    def left(self, conn: Connection, reason: str | None) -> None:
        self.apply_effects(self.hub.disconnected(conn, reason))

    def line(self, conn: Connection, line: bytes) -> None:
        if not conn.mode_known:
            conn.mode_known = True
            conn.text = not p.looks_like_json(line)
        try:
            event: p.Event | None
            if not conn.text:
                event = p.parse_json_line(line)
            elif self.hub.is_joined(conn):
                event = p.parse_text_line(line)
            else:  # text mode: the first line is the name
                event = p.Connect(name=p.decode_utf8(line), text=True)
        except ProtocolError as exc:
            self.fault(conn, exc)
            return
        if event is not None:
            self.apply_effects(self.hub.handle(conn, event))

    def fault(self, conn: Connection, exc: ProtocolError) -> None:
        self.log.warning(f"{conn} error {exc.code}: {exc.message}")
        self.deliver([((conn,), self.hub.error(conn, exc), None)])

    def apply_effects(self, fx: Effects[Connection]) -> None:
        if fx.deliveries:
            self.deliver(fx.deliveries)
        if fx.note:
            self.log.info(fx.note)
        for conn in fx.close:
            conn.close()
        if fx.commands:
            self.bus.publish(fx.commands)

    # ------------------------------------------------------------------ output

    def deliver(self, deliveries: list[Delivery[Connection]]) -> None:
        dirty = self._dirty
        for targets, data, skip in deliveries:
            for conn in targets:
                if conn is not skip:
                    conn.out.append(data)
                    if not conn.queued:
                        conn.queued = True
                        dirty.append(conn)
        if dirty and not self._flush_pending and self._loop is not None:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Once per loop turn: one write per client that has output waiting."""
        self._flush_pending = False
        dirty, self._dirty = self._dirty, []
        limit = self.config.max_send_queue
        for conn in dirty:
            conn.queued = False
            out = conn.out
            transport = conn.transport
            if conn.gone or transport is None or transport.is_closing():
                out.clear()
                continue
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            if transport.get_write_buffer_size() > limit:
                self.log.warning(f"{conn} disconnected: send queue over {limit} bytes "
                                 "(the client is not reading)")
                conn.drop("send queue full")
            elif conn.closing:
                transport.close()


async def serve(config: ServerConfig, log: ServerLog,
                ready: Callable[[list[str]], None] | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    server = Server(config, log)
    try:
        bound = await server.start()
    except OSError as exc:
        why = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        log.error(f"cannot listen on port {config.port}: {why}")
        return 2
    log.info("chatd listening on " + ", ".join(bound))
    if ready is not None:
        ready(bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(f"shutting down: telling {len(server.connections)} connection(s)")
    await server.shutdown()
    log.info("bye")
    log.flush()
    return 0
