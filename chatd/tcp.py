"""The TCP shell: listening sockets, and one coroutine per connection that reads the
stream and hands the bytes to the server (chatd.server), nothing else.

`loop.create_server` with asyncio's stream protocol (as `asyncio.start_server`, but see
`StreamProtocol`) gives each connection `TcpListener._serve`, which counts it in
(`Chat.accept`), upgrades it to TLS if the port has a certificate (PROTOCOL.txt 11.1),
then reads with `StreamReader.read` and feeds each chunk to `Chat.received`. Bytes go
out through `StreamOutlet`, the writer's (chatd.outbox) view of the stream: the writer
hands it each connection's output once per loop turn, and `drain()` is never awaited:
the send-queue bound is checked on the transport's buffer instead (PROTOCOL.txt 8.2).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from typing import Generic, Protocol, TypeVar

from chatd.channels import Outlet
from chatd.net import end_reason, forget_tracebacks, peer_address, release_transport
from chatd.serverlog import ServerLog

TCP_KEEPALIVE = (60, 10, 6)  # idle, interval, probes: a dead peer is found in ~2 minutes
READ_SIZE = 64 * 1024  # bytes asked of the stream per read
READ_LIMIT = 64 * 1024  # the StreamReader pauses the socket past twice this, unread
CLOSE_GRACE = 0.25  # seconds between our FIN and the close (StreamOutlet.close)


class TcpConnection(Protocol):
    """What the shell needs of a chat connection (chatd.connection.Connection)."""

    cid: int
    address: str
    closing: bool  # input is read and dropped from now on

    def drop(self, reason: str) -> None: ...


C = TypeVar("C", bound=TcpConnection)


class Chat(Protocol[C]):
    """What the shell feeds (chatd.server.Server): connections and their bytes."""

    log: ServerLog

    def accept(self, ip: str, address: str, outlet: Outlet, *, detect_tls: bool,
               say_why: bool) -> C | None: ...

    def received(self, conn: C, data: bytes) -> None: ...

    def eof(self, conn: C) -> None: ...

    def lost(self, conn: C, reason: str | None) -> None: ...


class StreamOutlet:
    """The writer's view of a TCP connection (chatd.channels.Outlet): its StreamWriter."""

    __slots__ = ("stream", "transport", "peer_done", "closed", "_close_later")

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self.stream = stream
        self.transport = stream.transport  # again after a TLS upgrade: see `bind`
        self.peer_done = False  # the client sent its FIN: all its input is read
        # close() was called: our FIN may be on its way, and a write after it raises
        # (in the writer's flush, where it would stop every other connection's output)
        self.closed = False
        self._close_later: asyncio.TimerHandle | None = None

    def bind(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def send(self, data: bytes) -> int:
        transport = self.transport
        if self.closed or transport.is_closing():
            return -1
        transport.write(data)  # what StreamWriter.write does, one call fewer a write
        return transport.get_write_buffer_size()

    def close(self) -> None:
        # FIN first, close a moment later: a socket closed while the client is still
        # sending has unread input and is reset, and a reset can make the client's
        # kernel drop the last lines we sent (the shutdown notice) before it reads them.
        # The shell goes on reading (and dropping) until the close.
        # Once the client has sent its FIN, nothing of it is left unread: close at once.
        if self.closed:
            return
        self.closed = True
        stream = self.stream
        if self.peer_done or self.transport.is_closing() or not stream.can_write_eof():
            stream.close()
            return
        try:
            stream.write_eof()
        except OSError:
            stream.close()
            return
        self._close_later = asyncio.get_running_loop().call_later(CLOSE_GRACE, stream.close)

    def peer_finished(self) -> None:
        """The client's FIN was read: a close waiting out CLOSE_GRACE happens now (a client
        that hangs up on our FIN, as chatc and nc do, is not kept waiting)."""
        self.peer_done = True
        if self._close_later is not None:
            self._close_later.cancel()
            self.stream.close()

    def abort(self) -> None:
        self.transport.abort()


class StreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, but the error that ends a connection is kept without
    its traceback.

    The error (a reset met by a write or a read) is stored on the reader and on the
    stream's close future, and the future keeps the traceback apart from the error
    (`Future.result` raises it with it). That traceback holds the frames it was raised
    in, from the socket's write up to the writer's flush, and so the stream writer,
    whose protocol holds the future: a cycle, and the frames hold the connection. Only
    a full collection would find it (chatd.heap counts on connections being freed
    without one); a write meets a reset whenever a client goes while lines are coming,
    which is often on a loaded machine (tests/e2e/test_heap.py). Nothing reads that
    traceback: the end is logged in words (chatd.net.end_reason).
    """

    def connection_lost(self, exc: Exception | None) -> None:
        forget_tracebacks(exc)
        super().connection_lost(exc)


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, interval, probes = TCP_KEEPALIVE
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


def _shrink_drain_waiters(protocol: asyncio.BaseProtocol) -> None:
    """The stream protocol keeps an empty deque for drain() waiters: about 700 of the
    ~7,000 bytes a connection costs (python -m bench.conn_memory). chatd never awaits
    drain() (the writer checks the buffer instead), so an empty list does the job."""
    if isinstance(getattr(protocol, "_drain_waiters", None), collections.deque):
        protocol._drain_waiters = []  # type: ignore[attr-defined]



class TcpListener(Generic[C]):
    """The listening sockets and the life of each TCP connection on them: accepted,
    upgraded to TLS, read until its end, then handed back (`Chat.lost`)."""

    def __init__(self, chat: Chat[C], *, handshake_timeout: float) -> None:
        self.chat = chat
        self.tls: ssl.SSLContext | None = None  # a reload may give a new certificate
        self.handshake_timeout = handshake_timeout  # and a new deadline
        self.listeners: list[asyncio.Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def listen(self, hosts: list[str | None], port: int,
                     tls: ssl.SSLContext | None) -> list[str]:
        """Listen on each host (None: every interface); returns the bound addresses
        ("127.0.0.1:5000")."""
        self._loop = asyncio.get_running_loop()
        self.tls = tls
        for host in hosts:
            # No ssl= here: a TLS connection is counted first, then upgraded (_serve).
            self.listeners.append(await self._loop.create_server(
                self._stream_protocol, host=host, port=port, backlog=4096))
        bound = []
        for listener in self.listeners:
            for sock in listener.sockets:
                addr = sock.getsockname()
                bound.append(f"[{addr[0]}]:{addr[1]}" if sock.family == socket.AF_INET6
                             else f"{addr[0]}:{addr[1]}")
        return bound

    def close(self) -> None:
        """Stop accepting; the connections go on."""
        for listener in self.listeners:
            listener.close()

    def _stream_protocol(self) -> StreamProtocol:
        """What asyncio.start_server makes per connection, with StreamProtocol."""
        reader = asyncio.StreamReader(limit=READ_LIMIT, loop=self._loop)
        return StreamProtocol(reader, self._serve, loop=self._loop)

    async def _serve(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter
                     ) -> None:
        """One TCP client, from accept to close: read, feed its link, nothing else."""
        sock = stream.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _tune(sock)
        _shrink_drain_waiters(stream.transport.get_protocol())
        ip, address = peer_address(stream.get_extra_info("peername"))
        chat = self.chat
        plain = self.tls is None
        tcp = stream.transport  # under TLS, `stream` writes through another one
        outlet = StreamOutlet(stream)
        conn = chat.accept(ip, address, outlet, detect_tls=plain, say_why=plain)
        if conn is None:
            release_transport(tcp)
            return
        reason: str | None = None
        try:
            if self.tls is not None and not await self._upgrade(conn, outlet, stream):
                return
            while data := await reader.read(READ_SIZE):
                # Once closing, input is read and dropped: a socket closed with unread
                # input is reset, and the client could lose the last lines sent to it.
                if not conn.closing:
                    chat.received(conn, data)
            if not conn.closing:
                chat.eof(conn)
            outlet.peer_finished()
            await stream.wait_closed()  # bounded: a closing connection lingers at most
        except OSError as exc:  # reset, broken pipe...: the client is gone
            reason = end_reason(exc)
            # The stream keeps the error that ended it, and a traceback holds frames that
            # hold the stream: a cycle only a full collection would find (chatd.heap).
            exc.__traceback__ = None
        finally:
            if (error := reader.exception()) is not None:  # the same, raised elsewhere
                error.__traceback__ = None
            chat.lost(conn, reason)
            release_transport(tcp)

    async def _upgrade(self, conn: C, outlet: StreamOutlet, stream: asyncio.StreamWriter
                       ) -> bool:
        """TLS after the connection was counted, under a deadline (PROTOCOL.txt 11.1)."""
        timeout = self.handshake_timeout
        assert self.tls is not None
        try:
            async with asyncio.timeout(timeout):
                await stream.start_tls(self.tls, ssl_handshake_timeout=timeout)
            outlet.bind(stream.transport)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else end_reason(exc)
            self.chat.log.warning(f"TLS handshake failed: {what}", event="tls_failed",
                                  cid=conn.cid, address=conn.address)
            conn.drop(f"TLS handshake failed: {what}")
            return False
        return True
