"""The web gateway: the chat page over HTTP and the JSON protocol over a WebSocket.

One port (`chatd --web PORT`) serves the page and its modules, and `/ws`, where every
WebSocket message is one protocol line (PROTOCOL.txt 13); with --tls-cert, over HTTPS
and WSS like the TCP port. The `websockets` library does HTTP and the WebSocket
framing; this module is a shell like the TCP one (chatd.tcp): it counts and admits
the port's connections (`WebConnection`, TLS included), and feeds each message to the
connection's `Link` (`Server.received_message`), so a browser user goes through the
same link, limits, hub, writer and log as a TCP user. What a plain HTTP request gets,
and which ones may open the WebSocket, is chatd.webhttp's; output goes through a
`WebOutlet` (chatd.weboutlet), so the writer never waits for a browser.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any, ClassVar, cast

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from chatd import __version__
from chatd.channels import Direct
from chatd.net import end_reason, forget_tracebacks, peer_address, release_transport, tls_context
from chatd.webhttp import HttpGate
from chatd.weboutlet import WebOutlet

if TYPE_CHECKING:
    from websockets.server import ServerProtocol

    from chatd.connection import Connection
    from chatd.server import Server

# A message up to this many times --max-line-bytes gets line_too_long from us; a longer
# one is refused by websockets itself (close code 1009), so a client cannot make the
# server buffer more than this per message.
MAX_SIZE_FACTOR = 4
CLOSE_TIMEOUT = 2.0  # seconds to wait for a browser to answer our close frame
PAGE_UNLOADED = 4000  # the close code of chatd's page when it is unloaded (13.4)


class _ForwardToServerLog(logging.Handler):
    """websockets' own warnings and errors, one line each in chatd's log (no tracebacks)."""

    def __init__(self, server: Server) -> None:
        super().__init__(logging.WARNING)
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        text = f"web: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        self.server.log.warning(text)


def _library_logger(server: Server) -> logging.Logger:
    logger = logging.getLogger(f"chatd.web.{id(server)}")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.handlers = [_ForwardToServerLog(server)]
    return logger


class _Unopened:
    """Admission's view of a connection that is not a WebSocket yet: refusing it cuts it
    at once (no HTTP answer, nor any TLS work, for a connection over the limits)."""

    __slots__ = ("transport",)
    direct: Direct | None = None  # it only ever sends a refusal: through `send`

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        pass

    def send(self, data: bytes) -> int:
        if self.is_closing():
            return -1
        self.write(data)
        return self.buffered()

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.abort()

    def abort(self) -> None:
        self.transport.abort()


class WebConnection(ServerConnection):
    """One TCP connection to the web port, counted from accept to end (PROTOCOL.txt 8.4).

    `WebGateway` makes a subclass per gateway, bound to it (websockets creates the
    connection itself). With TLS the handshake is done here, after counting, under
    --tls-handshake-timeout; websockets sees the connection once it is encrypted.
    """

    gateway: ClassVar[WebGateway]

    def __init__(self, protocol: ServerProtocol, server: WsServer, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.ip = ""
        self.address = "?"
        self.counted = False  # this connection holds a slot that it must give back
        self.chat: Connection | None = None  # the chat connection, after the upgrade
        self.outlet: WebOutlet | None = None
        self.raw: asyncio.Transport | None = None  # the TCP transport, under TLS
        self.started = False  # websockets has the connection
        self.early: list[bytes | None] = []  # decrypted before it had it; None: EOF
        self.handshake_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)
        gateway = self.gateway
        self.ip, self.address = peer_address(tcp.get_extra_info("peername"))
        # A page load is several short connections: only a WebSocket takes one of the
        # address's new connections (--connect-throttle), at its upgrade (`_http`).
        if gateway.stopping or not gateway.server.admit(self.ip, self.address, _Unopened(tcp),
                                                        say_why=False, throttle=False):
            tcp.abort()
            return
        self.counted = True
        if gateway.tls is None:
            self.start(tcp)
            return
        tcp.pause_reading()  # the TLS hello is for start_tls, which runs from the next turn
        self.raw = tcp
        gateway.handshakes.add(self)
        self.handshake_task = asyncio.get_running_loop().create_task(
            self.upgrade(tcp, gateway.tls))

    def start(self, transport: asyncio.Transport) -> None:
        self.started = True
        super().connection_made(transport)
        early, self.early = self.early, []
        for data in early:
            if data is None:
                self.eof_received()
            else:
                self.data_received(data)

    async def upgrade(self, tcp: asyncio.Transport, context: ssl.SSLContext) -> None:
        gateway = self.gateway
        timeout = gateway.server.config.tls_handshake_timeout
        try:
            async with asyncio.timeout(timeout):
                tls = await asyncio.get_running_loop().start_tls(
                    tcp, self, context, server_side=True, ssl_handshake_timeout=timeout)
        except Exception as exc:  # reset, bad hello, timeout...: one line, the slot back
            what = "timed out" if isinstance(exc, TimeoutError) else end_reason(exc)
            gateway.server.log.warning(f"web: {self.address} TLS handshake failed: {what}")
            tcp.abort()
            self.release()
            return
        finally:
            gateway.handshakes.discard(self)
        if tls is None or tcp.is_closing():  # lost as the handshake ended
            self.release()
            return
        self.start(tls)

    def data_received(self, data: bytes) -> None:
        if not self.started:  # TLS hands over what follows the handshake before
            self.early.append(data)  # start_tls returns: keep it for websockets
            return
        super().data_received(data)
        # The library answers pings and closes by itself, past the send queue's
        # accounting: check what waits after each read (PROTOCOL.txt 8.2).
        self.gateway.check_unsent(self)

    def eof_received(self) -> None:
        if not self.started:
            self.early.append(None)
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        # The error that ended the connection (a reset) is kept by the library and by
        # asyncio's futures; its traceback holds the frames it was raised in, which hold
        # the connection: a cycle only a full collection would find (chatd.heap counts
        # on connections being freed without one). So is the error that ended the
        # library's parser. Nothing reads those tracebacks: the end is logged in words.
        forget_tracebacks(exc)
        if self.started:
            super().connection_lost(exc)
        forget_tracebacks(self.protocol.parser_exc)
        if self.raw is not None:
            release_transport(self.raw)

    def unsent(self) -> int:
        """Bytes written to the connection and not yet taken by the kernel."""
        size = self.transport.get_write_buffer_size()
        if self.raw is not None:  # TLS output past its buffer waits on the TCP transport
            size += self.raw.get_write_buffer_size()
        return size

    def take_over(self) -> bool:
        """The chat connection takes this one's slot; False if it has already ended."""
        if not self.counted:
            return False
        self.counted = False
        return True

    def release(self) -> None:
        if self.counted:
            self.counted = False
            self.gateway.server.release(self.ip)

    def cut(self) -> None:
        (self.raw or self.transport).abort()


def lost_reason(exc: ConnectionClosedError) -> Exception:
    """The WebSocket's end as the kind of error `chatd.net.end_reason` words."""
    if exc.rcvd is None and exc.sent is None:
        return ConnectionResetError()  # the TCP connection ended without a close frame
    close = exc.sent if exc.sent is not None else exc.rcvd
    assert close is not None
    if exc.rcvd is None and "keepalive" in close.reason:
        return TimeoutError()  # no answer to websockets' keepalive ping
    try:
        what = CloseCode(close.code).name.lower().replace("_", " ")
    except ValueError:
        what = f"code {close.code}"
    return ConnectionAbortedError(0, f"websocket closed: {what}")


class WebGateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        config = server.config
        self.http = HttpGate(server)
        self.tls = tls_context(config.tls_cert, config.tls_key)
        self.stopping = False
        self.outlets: set[WebOutlet] = set()
        self.handshakes: set[WebConnection] = set()  # in their TLS handshake
        self.bound: list[str] = []
        self.ws_server: WsServer | None = None

    @classmethod
    async def start(cls, server: Server) -> WebGateway:
        gateway = cls(server)
        config = server.config

        class Bound(WebConnection):
            pass

        Bound.gateway = gateway
        # asyncio's create_server takes a list of hosts, though websockets' hint says one.
        hosts: Any = list(config.hosts) if config.hosts else None
        try:
            gateway.ws_server = ws_server = await serve(
                gateway._session, host=hosts, port=config.web_port,
                process_request=gateway._http, server_header=f"chatd/{__version__}",
                max_size=MAX_SIZE_FACTOR * config.max_line_bytes,
                # Lines are short: compression would cost memory per connection for little.
                compression=None, close_timeout=CLOSE_TIMEOUT,
                # The HTTP request and the upgrade; TLS comes before, on its own deadline.
                open_timeout=config.web_request_timeout, create_connection=Bound,
                logger=_library_logger(server), backlog=4096)
        except OSError as exc:  # say which port: the log's reader may think of the TCP one
            raise OSError(exc.errno, exc.strerror, f"web port {config.web_port}") from exc
        scheme = "https" if gateway.tls else "http"
        for sock in ws_server.sockets:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            gateway.bound.append(f"web {scheme}://{shown}:{port}/")
        return gateway

    def stop_accepting(self) -> None:
        self.stopping = True
        for outlet in self.outlets:  # the page reconnects on "going away"
            outlet.close_code, outlet.close_reason = 1001, "server shutting down"
        if self.ws_server is not None:
            self.ws_server.close(close_connections=False)
        for ws in list(self.handshakes):
            ws.cut()

    def check_unsent(self, ws: WebConnection) -> None:
        """Drops a connection whose unsent output is past the send-queue bound."""
        unsent = ws.outlet.buffered() if ws.outlet is not None else ws.unsent()
        limit = self.server.config.max_send_queue
        if unsent <= limit:
            return
        what = f"disconnected: send queue over {limit} bytes (the client is not reading)"
        if ws.chat is not None:
            if not ws.chat.gone:
                self.server.log.warning(f"{ws.chat} {what}")
                ws.chat.drop("send queue full")
        else:
            self.server.log.warning(f"web: {ws.address} {what}")
            ws.cut()

    async def close(self) -> None:
        """After the server has closed its connections: wait for the handlers to end."""
        if self.ws_server is None:
            return
        self.ws_server.close(close_connections=False)
        try:
            await asyncio.wait_for(self.ws_server.wait_closed(),
                                   self.server.config.shutdown_timeout)
        except TimeoutError:
            for ws in list(self.ws_server.connections):
                ws.transport.abort()

    def _http(self, ws: ServerConnection, request: Request) -> Response | None:
        conn = cast(WebConnection, ws)
        return self.http.answer(ws, request, conn.ip, conn.address)

    # ------------------------------------------------------------------ WebSocket

    async def _session(self, connection: ServerConnection) -> None:
        """One browser, from the handshake to the end: messages into its connection's link."""
        ws = cast(WebConnection, connection)
        if self.stopping:
            await ws.close(1001, "server shutting down")
            return
        if not ws.take_over():  # it ended as the handshake did
            return
        server = self.server
        ws.outlet = outlet = WebOutlet(ws)
        # Counted when it was accepted; a WebSocket speaks JSON: no text mode (13).
        conn = server.accept(ws.ip, ws.address, outlet, json_only=True, counted=True)
        assert conn is not None  # only a connection not counted yet can be refused
        ws.chat = conn
        self.outlets.add(outlet)
        sender = asyncio.create_task(outlet.pump())
        reason: str | None = None
        try:
            reason = await self._receive(conn, ws)
        finally:
            # The page closes with PAGE_UNLOADED when it is unloaded: a reload comes back
            # within seconds, a closed tab never, so its hold is short (13.4).
            close = ws.protocol.close_rcvd
            unloaded = close is not None and close.code == PAGE_UNLOADED
            server.lost(conn, reason,
                        grace=server.config.web_reload_grace if unloaded else None)
            outlet.close()
            await sender
            self.outlets.discard(outlet)
            ws.chat = ws.outlet = None  # they refer back to ws: no cycle left (chatd.heap)

    async def _receive(self, conn: Connection, ws: ServerConnection) -> str | None:
        """Feeds messages to the server until the WebSocket ends; None if it ended cleanly."""
        try:
            while True:
                data = await ws.recv(decode=False)
                if not conn.closing:
                    self.server.received_message(conn, data)
        except ConnectionClosedOK:
            return None
        except ConnectionClosedError as exc:
            return end_reason(lost_reason(exc))
