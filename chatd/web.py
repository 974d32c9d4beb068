"""The web gateway: the chat page over HTTP and the JSON protocol over a WebSocket.

One port (`chatd --web PORT`) serves the page and its modules from `chatd/static`, and
`/ws`, where every WebSocket message is one protocol line (PROTOCOL.txt 13); with
--tls-cert, over HTTPS and WSS like the TCP port. The
`websockets` library does HTTP and the WebSocket framing; this module is a shell like
the TCP one (chatd.server): each message goes to the connection's `Link`
(`Server.received_message`), so a browser user goes through the same link, limits,
hub, writer and log as a TCP user.

Output never waits for a browser: the writer's once-a-turn `write` only queues lines
on the `WebOutlet`, and a sender task per connection feeds them to the socket. The
queued bytes count in `buffered()`, so the send-queue bound (PROTOCOL.txt 8.2) cuts off
a browser that does not read, as it does a TCP client.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Collection
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import urlsplit

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

from chatd import __version__
from chatd import protocol as p
from chatd.net import end_reason, forget_tracebacks, peer_address, release_transport, tls_context
from chatd.palette import PALETTE

if TYPE_CHECKING:
    from websockets.server import ServerProtocol

    from chatd.connection import Connection
    from chatd.server import Server

WS_PATH = "/ws"
# A message up to this many times --max-line-bytes gets line_too_long from us; a longer
# one is refused by websockets itself (close code 1009), so a client cannot make the
# server buffer more than this per message.
MAX_SIZE_FACTOR = 4
CLOSE_TIMEOUT = 2.0  # seconds to wait for a browser to answer our close frame
PAGE_UNLOADED = 4000  # the close code of chatd's page when it is unloaded (13.4)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Defence in depth behind textContent: no inline script, nothing from other sites.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def load_pages() -> dict[str, tuple[str, bytes]]:
    """Path -> (content type, body) for every file the page needs, read once at start."""
    pages: dict[str, tuple[str, bytes]] = {}
    for entry in resources.files("chatd").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            pages["/" + entry.name] = (CONTENT_TYPES[suffix], entry.read_bytes())
    pages["/"] = pages["/index.html"]
    pages["/palette.js"] = (CONTENT_TYPES[".js"], palette_module())
    pages["/commands.js"] = (CONTENT_TYPES[".js"], p.commands_js())  # /help's one list
    return pages


def palette_module() -> bytes:
    """chatc's name colours as a JS module, so the page has one source of truth."""
    return f"export const PALETTE = Object.freeze({json.dumps(list(PALETTE))});\n".encode()


def normalize_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """Same-origin pages and the configured origins may open the WebSocket.

    No Origin header means no browser (browsers always send one on a WebSocket
    handshake); the check protects browser users from other sites' pages, and a
    program could reach the TCP port anyway, so such clients are let in.
    """
    if origin is None:
        return True
    wanted = normalize_origin(origin)
    if wanted in allowed:
        return True
    parts = urlsplit(wanted)
    return (parts.scheme in ("http", "https") and host is not None
            and parts.netloc == host.strip().lower())


def host_name(host: str) -> str:
    """The name in a Host header: lower case, without port, brackets or a final dot."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, perhaps with a port
        return host[1:].partition("]")[0]
    return host.partition(":")[0].rstrip(".")


def host_allowed(host: str | None, names: Collection[str]) -> bool:
    """Whether a request's Host is a name this server answers to (PROTOCOL.txt 13.6).

    A page of another site may get its own name to resolve to this server's address
    (DNS rebinding), and the browser then treats the server as that site's: such a
    request carries the other site's name, so it is refused. An IP address cannot be
    rebound, and localhost names always mean this machine; other names must be given
    (`names`: --web-host and the names chatd listens on).
    """
    if host is None:
        return False
    name = host_name(host)
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name.endswith(".localhost") or name in names


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


class WebOutlet:
    """The writer's view of a WebSocket (chatd.outbox.Outlet): lines in, messages out.

    `write` splits the server's batch into lines and queues them; `pump` (one task per
    connection) sends each line as one text message. Closing waits for the queue to
    drain, aborting does not, as with a TCP connection.
    """

    __slots__ = ("ws", "lines", "queued", "closing", "wake", "close_code", "close_reason")

    def __init__(self, ws: WebConnection) -> None:
        self.ws = ws
        self.lines: deque[bytes] = deque()
        self.queued = 0  # bytes written by the server and not yet handed to the socket
        self.closing = False
        self.wake = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        self.lines.extend(line for line in data.split(b"\n") if line)
        self.queued += len(data)
        self.wake.set()

    def send(self, data: bytes) -> int:
        if self.is_closing():
            return -1
        self.write(data)
        return self.buffered()

    def buffered(self) -> int:
        return self.queued + self.ws.unsent()

    def is_closing(self) -> bool:
        return self.closing or self.ws.state is not State.OPEN

    def close(self) -> None:
        self.closing = True
        self.wake.set()

    def abort(self) -> None:
        self.closing = True
        self.lines.clear()
        self.queued = 0
        self.wake.set()
        self.ws.transport.abort()

    async def pump(self) -> None:
        """Sends queued lines until closed; then closes the WebSocket."""
        ws = self.ws
        try:
            while True:
                while self.lines:
                    line = self.lines.popleft()
                    await ws.send(line, text=True)
                    self.queued -= len(line) + 1
                if self.closing:
                    break
                self.wake.clear()
                await self.wake.wait()
            await ws.close(self.close_code, self.close_reason)
        except ConnectionClosed:
            pass
        finally:
            self.closing = True
            self.lines.clear()
            self.queued = 0


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
        self.pages = load_pages()
        self.origins = frozenset(normalize_origin(o) for o in config.web_origins)
        # Names the server answers to besides IP addresses and localhost (13.6). An
        # address to listen on is an IP or a name, never with a port or brackets.
        listen = (host.lower().rstrip(".") for host in config.hosts or ())
        self.names = frozenset(name for name in (*map(host_name, config.web_hosts), *listen)
                               if name)
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

    # ------------------------------------------------------------------ HTTP

    def _http(self, ws: ServerConnection, request: Request) -> Response | None:
        host = request.headers.get("Host")
        if not host_allowed(host, self.names):
            self.server.log.warning(f"web: {cast(WebConnection, ws).address} refused: Host "
                                    f"{host!r} is not a name of this server (allow it with "
                                    "--web-host)")
            name = host_name(host) if host else ""
            return ws.respond(403, f"This chat server does not answer to the name {name!r}. "
                                   "If that name is the server's, start chatd with "
                                   f"--web-host {name or 'NAME'}.\n")
        path = request.path.partition("?")[0]
        if path == WS_PATH:
            origin = request.headers.get("Origin")
            if not origin_allowed(origin, request.headers.get("Host"), self.origins):
                self.server.log.warning(f"web: refused a WebSocket from Origin {origin!r} "
                                        "(allow it with --web-origin)")
                return ws.respond(403, "This Origin may not use this chat server.\n")
            address = cast(WebConnection, ws).address
            refused = self.server.policy.web_socket(cast(WebConnection, ws).ip,
                                                    time.monotonic())
            if refused is None:
                return None  # go on with the WebSocket handshake
            self.server.refusals[refused.code] += 1
            self.server.log.warning(f"web: {address} refused: {refused.message}")
            return ws.respond(429, f"{refused.code}: {refused.message}\n")
        page = self.pages.get(path)
        if page is None:
            return ws.respond(404, "Not found.\n")
        content_type, body = page
        return Response(200, "OK", Headers([
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]), body)

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
