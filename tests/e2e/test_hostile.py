"""Garbage, slow and broken clients, churn and crowds: the others must not notice.

Memory is read from /proc (chatd.rss_kib), descriptors from /proc/PID/fd.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import resource
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Chatd, Client, StartChatd

NO_LIMITS = ("--rate", "0", "--max-per-ip", "0", "--max-clients", "0")
MIB = 1024


async def _chat_works(a: Client, b: Client, text: str) -> None:
    await a.say(text)
    await b.recv_until(lambda m: m.get("message") == text)


async def _pair(server: Chatd) -> tuple[Client, Client]:
    a = await Client.joined(server.port, "alice")
    b = await Client.joined(server.port, "bob")
    await a.recv_until(lambda m: m["type"] == "connect" and m["name"] == "bob")
    return a, b


async def test_100_mb_without_a_newline_keeps_memory_bounded(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 8.1: the server never holds more than the limit of an unfinished line."""
    server = await start_chatd(*NO_LIMITS)
    a, b = await _pair(server)
    base = server.rss_kib()
    garbage = await Client.open(server.port)
    chunk = bytes(range(32, 127)) * 11000  # ~1 MB, no newline
    sent = 0
    while sent < 100 * 1024 * 1024:
        await garbage.send(chunk)
        sent += len(chunk)
    await garbage.send(b"\n{\"type\":\"ping\"}\n")
    error = await garbage.recv("error")
    assert error["code"] == "line_too_long"
    await garbage.recv("pong")
    assert server.rss_kib() - base < 20 * MIB
    await _chat_works(a, b, "still here")


async def test_slowloris_and_connect_and_sit_are_closed_others_unaffected(
    start_chatd: StartChatd,
) -> None:
    server = await start_chatd(*NO_LIMITS, "--registration-timeout", "1")
    a, b = await _pair(server)
    base = server.rss_kib()
    sitter = await Client.open(server.port)
    slow = await Client.open(server.port)

    async def drip() -> None:
        """A connect line that never ends: a byte every 0.1 s for as long as it is let."""
        with_newline_never = b'{"type":"connect","name":"slowloris-but-never-finishing"'
        with contextlib.suppress(ConnectionError):  # until the server cuts it off
            for byte in itertools.chain(with_newline_never, itertools.repeat(ord(" "))):
                await slow.send(bytes([byte]))
                await asyncio.sleep(0.1)  # the pace of the attack, not a synchronisation

    dripping = asyncio.create_task(drip())
    for i in range(5):
        await _chat_works(a, b, f"during the drip {i}")
    for client in (sitter, slow):  # the drip never ends: only the timeout ends it
        [line] = await client.closed()
        assert json.loads(line)["code"] == "registration_timeout"
    dripping.cancel()
    await _chat_works(b, a, "after")
    assert server.rss_kib() - base < 10 * MIB


async def test_half_close_delivers_and_leaves(start_chatd: StartChatd) -> None:
    """A client that sends, then shuts its write side: lines delivered, leave announced."""
    server = await start_chatd(*NO_LIMITS)
    watcher = await Client.joined(server.port, "watcher")
    base = server.rss_kib()
    half = await Client.open(server.port)
    await half.send(b'{"type":"connect","name":"half"}\n{"type":"message","message":"bye now"}')
    half.writer.write_eof()  # the last line has no newline: it still counts
    got = await watcher.recv_until(lambda m: m["type"] == "disconnect")
    assert [m.get("message") for m in got if m["type"] == "message"] == ["bye now"]
    assert got[-1]["name"] == "half"
    lines = [json.loads(line) for line in await half.closed()]
    assert lines[0]["type"] == "welcome"
    assert server.rss_kib() - base < 10 * MIB


async def test_reset_mid_line(start_chatd: StartChatd) -> None:
    server = await start_chatd(*NO_LIMITS, "--resume-grace", "0")
    a, b = await _pair(server)
    base = server.rss_kib()
    broken = await Client.joined(server.port, "broken")
    await broken.send(b'{"type":"message","message":"never fini' + b"x" * 60_000)
    broken.reset()
    got = await a.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "broken")
    assert not [m for m in got if m["type"] == "message"]
    await _chat_works(a, b, "fine")
    assert server.rss_kib() - base < 10 * MIB


async def test_churn_loses_nothing_and_leaks_no_descriptor(start_chatd: StartChatd) -> None:
    """200 clients come and go for 10 s while two chat: every join has its leave."""
    server = await start_chatd(*NO_LIMITS, "--resume-grace", "0", "--log-level", "warning")
    a, b = await _pair(server)
    fds_before = server.fd_count()
    watcher = await Client.joined(server.port, "watcher")
    deadline = time.monotonic() + 10

    async def churner(n: int) -> int:
        rounds = 0
        while time.monotonic() < deadline:
            client = await Client.joined(server.port, f"churn{n}")
            if rounds % 3 == 0:
                await client.say("passing through")
            if rounds % 2:
                client.reset()
            else:
                await client.close()
            rounds += 1
        return rounds

    async def chatter(sender: Client, receiver: Client, tag: str) -> None:
        i = 0
        while time.monotonic() < deadline and i < 2000:
            await sender.say(f"{tag} {i}", ref=f"{tag}{i}")
            i += 1
            await asyncio.sleep(0.004)  # a brisk human pace, not a synchronisation
        await sender.say(f"{tag} end")
        got = await receiver.recv_until(lambda m: m.get("message") == f"{tag} end", timeout=20)
        mine = [m["message"] for m in got if m.get("name") == sender.name
                and m["type"] == "message"]
        assert mine == [f"{tag} {k}" for k in range(i)] + [f"{tag} end"]

    async def count_presence() -> tuple[int, int]:
        joins = leaves = 0
        while True:
            msg = await watcher.recv(timeout=20)
            if msg["type"] == "connect" and msg["name"].startswith("churn"):
                joins += 1
            elif msg["type"] == "disconnect" and msg["name"].startswith("churn"):
                leaves += 1
                if time.monotonic() > deadline and leaves == joins == expected:
                    return joins, leaves

    churners = asyncio.gather(*(churner(n) for n in range(200)))
    chatting = asyncio.gather(chatter(a, b, "a"), chatter(b, a, "b"))
    rounds = await churners
    expected = sum(rounds)
    joins, leaves = await asyncio.wait_for(count_presence(), 30)
    await chatting
    assert joins == leaves == expected > 200
    assert server.fd_count() == fds_before + 1  # the watcher


@pytest.fixture
def descriptors_for_a_crowd() -> Iterator[None]:
    """Room for 2000 sockets in this process (and in chatd, which inherits the limit);
    the limit is put back after the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("descriptors_for_a_crowd")
async def test_2000_connections_receive_a_broadcast(start_chatd: StartChatd) -> None:
    server = await start_chatd(*NO_LIMITS, "--log-level", "warning", "--history-on-join", "0")
    # Raw sockets, each read from the start: the crowd's join notices (~N^2/2) are
    # drained as they come and only scanned for the member's own notice, then the broadcast.
    loop = asyncio.get_running_loop()
    socks: list[socket.socket] = []
    everyone_seated = asyncio.Event()
    seated = 0

    async def member(i: int) -> None:
        nonlocal seated
        sock = socket.socket()
        socks.append(sock)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        await loop.sock_sendall(sock, b'{"type":"connect","name":"crowd%d"}\n' % i)
        buf = b""
        for needle in (b'"message":"crowd%d joined"' % i, b'"message":"hello crowd"'):
            while needle not in buf:
                data = await loop.sock_recv(sock, 1 << 20)
                assert data, "closed"
                buf = buf[-len(needle):] + data
            if seated < 2000:
                seated += 1
                if seated == 2000:
                    everyone_seated.set()

    try:
        members = [asyncio.create_task(member(i)) for i in range(2000)]
        await asyncio.wait_for(everyone_seated.wait(), 60)
        speaker = await Client.joined(server.port, "speaker")
        await speaker.say("hello crowd")
        await asyncio.wait_for(asyncio.gather(*members), 60)
    finally:
        for sock in socks:
            sock.close()


async def test_shutdown_under_load_tells_everyone_and_keeps_every_acknowledged_line(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """SIGTERM while senders are busy: every client gets the shutdown notice, and every
    line that was acknowledged is in the history after a restart (PROTOCOL.txt 2.5, 9.4)."""
    db = str(tmp_path / "history.sqlite")
    server = await start_chatd(*NO_LIMITS, "--history-db", db, "--log-level", "warning",
                               "--history", "100000")
    senders = [await Client.joined(server.port, f"sender{i}") for i in range(4)]
    readers = [await Client.joined(server.port, f"reader{i}") for i in range(4)]
    acked: set[str] = set()
    stop = asyncio.Event()
    busy = asyncio.Event()  # set once 2,000 lines were acknowledged

    async def send(client: Client) -> None:
        i = 0
        while not stop.is_set() and i < 20_000:
            await client.say(f"{client.name} {i}", ref=f"{client.name} {i}")
            i += 1
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the readers run too

    async def collect(client: Client) -> None:
        async for raw in client.reader:
            msg = json.loads(raw)
            if msg["type"] == "ack":
                acked.add(msg["ref"])
                if len(acked) >= 2000:
                    busy.set()
            if msg["type"] == "shutdown":
                return
        raise AssertionError(f"{client.name}: closed without a shutdown notice")

    async def drain_until_shutdown(client: Client) -> None:
        async for raw in client.reader:
            if b'"type":"shutdown"' in raw:
                return
        raise AssertionError(f"{client.name}: closed without a shutdown notice")

    sending = [asyncio.create_task(send(c)) for c in senders]
    collecting = [asyncio.create_task(collect(c)) for c in senders]
    draining = [asyncio.create_task(drain_until_shutdown(c)) for c in readers]
    await asyncio.wait_for(busy.wait(), 20)  # busy for real before the signal
    server.signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*collecting, *draining), 20)
    stop.set()
    for task in sending:
        task.cancel()
    assert await server.wait() == 0

    again = await start_chatd("--rate", "0", "--history-db", db, "--history", "100000")
    client = await Client.joined(again.port, "auditor")
    kept: set[str] = set()
    before: str | None = None
    while True:
        ask: dict[str, object] = {"type": "history", "limit": 100}
        if before is not None:
            ask["before"] = before
        await client.send(ask)
        page = await client.recv_until(lambda m: m["type"] == "history_end")
        lines = [m for m in page if m["type"] == "message"]
        kept |= {m["message"] for m in lines}
        if not page[-1]["more"] or not lines:
            break
        before = lines[0]["id"]
    assert acked <= kept, f"{len(acked - kept)} acknowledged lines lost"
