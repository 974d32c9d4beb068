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
import json
import logging
from collections import deque
from collections.abc import Collection
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

from chatd import __version__
from chatd.palette import PALETTE
from chatd.server import address_of, describe, tls_context

if TYPE_CHECKING:
    from chatd.server import Connection, Server

WS_PATH = "/ws"
# A message up to this many times --max-line-bytes gets line_too_long from us; a longer
# one is refused by websockets itself (close code 1009), so a client cannot make the
# server buffer more than this per message.
MAX_SIZE_FACTOR = 4
CLOSE_TIMEOUT = 2.0  # seconds to wait for a browser to answer our close frame

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


class WebOutlet:
    """The writer's view of a WebSocket (chatd.outbox.Outlet): lines in, messages out.

    `write` splits the server's batch into lines and queues them; `pump` (one task per
    connection) sends each line as one text message. Closing waits for the queue to
    drain, aborting does not, as with a TCP connection.
    """

    __slots__ = ("ws", "lines", "queued", "closing", "wake", "close_code", "close_reason")

    def __init__(self, ws: ServerConnection) -> None:
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

    def buffered(self) -> int:
        return self.queued + self.ws.transport.get_write_buffer_size()

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
    """The WebSocket's end as the kind of error `chatd.server.describe` words."""
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
        self.pages = load_pages()
        self.origins = frozenset(normalize_origin(o) for o in server.config.web_origins)
        self.stopping = False
        self.outlets: set[WebOutlet] = set()
        self.bound: list[str] = []
        self.ws_server: WsServer | None = None

    @classmethod
    async def start(cls, server: Server) -> WebGateway:
        gateway = cls(server)
        config = server.config
        # asyncio's create_server takes a list of hosts, though websockets' hint says one.
        hosts: Any = list(config.hosts) if config.hosts else None
        tls = tls_context(config)
        try:
            gateway.ws_server = ws_server = await serve(
                gateway._session, host=hosts, port=config.web_port,
                process_request=gateway._http, server_header=f"chatd/{__version__}",
                max_size=MAX_SIZE_FACTOR * config.max_line_bytes,
                # Lines are short: compression would cost memory per connection for little.
                compression=None, close_timeout=CLOSE_TIMEOUT,
                logger=_library_logger(server), backlog=4096, ssl=tls)
        except OSError as exc:  # say which port: the log's reader may think of the TCP one
            raise OSError(exc.errno, exc.strerror, f"web port {config.web_port}") from exc
        scheme = "https" if tls else "http"
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
        path = request.path.partition("?")[0]
        if path == WS_PATH:
            origin = request.headers.get("Origin")
            if origin_allowed(origin, request.headers.get("Host"), self.origins):
                return None  # go on with the WebSocket handshake
            self.server.log.warning(f"web: refused a WebSocket from Origin {origin!r} "
                                    "(allow it with --web-origin)")
            return ws.respond(403, "This Origin may not use this chat server.\n")
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

    async def _session(self, ws: ServerConnection) -> None:
        """One browser, from the handshake to the end: messages into its connection's link."""
        if self.stopping:
            await ws.close(1001, "server shutting down")
            return
        server = self.server
        outlet = WebOutlet(ws)
        ip, address = address_of(ws.remote_address)
        # A WebSocket speaks JSON: no text mode (PROTOCOL.txt 13).
        conn = server.accept(ip, address, outlet, json_only=True)
        if conn is None:  # refused: the pump sends the error line, then closes
            await outlet.pump()
            return
        self.outlets.add(outlet)
        sender = asyncio.create_task(outlet.pump())
        reason: str | None = None
        try:
            reason = await self._receive(conn, ws)
        finally:
            server.lost(conn, reason)
            outlet.close()
            await sender
            self.outlets.discard(outlet)

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
            return describe(lost_reason(exc))
