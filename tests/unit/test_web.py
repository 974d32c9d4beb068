"""The web gateway's adapter (PROTOCOL.txt 13), its pure parts; the same adapter on a
real socket is in tests/e2e/test_web_in_process.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, cast

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close, CloseCode

from chatd.palette import PALETTE
from chatd.web import (
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
