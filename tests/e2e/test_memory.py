"""Memory that must come back (PROTOCOL.txt 8.6): rooms nobody is in are forgotten and
history in memory has a total bound. Real chatd; RSS read from /proc."""

from __future__ import annotations

import asyncio
import json

from tests.support.harness import TIMEOUT, Client, StartChatd

MIB = 1024


async def _drain_until(client: Client, marker: str) -> None:
    """Read (and drop) everything up to our marker: the server must never wait for us."""
    while True:
        line = await client.read_line(timeout=60)
        msg = json.loads(line)
        if msg.get("type") == "ack" and msg.get("ref") == marker:
            return


async def test_rooms_made_and_left_do_not_keep_memory(start_chatd: StartChatd) -> None:
    """One address walks through 20,000 new rooms, leaving a 2 KB line in each; when it
    is gone, the server holds about what it held before (before the fix: +100 MB)."""
    server = await start_chatd("--rate", "0", "--history-memory", "8M")
    watcher = await Client.joined(server.port, "watcher")
    base = server.rss_kib()
    walker = await Client.joined(server.port, "walker")
    reader = asyncio.create_task(_drain_until(walker, "end"))
    line = "w" * 2000
    batch = []
    for i in range(20_000):
        # a move through rooms: join one, say a line there, part it (PROTOCOL.txt 17)
        batch.append(json.dumps({"type": "join", "room": f"room{i}"}) + "\n")
        batch.append(json.dumps({"type": "message", "message": line}) + "\n")
        batch.append(json.dumps({"type": "part", "room": f"room{i}"}) + "\n")
        if len(batch) >= 300:
            await walker.send("".join(batch).encode())
            batch.clear()
    await walker.send(b'{"type":"message","message":"bye","ref":"end"}\n')
    await asyncio.wait_for(reader, 90)
    await walker.close()
    await watcher.send({"type": "rooms"})
    rooms = (await watcher.recv_until(lambda m: m["type"] == "rooms"))[-1]
    assert [r["room"] for r in rooms["rooms"]] == ["lobby"]
    grown = server.rss_kib() - base
    assert grown < 40 * MIB, f"grew by {grown} KiB"


async def test_history_in_memory_has_a_total_bound(start_chatd: StartChatd) -> None:
    """Big lines in many rooms: what history keeps in memory stays under the bound."""
    server = await start_chatd("--rate", "0", "--history-memory", "2M", "--max-per-ip", "0")
    clients = [await Client.joined(server.port, f"big{i}", room=f"big{i}") for i in range(5)]
    base = server.rss_kib()
    line = "b" * 60_000
    for n in range(40):
        for client in clients:
            await client.say(line, ref=f"r{n}")
    for client in clients:
        await client.recv_until(lambda m: m["type"] == "ack" and m["ref"] == "r39",
                                timeout=TIMEOUT * 3)
    await clients[0].send({"type": "history", "limit": 100})
    got = await clients[0].recv_until(lambda m: m["type"] == "history_end")
    kept = [m for m in got if m["type"] == "message"]
    assert 1 <= len(kept) < 20  # 40 were sent; 2 MB holds fewer than 20 of them
    assert server.rss_kib() - base < 60 * MIB  # 12 MB of lines went through
