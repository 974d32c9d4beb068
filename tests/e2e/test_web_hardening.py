"""The web port against hostile clients (issue 12.6-9), on a real `chatd --web`:
a ping flood that never reads (PROTOCOL.txt 8.2), connections counted from accept
(8.4: half-open HTTP requests, silent TLS sockets), and DNS rebinding (13.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.support.harness import TIMEOUT, Client
from tests.support.server_opts import small_rcvbuf_socket
from tests.support.web import StartWeb, WebChatd, ws_join, ws_open

FLOOD_SECONDS = 5.0  # how long a flood may run before the test gives up on a drop
RSS_BOUND_KIB = 50 * 1024  # a generous bound: the send queue is 256 KiB by default
UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


@contextlib.asynccontextmanager
async def raw_websocket(server: WebChatd) -> AsyncIterator[tuple[socket.socket, ClientProtocol]]:
    """A WebSocket on a plain socket with a tiny receive buffer, which the test never
    reads after the handshake (websockets' sans-I/O client makes the frames)."""
    loop = asyncio.get_running_loop()
    sock = small_rcvbuf_socket()
    client = ClientProtocol(parse_uri(server.ws_url))
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", server.web_port)), TIMEOUT)
        client.send_request(client.connect())
        for data in client.data_to_send():
            await loop.sock_sendall(sock, data)
        while client.state is not State.OPEN:  # the handshake's answer, and no more
            client.receive_data(await asyncio.wait_for(loop.sock_recv(sock, 4096), TIMEOUT))
        yield sock, client
    finally:
        sock.close()


async def ping_flood(server: WebChatd, sock: socket.socket, client: ClientProtocol
                     ) -> tuple[bool, int]:
    """Sends pings (125-byte payloads), never reading the pongs, for at most
    FLOOD_SECONDS; returns (the server cut the connection, peak RSS growth in KiB)."""
    loop = asyncio.get_running_loop()
    for _ in range(500):
        client.send_ping(b"p" * 125)
    batch = b"".join(client.data_to_send())  # 65 KB of ping frames
    before = peak = server.rss_kib()
    deadline = loop.time() + FLOOD_SECONDS
    while (left := deadline - loop.time()) > 0:
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, batch), left)
        except TimeoutError:
            break
        except OSError:  # reset or broken pipe: the server cut us off
            return True, peak - before
        peak = max(peak, server.rss_kib())
    return False, peak - before


@pytest.mark.parametrize("joined", [False, True], ids=["before-connect", "joined"])
async def test_a_ping_flood_that_never_reads_is_cut_off(start_web: StartWeb,
                                                        joined: bool) -> None:
    """Pongs count against --max-send-queue like chat lines (PROTOCOL.txt 8.2), before
    the connect (here with --password, as in the report) and after it."""
    server = await start_web("--password", "secret") if not joined else await start_web()
    talker = await Client.joined(server.port, "talker", password="secret") if not joined \
        else await Client.joined(server.port, "talker")
    async with raw_websocket(server) as (sock, client):
        port = sock.getsockname()[1]
        if joined:
            client.send_text(json.dumps({"type": "connect", "name": "pinger"}).encode())
            for data in client.data_to_send():
                await asyncio.get_running_loop().sock_sendall(sock, data)
            await talker.recv_until(lambda m: m["type"] == "connect" and m["name"] == "pinger")
        cut, growth = await ping_flood(server, sock, client)
        assert growth < RSS_BOUND_KIB, f"RSS grew by {growth} KiB"
        assert cut, f"not cut off within {FLOOD_SECONDS}s (RSS +{growth} KiB)"
    await server.wait_log(rf"#\d+ 127\.0\.0\.1:{port} disconnected: send queue over 262144 "
                          "bytes")
    await talker.send({"type": "ping"})
    await talker.recv_until(lambda m: m["type"] == "pong")  # the others are still served
    if joined:  # held for resume, as in 8.2
        await server.wait_log(r"pinger lost the connection \(send queue full\)")


async def _is_cut(reader: asyncio.StreamReader) -> bool:
    """True when the server closes the connection (EOF or reset) within TIMEOUT."""
    try:
        return await asyncio.wait_for(reader.read(1), TIMEOUT) == b""
    except ConnectionResetError:
        return True


async def test_half_open_http_requests_count_from_accept(start_web: StartWeb) -> None:
    """Unfinished HTTP requests count against --max-per-ip (PROTOCOL.txt 8.4), together
    with TCP connections, and are closed after --web-request-timeout (13.1)."""
    server = await start_web("--max-per-ip", "4", "--web-request-timeout", "1")
    partial = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.web_port}\r\n".encode()
    held = []
    for _ in range(4):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", server.web_port), TIMEOUT)
        writer.write(partial)  # and never the blank line that ends it
        held.append((reader, writer))
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.web_port), TIMEOUT)
    writer.write(partial)
    assert await _is_cut(reader)  # the fifth is closed at once...
    await server.wait_log(r"refused: 127\.0\.0\.1 has its maximum of 4 connections")
    tcp = await Client.open(server.port)  # ...and a TCP connection is refused too
    assert (await tcp.recv("error"))["code"] == "too_many_connections"
    writer.close()
    for reader, writer in held:  # the request timeout closes the four...
        assert await _is_cut(reader)
        writer.close()
    ws = await ws_join(server, "web")  # ...and gives their slots back
    await ws.close()


async def test_silent_tls_sockets_count_from_accept(start_web: StartWeb,
                                                    certificate: tuple[Path, Path]) -> None:
    """With --tls-cert, a web connection is counted before its TLS handshake, which has
    --tls-handshake-timeout seconds (PROTOCOL.txt 8.4, 11.1)."""
    cert, key = certificate
    server = await start_web("--tls-cert", str(cert), "--tls-key", str(key),
                             "--max-per-ip", "3", "--tls-handshake-timeout", "1")
    silent = [await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.web_port),
                                     TIMEOUT) for _ in range(3)]
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.web_port), TIMEOUT)
    assert await _is_cut(reader)  # over the limit: closed before any TLS work
    await server.wait_log(r"refused: 127\.0\.0\.1 has its maximum of 3 connections")
    writer.close()
    for reader, writer in silent:
        assert await _is_cut(reader)
        writer.close()
    await server.wait_log(r"web: 127\.0\.0\.1:\d+ TLS handshake failed: timed out")
    context = ssl.create_default_context(cafile=str(cert))
    for _ in range(4):  # the slots came back, and a finished handshake gives its own back
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", server.web_port, ssl=context, server_hostname="localhost"), TIMEOUT)
        writer.write(f"GET / HTTP/1.1\r\nHost: localhost:{server.web_port}\r\n\r\n".encode())
        page = await asyncio.wait_for(reader.read(), TIMEOUT)  # up to the server's close
        assert page.startswith(b"HTTP/1.1 200 ")
        writer.close()


async def _http(server: WebChatd, path: str, host: str, headers: str = "") -> tuple[str, str]:
    """(status line and headers, body) of one raw request, Host as given."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.web_port), TIMEOUT)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)).decode()
        length = [line for line in head.split("\r\n") if line.startswith("Content-Length: ")]
        body = await asyncio.wait_for(reader.readexactly(int(length[0].split()[1])), TIMEOUT) \
            if length else b""
        return head, body.decode()
    finally:
        writer.close()


async def test_dns_rebinding_is_refused(start_web: StartWeb) -> None:
    """A Host that is not the server's name gets 403 (PROTOCOL.txt 13.6), for the page
    and the WebSocket alike, even with a matching Origin."""
    server = await start_web("--web-host", "Chat.Example.ORG")
    port = server.web_port
    evil = f"rebind.attacker.example:{port}"
    for path, headers in (("/", ""), ("/ws", UPGRADE + f"Origin: http://{evil}\r\n")):
        head, body = await _http(server, path, evil, headers)
        assert head.startswith("HTTP/1.1 403 "), head
        assert "--web-host rebind.attacker.example" in body
    await server.wait_log(r"refused: Host 'rebind\.attacker\.example:\d+' is not a name of "
                          r"this server \(allow it with --web-host\)")
    for host in (f"127.0.0.1:{port}", f"[::1]:{port}", f"localhost:{port}", "localhost",
                 f"app.localhost:{port}", f"chat.example.org:{port}", "chat.example.org."):
        head, _ = await _http(server, "/", host)
        assert head.startswith("HTTP/1.1 200 "), (host, head)
    head, _ = await _http(server, "/ws", f"chat.example.org:{port}",
                          UPGRADE + f"Origin: https://chat.example.org:{port}\r\n")
    assert head.startswith("HTTP/1.1 101 "), head


async def test_page_loads_do_not_use_up_the_connect_throttle(start_web: StartWeb) -> None:
    """A page load is several short connections; only WebSockets take one of the
    address's --connect-throttle new connections (PROTOCOL.txt 8.4), at the upgrade."""
    server = await start_web("--connect-throttle", "3")
    for _ in range(3):  # 21 page requests: far past the throttle
        for path in ("/", "/app.js", "/session.js", "/view.js", "/colour.js", "/palette.js",
                     "/style.css"):
            head, _ = await _http(server, path, f"127.0.0.1:{server.web_port}")
            assert head.startswith("HTTP/1.1 200 "), (path, head)
    for name in ("a", "b", "c"):
        ws = await ws_join(server, name)
        await ws.close()
    with pytest.raises(InvalidStatus) as refused:
        await ws_open(server)
    assert refused.value.response.status_code == 429
    assert b"too_many_connections" in refused.value.response.body
    await server.wait_log(r"web: 127\.0\.0\.1:\d+ refused: too many new connections from "
                          r"127\.0\.0\.1 in 60s")
