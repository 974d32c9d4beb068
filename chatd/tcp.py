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
import contextvars
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

from chatd.channels import Direct, Outlet
from chatd.net import end_reason, forget_tracebacks, peer_address, release_transport
from chatd.serverlog import ServerLog

TCP_KEEPALIVE = (60, 10, 6)  # idle, interval, probes: a dead peer is found in ~2 minutes
READ_SIZE = 64 * 1024  # bytes asked of the stream per read
READ_LIMIT = 64 * 1024  # the StreamReader pauses the socket past twice this, unread
CLOSE_GRACE = 0.25  # seconds between our FIN and the close (StreamOutlet.close)
# Linux gives an accepted socket the listening socket's options (keepalive, no delay):
# set there once, not on every connection (which would make uvloop keep a socket object
# for each: ~130 bytes a connection).
INHERITS_OPTIONS = sys.platform == "linux"
TASK_NAME = "chatd TCP connection"  # every connection's task's (see StreamProtocol)
TASK_CONTEXT = contextvars.Context()


class TcpConnection(Protocol):
    """What the shell needs of a chat connection (chatd.connection.Connection)."""

    cid: int
    address: str
    closing: bool  # input is read and dropped from now on
    direct: Direct | None  # what the writer writes to (chatd.channels.Receiver)

    def drop(self, reason: str) -> None: ...


C = TypeVar("C", bound=TcpConnection)


class Chat(Protocol[C]):
    """What the shell feeds (chatd.server.Server): connections and their bytes."""

    log: ServerLog
    # Bytes were fed to a connection's reader: the writer's flush goes behind its task
    # (chatd.outbox.Outbox.flush_after_readers).
    flush_after_readers: Callable[[], None]

    def accept(self, ip: str, address: str, outlet: Outlet, *, detect_tls: bool,
               say_why: bool) -> C | None: ...

    def received(self, conn: C, data: bytes) -> None: ...

    def eof(self, conn: C) -> None: ...

    def lost(self, conn: C, reason: str | None) -> None: ...


class StreamOutlet:
    """The writer's view of a TCP connection (chatd.channels.Outlet): its StreamWriter."""

    __slots__ = ("stream", "transport", "direct", "peer_done", "closed", "_close_later")

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self.stream = stream
        self.transport = stream.transport  # again after a TLS upgrade: see `bind`
        self.direct: asyncio.WriteTransport | None = self.transport  # see Outlet
        self.peer_done = False  # the client sent its FIN: all its input is read
        # close() was called: our FIN may be on its way, and a write after it raises
        # (in the writer's flush, where it would stop every other connection's output)
        self.closed = False
        self._close_later: asyncio.TimerHandle | None = None

    def bind(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        if not self.closed:
            self.direct = transport

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
        self.direct = None
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
    """asyncio's stream protocol for one connection (what asyncio.start_server makes),
    less what it allocates per connection for uses chatd has not (with the rest of this
    module's cuts, 6,479 -> 5,002 bytes of Python objects an idle connection,
    python -m bench.conn_memory).

    - No deque of drain() waiters: chatd never awaits drain() (the writer checks the
      transport's buffer instead; start_tls does, with nothing written yet); made if ever
      needed (`_drain_helper`).
    - The close waiter (`_closed`, a future) is made when awaited or at the close.
    - The reader is held as itself, not through a weak reference; `connection_lost` lets
      it go, as it lets go of the writer and the task.
    - No closure per connection to report a failed `TcpListener._serve`: it reports its
      own failures.
    - The StreamWriter's `_complete_fut`, which nothing reads, is one future for all
      (`TcpListener._serve`).
    - Every connection's task has the same name and runs in the same context (asyncio
      makes a name and a copy of the context for each): chatd sets no context variables.

    And `data_received` reports each chunk once it is in the reader (`fed`): the chunk
    wakes the connection's task for the loop's next batch of callbacks, and the writer
    puts its flush behind that task (chatd.outbox.Outbox.flush_after_readers), so what
    the chunk causes is written in the same batch, as with a bare protocol.

    And the error that ends a connection is kept without its traceback. It is stored on
    the reader and on the close waiter, and the future keeps the traceback apart from the
    error (`Future.result` raises it with it). That traceback holds the frames it was
    raised in, from the socket's write up to the writer's flush, and so the stream
    writer, whose protocol holds the future: a cycle, and the frames hold the connection.
    Only a full collection would find it (chatd.heap counts on connections being freed
    without one); a write meets a reset whenever a client goes while lines are coming,
    which is often on a loaded machine (tests/e2e/test_heap.py). Nothing reads that
    traceback: the end is logged in words (chatd.net.end_reason).

    StreamReaderProtocol.__init__, connection_made and connection_lost are written out
    here, so tests/unit/test_tcp.py checks that this protocol has every attribute the
    stdlib's sets (a new Python may add one).
    """

    _drain_waiters: Any = ()
    _closed: asyncio.Future[None] | None = None
    _stream_reader: Any = None  # the stdlib's is a property over a weak reference
    _reject_connection = False  # nothing sets it

    def __init__(self, reader: asyncio.StreamReader,
                 serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                 Coroutine[Any, Any, None]],
                 loop: asyncio.AbstractEventLoop,
                 fed: Callable[[], None]) -> None:
        self._loop = loop
        self._fed = fed  # called after each chunk is fed to the reader
        self._paused = False
        self._connection_lost = False
        self._stream_reader = reader
        self._client_connected_cb = serve
        self._stream_writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._over_ssl = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        reader: asyncio.StreamReader = self._stream_reader
        reader.set_transport(transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        self._stream_writer = asyncio.StreamWriter(
            transport, self, reader, self._loop)  # type: ignore[arg-type]
        self._task = self._loop.create_task(
            self._client_connected_cb(reader, self._stream_writer), name=TASK_NAME,
            context=TASK_CONTEXT)

    def data_received(self, data: bytes) -> None:
        reader: asyncio.StreamReader | None = self._stream_reader
        if reader is not None:
            reader.feed_data(data)  # wakes the connection's task in the loop's next turn
            self._fed()

    def connection_lost(self, exc: Exception | None) -> None:
        forget_tracebacks(exc)
        reader: asyncio.StreamReader | None = self._stream_reader
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        closed = self._get_close_waiter(None)
        if not closed.done():
            if exc is None:
                closed.set_result(None)
            else:
                closed.set_exception(exc)
                # Retrieved now (`wait_closed` still raises it): a connection that ends
                # on a reset never awaits it, and the stdlib's way, retrieving it in
                # `__del__`, comes too late for a protocol freed after the loop closed
                # (its future then reports it to a closed loop).
                closed.exception()
        asyncio.streams.FlowControlMixin.connection_lost(self, exc)
        self._stream_reader = None
        self._stream_writer = None
        self._task = None
        self._transport = None

    def _get_close_waiter(self, stream: object) -> asyncio.Future[None]:
        closed = self._closed
        if closed is None:
            closed = self._closed = self._loop.create_future()
        return closed

    async def _drain_helper(self) -> None:
        if self._paused and not isinstance(self._drain_waiters, collections.deque):
            self._drain_waiters = collections.deque()
        await super()._drain_helper()  # type: ignore[misc]

    def __del__(self) -> None:
        # Replaces the stdlib's, which would read a close waiter never made (None).
        closed = self._closed
        if closed is not None and closed.done() and not closed.cancelled():
            closed.exception()


class StreamReader(asyncio.StreamReader):
    """asyncio's StreamReader, whose `read` awaits the data's future itself instead of
    through a coroutine of its own: an idle connection waits with one coroutine frame
    fewer (~216 bytes). The waiter is let go where asyncio's own lets it go once data,
    the end or an error comes (`_wakeup_waiter`, `set_exception`); only a cancelled wait
    (the connection's task cancelled: it ends) leaves it set."""

    # asyncio's, undeclared in its stubs
    _loop: asyncio.AbstractEventLoop
    _transport: Any
    _waiter: asyncio.Future[None] | None
    _eof: bool
    _paused: bool

    def _wait_for_data(self, func_name: str) -> asyncio.Future[None]:
        if self._waiter is not None:
            raise RuntimeError(f"{func_name}() called while another coroutine is "
                               "already waiting for incoming data")
        assert not self._eof, "_wait_for_data after EOF"
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiter = waiter
        return waiter


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, interval, probes = TCP_KEEPALIVE
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


class TcpListener(Generic[C]):
    """The listening sockets and the life of each TCP connection on them: accepted,
    upgraded to TLS, read until its end, then handed back (`Chat.lost`)."""

    def __init__(self, chat: Chat[C], *, handshake_timeout: float) -> None:
        self.chat = chat
        self.tls: ssl.SSLContext | None = None  # a reload may give a new certificate
        self.handshake_timeout = handshake_timeout  # and a new deadline
        self.listeners: list[asyncio.Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serve_cb = self._serve  # one bound method for every connection's protocol
        self._complete: asyncio.Future[None] | None = None  # see StreamProtocol

    async def listen(self, hosts: list[str | None], port: int,
                     tls: ssl.SSLContext | None) -> list[str]:
        """Listen on each host (None: every interface); returns the bound addresses
        ("127.0.0.1:5000")."""
        self._loop = asyncio.get_running_loop()
        self._complete = self._loop.create_future()
        self._complete.set_result(None)
        self.tls = tls
        for host in hosts:
            # No ssl= here: a TLS connection is counted first, then upgraded (_serve).
            self.listeners.append(await self._loop.create_server(
                self._stream_protocol, host=host, port=port, backlog=4096))
        bound = []
        for listener in self.listeners:
            for sock in listener.sockets:
                if INHERITS_OPTIONS and sock.family in (socket.AF_INET, socket.AF_INET6):
                    _tune(sock)
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
        assert self._loop is not None
        reader = StreamReader(limit=READ_LIMIT, loop=self._loop)
        return StreamProtocol(reader, self._serve_cb, self._loop,
                              self.chat.flush_after_readers)

    async def _serve(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter
                     ) -> None:
        """One TCP client, from accept to close: read, feed its link, nothing else.
        (Few locals: this frame lives as long as the connection.)"""
        tcp = stream.transport  # under TLS, `stream` writes through another one
        outlet = StreamOutlet(stream)
        try:
            conn = self._accept(stream, outlet)
        except Exception as exc:  # a bug: reported as asyncio reports a failed callback
            self._failed(exc, tcp)
            return
        if conn is None:
            release_transport(tcp)
            return
        reason: str | None = None
        try:
            if self.tls is not None and not await self._upgrade(conn, outlet, stream):
                return
            chat = self.chat
            while data := await reader.read(READ_SIZE):
                # Once closing, input is read and dropped: a socket closed with unread
                # input is reset, and the client could lose the last lines sent to it.
                if not conn.closing:
                    chat.received(conn, data)
                del data  # not kept while the client is idle: up to READ_SIZE bytes
            if not conn.closing:
                chat.eof(conn)
            outlet.peer_finished()
            await stream.wait_closed()  # bounded: a closing connection lingers at most
        except OSError as exc:  # reset, broken pipe...: the client is gone
            reason = end_reason(exc)
            # The stream keeps the error that ended it, and a traceback holds frames that
            # hold the stream: a cycle only a full collection would find (chatd.heap).
            exc.__traceback__ = None
        except Exception as exc:  # a bug: reported as asyncio reports a failed callback
            self._failed(exc, tcp)
        finally:
            self._ended(conn, reader, tcp, reason)

    def _accept(self, stream: asyncio.StreamWriter, outlet: StreamOutlet) -> C | None:
        """The new connection counted in (`Chat.accept`), or None if refused."""
        if not INHERITS_OPTIONS:
            sock = stream.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                _tune(sock)
        if self._complete is not None and hasattr(stream, "_complete_fut"):
            stream._complete_fut = self._complete  # see StreamProtocol
        ip, address = peer_address(stream.get_extra_info("peername"))
        plain = self.tls is None
        return self.chat.accept(ip, address, outlet, detect_tls=plain, say_why=plain)

    def _failed(self, exc: Exception, tcp: asyncio.BaseTransport) -> None:
        assert self._loop is not None
        self._loop.call_exception_handler({
            "message": "Unhandled exception in client_connected_cb", "exception": exc,
            "transport": tcp})
        tcp.close()

    def _ended(self, conn: C, reader: asyncio.StreamReader, tcp: asyncio.BaseTransport,
               reason: str | None) -> None:
        if (error := reader.exception()) is not None:  # the same, raised elsewhere
            error.__traceback__ = None
        self.chat.lost(conn, reason)
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
            if not conn.closing:  # the writer writes through TLS from now on
                conn.direct = outlet.direct
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else end_reason(exc)
            self.chat.log.warning(f"TLS handshake failed: {what}", event="tls_failed",
                                  cid=conn.cid, address=conn.address)
            conn.drop(f"TLS handshake failed: {what}")
            return False
        return True
