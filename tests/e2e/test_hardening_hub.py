"""Hardening of the hub, round 2 (issue 22): bounds in bytes where a line can be 64 KiB,
text mode that does not blow a message up, moderation that follows the person.

Real chatd processes on loopback sockets; small options keep each test fast.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import StartChatd
from tests.harness import Client

BIG = 60_000  # characters of a big private line: about 120 KB as history counts it


async def _acked(client: Client, ref: str) -> None:
    await client.recv_until(lambda m: m.get("ref") == ref)


async def _resume(port: int, name: str, token: str) -> list[dict[str, Any]]:
    """Resume a held session; the private lines it was replayed (the replay comes in one
    write right after the welcome, so a ping's pong marks its end)."""
    client = await Client.open(port)
    await client.send({"type": "connect", "name": name, "resume": token})
    welcome = await client.recv("welcome")
    assert welcome["resumed"] is True, welcome
    await client.send({"type": "ping"})
    got = await client.recv_until(lambda m: m["type"] == "pong")
    await client.close()
    return [m for m in got if m["type"] == "message" and m.get("private")]


async def test_private_lines_kept_for_resume_are_bounded_in_bytes(
        start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 8.6: a held session keeps at most 256 KiB of private lines (the
    newest), and all sessions together at most --private-memory: the oldest on the
    server go first. (It kept the last 100 whatever their size: 6.4 MB a session.)"""
    server = await start_chatd("--rate", "0", "--private-memory", "512K")
    sender = await Client.joined(server.port, "sender")
    held: dict[str, str] = {}
    for name in ("alice", "bob", "carol"):
        client = await Client.joined(server.port, name)
        held[name] = client.resume
        client.reset()
        await server.wait_log(f"{name} lost the connection")
    for name in ("alice", "bob", "carol"):  # five each: 600 KB a session, 1.8 MB in all
        for i in range(5):
            await sender.say(f"{name}{i} " + "x" * BIG, to=name, ref=f"{name}{i}")
        await _acked(sender, f"{name}4")

    replayed = {name: [m["message"].split()[0] for m in await _resume(server.port, name, token)]
                for name, token in held.items()}
    # Per session: two such lines fit 256 KiB. In all: 512 KiB holds four, and the
    # sender keeps its own two newest: carol's newest two are what is left.
    assert replayed == {"alice": [], "bob": [], "carol": ["carol3", "carol4"]}, replayed
    await sender.close()
