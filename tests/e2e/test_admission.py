"""Who may connect (PROTOCOL.txt 8.4): held sessions count, new connections per address
are throttled, IPv6 addresses count per prefix. Real chatd, real sockets."""

from __future__ import annotations

import json
import re

from tests.support.harness import Client, StartChatd


async def test_held_sessions_count_and_give_their_slot_to_newcomers(
    start_chatd: StartChatd,
) -> None:
    """Connect, join, reset, repeat: held sessions no longer pile up in the room."""
    server = await start_chatd("--rate", "0", "--max-per-ip", "3", "--resume-grace", "120")
    watcher = await Client.joined(server.port, "watcher")
    for i in range(6):
        ghost = await Client.joined(server.port, f"ghost{i}")
        ghost.reset()
        await server.wait_log(f"ghost{i} lost the connection")
    await watcher.send({"type": "who"})
    who = await watcher.recv_until(lambda m: m["type"] == "who")
    users = who[-1]["users"]
    assert len(users) <= 3 and "watcher" in users and "ghost5" in users
    left = [m for m in who if m["type"] == "disconnect"]
    assert left and all(m["reason"] == "replaced by a newer connection from the same address"
                        for m in left)
    await server.wait_log(r"takes the slot of held session")


async def test_new_connections_from_one_address_are_throttled(start_chatd: StartChatd) -> None:
    server = await start_chatd("--connect-throttle", "3", "--connect-window", "60")
    for i in range(3):
        client = await Client.joined(server.port, f"u{i}")
        await client.close()
    late = await Client.open(server.port)
    lines = await late.closed()
    assert len(lines) == 1
    error = json.loads(lines[0])
    assert error["code"] == "too_many_connections"
    assert "too many new connections from 127.0.0.1 in 60s" in error["message"]
    await server.wait_log("refused: too many new connections")


async def test_ipv6_addresses_are_counted_per_prefix(start_chatd: StartChatd) -> None:
    server = await start_chatd("--max-per-ip", "2", host="::1")
    first = await Client.open(server.port, host="::1")
    second = await Client.open(server.port, host="::1")
    third = await Client.open(server.port, host="::1")
    [line] = await third.closed()
    assert json.loads(line)["message"] == "::/64 has its maximum of 2 connections"
    await first.join("v6")
    await second.join("v6b")
    assert re.search(r"#\d+ \[::1\]:\d+ connected", "\n".join(server.log))
