"""The WebSocket endpoint of a real `chatd --web` (PROTOCOL.txt 13), driven by the
websockets client next to TCP clients: same rooms, limits, leaving, resume and shutdown.

`start_web` is shared with test_web_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from websockets.frames import CloseCode
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.support.harness import TIMEOUT, Client
from tests.support.server_opts import small_rcvbuf_socket
from tests.support.web import StartWeb, WebChatd, start_web, ws_join, ws_open, ws_recv, ws_until

# The old import path of helpers now in tests.support.web, kept while branches merge.
__all__ = ["StartWeb", "WebChatd", "start_web", "ws_join", "ws_open"]


async def test_web_and_tcp_users_share_rooms(start_web: StartWeb) -> None:
    server = await start_web("--rate", "0")
    tcp = await Client.joined(server.port, "tcp")
    ws = await ws_open(server)
    await ws.send(json.dumps({"type": "connect", "name": "web"}))
    welcome = await ws_recv(ws)
    assert welcome["type"] == "welcome" and welcome["users"] == ["tcp", "web"]
    await ws_until(ws, lambda m: m["type"] == "connect" and m["name"] == "web")
    await tcp.recv_until(lambda m: m["type"] == "connect" and m["name"] == "web")

    await ws.send(json.dumps({"type": "message", "message": "안녕 from the web", "ref": "1"}))
    ack = await ws_recv(ws)
    assert ack["type"] == "ack" and ack["ref"] == "1"
    line = await tcp.recv("message")
    assert (line["name"], line["message"], line["id"]) == ("web", "안녕 from the web", ack["id"])
    await tcp.say("hello web")
    assert (await ws_recv(ws))["message"] == "hello web"
    await tcp.say("psst", to="web")
    private = await ws_recv(ws)
    assert private["private"] is True and private["to"] == "web"
    await server.wait_log(r"<web@lobby> 안녕 from the web")

    await ws.close()  # a clean close is a leave, announced at once (PROTOCOL.txt 2.4)
    left = await tcp.recv("disconnect")
    assert left["name"] == "web" and "reason" not in left


async def test_a_dropped_websocket_resumes_with_the_missed_lines(start_web: StartWeb) -> None:
    server = await start_web("--rate", "0")
    tcp = await Client.joined(server.port, "tcp")
    ws = await ws_open(server)
    await ws.send(json.dumps({"type": "connect", "name": "web"}))
    token = (await ws_recv(ws))["resume"]
    last = (await ws_until(ws, lambda m: m["type"] == "connect"))[-1]["id"]
    await tcp.recv_until(lambda m: m["type"] == "connect" and m["name"] == "web")

    ws.transport.abort()  # no close frame: a lost connection, held for resume
    await server.wait_log(r"web lost the connection \(connection reset\)")
    await tcp.say("while you were away")
    again = await ws_open(server)
    await again.send(json.dumps({"type": "connect", "resume": token, "last_id": last}))
    welcome = await ws_recv(again)
    assert welcome["resumed"] is True and welcome["name"] == "web"
    assert (await ws_recv(again))["message"] == "while you were away"
    assert await tcp.nothing_more()  # nobody was told of the drop or the return


async def test_origin_is_checked(start_web: StartWeb) -> None:
    server = await start_web("--web-origin", "https://Chat.Example.org/")
    same = await ws_open(server, origin=f"http://127.0.0.1:{server.web_port}")
    allowed = await ws_open(server, origin="https://chat.example.org")
    for origin in ("http://evil.example", "null", f"http://localhost:{server.web_port}"):
        with pytest.raises(InvalidStatus) as refused:
            await ws_open(server, origin=origin)
        assert refused.value.response.status_code == 403
    await server.wait_log(r"refused a WebSocket from Origin 'http://evil\.example'")
    await same.close()
    await allowed.close()


async def test_connection_limits_count_web_and_tcp_together(start_web: StartWeb) -> None:
    """Web and TCP connections from one address count together (PROTOCOL.txt 8.4); on
    the web port the one over the limit is closed at accept, before its HTTP request is
    read, so it gets no answer at all."""
    server = await start_web("--max-per-ip", "2")
    tcp = await Client.joined(server.port, "tcp")
    web = await ws_join(server, "web")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.web_port), TIMEOUT)
    writer.write(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.web_port}\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    try:
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    except ConnectionResetError:
        answer = b""
    assert answer == b""
    await server.wait_log(r"refused: 127\.0\.0\.1 has its maximum of 2 connections")
    writer.close()
    await web.close()
    await tcp.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "web")
    again = await ws_join(server, "again")  # the closed WebSocket gave its slot back
    await again.close()
    await tcp.close()


async def test_flood_control_applies_to_web_messages(start_web: StartWeb) -> None:
    server = await start_web("--burst", "3", "--rate", "0.001")  # no refill to speak of
    ws = await ws_join(server, "web")  # the connect took one token
    for i in range(4):
        await ws.send(json.dumps({"type": "message", "message": f"m{i}", "ref": str(i)}))
    answers = [await ws_recv(ws) for _ in range(4)]
    assert [a["type"] for a in answers[:2]] == ["ack", "ack"]
    assert {a.get("code") for a in answers[2:]} == {"rate_limited"}


async def test_shutdown_tells_web_clients_and_closes_with_going_away(
    start_web: StartWeb,
) -> None:
    server = await start_web()
    ws = await ws_join(server, "web")
    server.signal()
    assert await ws_recv(ws) == {"type": "shutdown", "message": "server shutting down"}
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.close_code == CloseCode.GOING_AWAY
    assert await server.wait() == 0


async def test_a_web_client_that_does_not_read_is_cut_off(start_web: StartWeb) -> None:
    """PROTOCOL.txt 8.2 holds for the WebSocket too: lines queued for a browser that does
    not read count against --max-send-queue."""
    server = await start_web("--rate", "0", "--max-send-queue", "64K", "--history-on-join", "0")
    talker = await Client.joined(server.port, "talker")
    loop = asyncio.get_running_loop()
    silent = small_rcvbuf_socket()
    client = ClientProtocol(parse_uri(server.ws_url))
    try:
        await asyncio.wait_for(loop.sock_connect(silent, ("127.0.0.1", server.web_port)), TIMEOUT)
        client.send_request(client.connect())
        for data in client.data_to_send():
            await loop.sock_sendall(silent, data)
        while client.state is not State.OPEN:  # read the handshake's answer, and no more
            client.receive_data(await asyncio.wait_for(loop.sock_recv(silent, 4096), TIMEOUT))
        client.send_text(json.dumps({"type": "connect", "name": "silent"}).encode())
        for data in client.data_to_send():
            await loop.sock_sendall(silent, data)
        await talker.recv_until(lambda m: m["type"] == "connect" and m["name"] == "silent")
        padding = "." * 1000
        for batch in range(40):  # 8 MB, far past what the kernel buffers hold
            await talker.send(b"".join(
                json.dumps({"type": "message", "message": f"{batch}.{i} {padding}"}).encode()
                + b"\n" for i in range(200)))
        port = silent.getsockname()[1]
        await server.wait_log(rf"127\.0\.0\.1:{port} disconnected: send queue over")
        await talker.send({"type": "ping"})
        await talker.recv_until(lambda m: m["type"] == "pong")  # the talker is still served
    finally:
        silent.close()


async def test_web_port_speaks_tls_with_tls_cert(
    start_web: StartWeb, certificate: tuple[Path, Path],
) -> None:
    """With --tls-cert the page and its WebSocket are served over HTTPS and WSS."""
    cert, key = certificate
    server = await start_web("--tls-cert", str(cert), "--tls-key", str(key))
    await server.wait_log(rf"web https://127\.0\.0\.1:{server.web_port}/")
    context = ssl.create_default_context(cafile=str(cert))
    ws = await connect(f"wss://localhost:{server.web_port}/ws", ssl=context,
                       open_timeout=TIMEOUT)
    await ws.send(json.dumps({"type": "connect", "name": "secure"}))
    assert (await ws_recv(ws))["type"] == "welcome"
    with pytest.raises(InvalidMessage):
        await ws_open(server)  # plain ws:// on the TLS port: no HTTP answer
    await ws.close()


async def test_an_unloaded_page_is_held_briefly_then_leaves(start_web: StartWeb) -> None:
    """PROTOCOL.txt 13.4: the page closes with 4000 when it is unloaded. A reload comes
    back within --web-reload-grace and resumes unannounced; a closed tab leaves when that
    short hold ends, not after the whole resume grace (120 s here), as the original
    tutorial's closed window left at once."""
    server = await start_web("--rate", "0", "--web-reload-grace", "3")
    tcp = await Client.joined(server.port, "tcp")
    ws = await ws_open(server)
    await ws.send(json.dumps({"type": "connect", "name": "web"}))
    token = (await ws_recv(ws))["resume"]
    await tcp.recv_until(lambda m: m["type"] == "connect" and m["name"] == "web")

    await ws.close(4000, "page unloaded")  # a reload: back within the hold
    await server.wait_log(r"web lost the connection .*held 3s for resume")
    again = await ws_open(server)
    await again.send(json.dumps({"type": "connect", "resume": token}))
    assert (await ws_recv(again))["resumed"] is True
    assert await tcp.nothing_more()  # nobody saw the reload

    await again.close(4000, "page unloaded")  # a closed tab: it never comes back
    left = await tcp.recv("disconnect")  # within the harness's 10 s, not after 120 s
    assert left["name"] == "web"
