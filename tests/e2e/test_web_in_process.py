"""The web gateway's adapter (PROTOCOL.txt 13) on a real socket: `Server` with its
gateway on 127.0.0.1 in the test's own event loop, talked to with the websockets client:
the frames a browser could send (text, binary, invalid UTF-8, oversized) must get the
protocol's answers, not library errors. (Moved from tests/unit/test_web.py: unit tests
open no socket.)
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError
from websockets.frames import CloseCode

from chatd import service
from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig
from chatd.web import MAX_SIZE_FACTOR
from chatd.webhttp import CSP, load_pages, palette_module

TIMEOUT = 5.0
MAX_LINE = 1024  # small, so oversized messages stay small too


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
