"""The web port's plain HTTP side: the page's files, and who may go on to the WebSocket.

Every request to `chatd --web PORT` comes here first (websockets' process_request,
chatd.web): a request whose Host is not a name of this server is refused (DNS
rebinding, PROTOCOL.txt 13.6); a request for /ws goes on to the WebSocket handshake
if its Origin may use the chat and admission lets the address in (13.3, 8.4); any
other path is one of the page's files from `chatd/static`, read once at start, with
the headers that keep the page to itself (CSP).
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import time
from collections.abc import Collection
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatd import protocol as p
from chatd.palette import PALETTE

if TYPE_CHECKING:
    from chatd.server import Server

WS_PATH = "/ws"
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


class HttpGate:
    """One web port's answers to HTTP requests: its pages, the origins and the names it
    accepts (from --web-origin, --web-host and the addresses chatd listens on)."""

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

    def answer(self, ws: ServerConnection, request: Request, ip: str,
               address: str) -> Response | None:
        """The response to `request` from `address`; None: go on to the WebSocket."""
        host = request.headers.get("Host")
        if not host_allowed(host, self.names):
            self.server.log.warning(f"web: {address} refused: Host {host!r} is not a name "
                                    "of this server (allow it with --web-host)")
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
            refused = self.server.policy.web_socket(ip, time.monotonic())
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
