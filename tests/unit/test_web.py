"""The web gateway's adapter (PROTOCOL.txt 13): pure parts, then an in-process server.

The in-process tests run `Server` with its gateway on 127.0.0.1 in the test's own event
loop and talk to it with the websockets client: the frames a browser could send (text,
binary, invalid UTF-8, oversized) must get the protocol's answers, not library errors.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close, CloseCode

from chatd import service
from chatd.palette import PALETTE
from chatd.server import Server, ServerConfig
from chatd.serverlog import ServerLog
from chatd.web import (
    CSP,
    MAX_SIZE_FACTOR,
    WebConnection,
    WebOutlet,
    host_allowed,
    load_pages,
    lost_reason,
    origin_allowed,
    palette_module,
)

TIMEOUT = 5.0
MAX_LINE = 1024  # small, so oversized messages stay small too

# ---------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(("origin", "host", "allowed", "ok"), [
    ("http://127.0.0.1:8080", "127.0.0.1:8080", (), True),  # the page's own origin
    ("https://chat.example.org", "chat.example.org", (), True),
    ("http://CHAT.example.org", "chat.example.org", (), True),
    ("http://127.0.0.1:8081", "127.0.0.1:8080", (), False),  # another port is another site
    ("http://evil.example", "127.0.0.1:8080", (), False),
    ("null", "127.0.0.1:8080", (), False),  # file: pages, sandboxed frames
    ("ftp://127.0.0.1:8080", "127.0.0.1:8080", (), False),
    ("http://evil.example", None, (), False),
    ("https://app.example.org/", "127.0.0.1:8080", ("https://app.example.org",), True),
    (None, "127.0.0.1:8080", (), True),  # no Origin: not a browser
])
def test_origin_rules(origin: str | None, host: str | None, allowed: tuple[str, ...],
                      ok: bool) -> None:
    assert origin_allowed(origin, host, frozenset(allowed)) is ok


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1:8080", True),
    ("10.1.2.3", True),  # any IP literal: an address cannot be rebound
    ("[::1]:8080", True),
    ("[2001:db8::7]", True),
    ("localhost:8080", True),
    ("LocalHost", True),
    ("app.localhost:8080", True),
    ("chat.example.org:443", True),  # given with --web-host
    ("Chat.Example.Org.", True),
    ("rebind.attacker.example:8080", False),
    ("localhost.attacker.example", False),
    ("example.org", False),
    ("127.0.0.1.attacker.example", False),
    ("::1", False),  # an IPv6 literal without brackets is not a Host
    ("", False),
    (None, False),
])
def test_host_rules(host: str | None, ok: bool) -> None:
    assert host_allowed(host, frozenset({"chat.example.org"})) is ok


def test_pages_hold_the_page_its_modules_and_the_palette() -> None:
    pages = load_pages()
    assert pages["/"] == pages["/index.html"]
    assert pages["/"][0] == "text/html; charset=utf-8"
    for module in ("/app.js", "/session.js", "/view.js", "/colour.js", "/palette.js"):
        assert pages[module][0] == "text/javascript; charset=utf-8"
    assert pages["/style.css"][0] == "text/css; charset=utf-8"
    html = pages["/"][1].decode()
    assert 'src="/app.js"' in html and 'href="/style.css"' in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere


def test_no_page_module_uses_html_sinks() -> None:
    """Network text goes in as text: no innerHTML and friends anywhere in the page."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    for path, (_, body) in load_pages().items():
        assert not sinks.search(body.decode()), path


def test_palette_module_is_chatcs_palette() -> None:
    text = palette_module().decode()
    match = re.fullmatch(r"export const PALETTE = Object\.freeze\((.*)\);\n", text)
    assert match is not None and json.loads(match.group(1)) == list(PALETTE)


def _closed(sent: Close | None, rcvd: Close | None) -> ConnectionClosedError:
    return ConnectionClosedError(rcvd, sent)


def test_lost_reasons_read_like_tcp_ones() -> None:
    assert isinstance(lost_reason(_closed(None, None)), ConnectionResetError)
    keepalive = lost_reason(_closed(Close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"),
                                    None))
    assert isinstance(keepalive, TimeoutError)
    big = lost_reason(_closed(Close(CloseCode.MESSAGE_TOO_BIG, "frame too big"), None))
    assert isinstance(big, OSError) and big.strerror == "websocket closed: message too big"


class _FakeTransport:
    def __init__(self) -> None:
        self.buffered = 0
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = True


class _FakeSocket:
    """Just what WebOutlet uses of a WebConnection (a websockets ServerConnection)."""

    def __init__(self) -> None:
        self.transport = _FakeTransport()
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.remote_address = ("127.0.0.1", 40000)
        self.gate = asyncio.Event()
        self.gate.set()

    @property
    def state(self) -> Any:
        from websockets.protocol import State
        return State.CLOSED if self.closed else State.OPEN

    async def send(self, message: bytes, text: bool = False) -> None:
        assert text is True
        await self.gate.wait()
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def unsent(self) -> int:
        return self.transport.buffered


def _outlet() -> tuple[WebOutlet, _FakeSocket]:
    ws = _FakeSocket()
    return WebOutlet(cast(WebConnection, ws)), ws


async def test_outlet_sends_each_line_as_one_message_and_counts_what_waits() -> None:
    link, ws = _outlet()
    ws.gate.clear()  # the browser does not read
    pump = asyncio.create_task(link.pump())
    link.write(b'{"type":"a"}\n{"type":"b"}\n')
    link.write(b'{"type":"c"}\n')
    ws.transport.buffered = 100
    assert link.buffered() == 39 + 100  # queued lines plus the socket's buffer
    ws.gate.set()
    link.close()
    assert link.is_closing()
    await asyncio.wait_for(pump, TIMEOUT)
    assert ws.sent == [b'{"type":"a"}', b'{"type":"b"}', b'{"type":"c"}']
    assert ws.closed == (1000, "")
    link.write(b'{"type":"late"}\n')  # after close: dropped, like a closed transport
    assert ws.sent[-1] == b'{"type":"c"}'


async def test_outlet_abort_drops_what_is_queued() -> None:
    link, ws = _outlet()
    ws.gate.clear()
    pump = asyncio.create_task(link.pump())
    link.write(b"1\n2\n")
    link.abort()
    assert ws.transport.aborted and link.buffered() == 0
    ws.gate.set()
    await asyncio.wait_for(pump, TIMEOUT)
    assert len(ws.sent) <= 1  # at most the line already being sent


# ---------------------------------------------------------------------- in process


@pytest.fixture
async def web_port() -> AsyncIterator[int]:
    """A Server with its web gateway on 127.0.0.1, in this event loop."""
    config = ServerConfig(hosts=("127.0.0.1",), port=0, web_port=0, rate=0,
                          max_line_bytes=MAX_LINE, ping_interval=0)
    server = Server(config, ServerLog("warning", io.StringIO()))
    bound = await service.start(server)
    [web] = [address for address in bound if address.startswith("web ")]
    match = re.fullmatch(r"web http://127\.0\.0\.1:(\d+)/", web)
    assert match is not None
    yield int(match.group(1))
    await server.shutdown()


async def _joined(port: int, name: str) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT)
    await ws.send(json.dumps({"type": "connect", "name": name}))
    while (await _recv(ws))["type"] != "connect":
        pass
    return ws


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(message, str), "the server sends text frames only"
    parsed: dict[str, Any] = json.loads(message)
    return parsed


async def test_invalid_utf8_gets_bad_utf8_and_the_connection_stays(web_port: int) -> None:
    ws = await _joined(web_port, "alice")
    await ws.send(b'{"type":"message","message":"\xff"}', text=True)  # a broken text frame
    error = await _recv(ws)
    assert error["type"] == "error" and error["code"] == "bad_utf8"
    await ws.send('{"type":"ping"}')
    assert await _recv(ws) == {"type": "pong"}


async def test_a_binary_frame_is_a_line_like_a_text_frame(web_port: int) -> None:
    ws = await _joined(web_port, "alice")
    await ws.send(b'{"type":"ping"}')  # bytes: a binary frame
    assert await _recv(ws) == {"type": "pong"}
    await ws.send(b"\xc3\x28")
    assert (await _recv(ws))["code"] == "bad_utf8"


async def test_one_message_is_one_json_object(web_port: int) -> None:
    ws = await _joined(web_port, "alice")
    await ws.send('{"type":"ping"}\n')  # a trailing newline, as a TCP client would send
    assert await _recv(ws) == {"type": "pong"}
    await ws.send('{"type":"ping"}\n{"type":"ping"}')  # two lines in one message: not JSON
    assert (await _recv(ws))["code"] == "bad_json"
    await ws.send("[1, 2]")
    assert (await _recv(ws))["code"] == "bad_json"
    await ws.send("   ")  # blank, as on TCP: ignored
    await ws.send('{"type":"launch"}')
    assert (await _recv(ws))["code"] == "unknown_type"


async def test_first_message_is_json_even_if_it_looks_like_a_name(web_port: int) -> None:
    """No text mode on the WebSocket: a bare name is bad JSON, not a login."""
    ws = await connect(f"ws://127.0.0.1:{web_port}/ws", open_timeout=TIMEOUT)
    await ws.send("alice")
    assert (await _recv(ws))["code"] == "bad_json"


async def test_oversized_message_gets_line_too_long_and_the_next_one_works(
    web_port: int,
) -> None:
    ws = await _joined(web_port, "alice")
    await ws.send(json.dumps({"type": "message", "message": "x" * MAX_LINE}))
    error = await _recv(ws)
    assert error["code"] == "line_too_long"
    start, end = '{"type":"message","message":"', '","ref":"r"}'
    exact = start + "y" * (MAX_LINE - len(start) - len(end)) + end  # just at the limit
    await ws.send(exact)
    assert (await _recv(ws))["type"] == "ack"


async def test_message_past_the_library_bound_is_closed_with_1009(web_port: int) -> None:
    ws = await _joined(web_port, "alice")
    await ws.send("z" * (MAX_SIZE_FACTOR * MAX_LINE + 1))
    with pytest.raises(ConnectionClosedError) as caught:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


async def _http_get(port: int, path: str, headers: str = "") -> tuple[str, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)).decode()
    length = re.search(r"Content-Length: (\d+)", head)
    body = await reader.readexactly(int(length.group(1))) if length else b""
    writer.close()
    return head, body


async def test_http_serves_the_page_and_refuses_the_rest(web_port: int) -> None:
    head, body = await _http_get(web_port, "/")
    assert head.startswith("HTTP/1.1 200 ")
    assert "Content-Type: text/html; charset=utf-8" in head
    assert f"Content-Security-Policy: {CSP}" in head
    assert body == load_pages()["/"][1]
    head, body = await _http_get(web_port, "/palette.js?v=1")
    assert head.startswith("HTTP/1.1 200 ") and body == palette_module()
    head, _ = await _http_get(web_port, "/../pyproject.toml")
    assert head.startswith("HTTP/1.1 404 ")
    head, _ = await _http_get(web_port, "/ws")  # a browser tab pointed at the endpoint
    assert head.startswith("HTTP/1.1 426 ")
    ws_headers = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    head, _ = await _http_get(web_port, "/ws", ws_headers + "Origin: http://evil.example\r\n")
    assert head.startswith("HTTP/1.1 403 ")
    head, _ = await _http_get(web_port, "/ws", ws_headers + f"Origin: http://127.0.0.1:{web_port}\r\n")
    assert head.startswith("HTTP/1.1 101 ")
