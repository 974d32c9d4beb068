"""End to end under load: a client that never reads (PROTOCOL.txt 8.2) and many concurrent
clients, with the real `chatd`; flood control and connection limits are off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

from tests.support.harness import Client, StartChatd
from tests.support.server_opts import json_line, small_rcvbuf_socket, start

LINES_EACH = 10_000  # two talkers: 20,000 lines in all
ROUND = 100  # lines each talker sends before it reads the other's
# Lines of about 600 bytes: 12 MB for the silent client, far more than the kernel's socket
# buffers hold (tcp_wmem lets a send buffer grow to a few MiB), so the send-queue bound is
# what cuts it off, not the kernel.
PADDING = "." * 500


async def exchange(a: Client, b: Client) -> tuple[list[str], list[str]]:
    """A and B each send LINES_EACH lines at full speed, in rounds of ROUND lines: each sends
    a round, then reads the other's. Each reader stays within one round (about 60 KB) of its
    sender, so a talker is never the one whose queue overflows. Returns what each read."""

    def batch(tag: str, first: int) -> bytes:
        return b"".join(json_line({"type": "message", "message": f"{tag} {i} {PADDING}"})
                        for i in range(first, first + ROUND))

    async def read_round(me: Client, sender: str, got: list[str]) -> None:
        want = len(got) + ROUND
        while len(got) < want:
            msg: dict[str, Any] = json.loads(await me.read_line())
            if msg["type"] == "message":
                assert msg["name"] == sender
                got.append(msg["message"])

    got_a: list[str] = []
    got_b: list[str] = []
    for first in range(0, LINES_EACH, ROUND):
        await asyncio.gather(a.send(batch("a→b", first)), b.send(batch("b→a", first)))
        await asyncio.gather(read_round(a, "talker_b", got_a), read_round(b, "talker_a", got_b))
    return got_a, got_b


async def drain(sock: socket.socket) -> int:
    """Read a socket until the peer closes or resets it; the number of bytes read."""
    loop = asyncio.get_running_loop()
    total = 0
    with contextlib.suppress(ConnectionResetError):
        while data := await loop.sock_recv(sock, 65536):
            total += len(data)
    return total


async def test_silent_client_is_cut_off_while_two_others_exchange_20000_lines(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 8.2: a client that never reads is disconnected once its queue passes
    --max-send-queue, and the log says why; the others get all their lines while it reads
    nothing (the server never waits for one client) and the server's memory stays bounded."""
    chatd = await start(start_chatd, "--max-send-queue", "64K")
    loop = asyncio.get_running_loop()
    a = await Client.joined(chatd.port, "talker_a")
    b = await Client.joined(chatd.port, "talker_b")
    await a.recv_until(lambda m: m["type"] == "connect" and m["name"] == "talker_b")

    silent = small_rcvbuf_socket()
    try:
        await asyncio.wait_for(loop.sock_connect(silent, ("127.0.0.1", chatd.port)), 10)
        await loop.sock_sendall(silent, json_line({"type": "connect", "name": "silent"}))
        await a.recv_until(lambda m: m["type"] == "connect" and m["name"] == "silent")
        await b.recv_until(lambda m: m["type"] == "connect" and m["name"] == "silent")
        baseline = chatd.rss_kib()

        got_a, got_b = await asyncio.wait_for(exchange(a, b), 120)  # a failure deadline
        assert got_a == [f"b→a {i} {PADDING}" for i in range(LINES_EACH)]
        assert got_b == [f"a→b {i} {PADDING}" for i in range(LINES_EACH)]

        port = silent.getsockname()[1]
        await chatd.wait_log(rf"127\.0\.0\.1:{port} disconnected: send queue over")
        assert chatd.rss_kib() < baseline + 50 * 1024
        # cut off: what the kernel had buffered, then the end of the connection
        received = await asyncio.wait_for(drain(silent), 10)
        assert 0 < received < LINES_EACH * len(PADDING), f"got {received} of 12 MB"
        # the talkers are still connected and served
        await a.send({"type": "ping"})
        await a.recv_until(lambda m: m["type"] == "pong")
    finally:
        silent.close()


async def test_500_concurrent_clients_all_receive_one_broadcast(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 2.3, 8.4 (limits off): 500 clients join concurrently and every one of
    them receives one broadcast line."""
    chatd = await start(start_chatd, "--history-on-join", "0")
    n = 500

    async def one(i: int) -> Client:
        return await Client.joined(chatd.port, f"user{i}")

    clients = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 60)
    assert sorted(c.name for c in clients) == sorted(f"user{i}" for i in range(n))
    sender = clients[0]
    await sender.say("hello, everyone", ref="all")
    await sender.recv_until(lambda m: m["type"] == "ack")

    async def gets_it(client: Client) -> dict[str, Any]:
        lines = await client.recv_until(lambda m: m["type"] == "message", timeout=60)
        return lines[-1]

    got = await asyncio.wait_for(asyncio.gather(*(gets_it(c) for c in clients[1:])), 60)
    assert all((m["name"], m["message"]) == ("user0", "hello, everyone") for m in got)
    assert len({m["id"] for m in got}) == 1
    await sender.send({"type": "rooms"})
    rooms = await sender.recv_until(lambda m: m["type"] == "rooms")
    assert rooms[-1]["rooms"] == [{"room": "lobby", "users": n}]
    for client in clients:
        client.writer.close()
