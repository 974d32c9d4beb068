"""Password guessing is throttled per address (PROTOCOL.txt 11.2); real chatd."""

from __future__ import annotations

import json
import re

from tests.support.harness import Chatd, Client, StartChatd


async def _guess(client: Client, password: str) -> dict[str, object]:
    await client.send({"type": "connect", "name": "eve", "password": password})
    error: dict[str, object] = await client.recv("error")
    assert await client.closed() == []
    return error


async def _guesses(server: Chatd, passwords: list[str]) -> list[dict[str, object]]:
    """Wrong passwords from connections all opened before the first is tried, so none is
    turned away at accept: N in a row make the address wait 2^(N-4) s (PROTOCOL.txt 11.2),
    a window wide enough that what follows runs inside it on any machine."""
    clients = [await Client.open(server.port) for _ in passwords]
    for client in clients:  # accepted, before any wrong password
        await client.send({"type": "ping"})
        await client.recv("pong")
    return [await _guess(client, password) for client, password in zip(clients, passwords,
                                                                         strict=True)]


async def test_after_three_wrong_passwords_the_address_must_wait(
    start_chatd: StartChatd,
) -> None:
    server = await start_chatd("--password", "right horse", "--max-per-ip", "0")
    for i in range(3):  # three are free: the next connection may still try
        assert (await _guess(await Client.open(server.port), f"guess{i}"))["code"] == (
            "auth_failed")
    errors = await _guesses(server, [f"guess{i}" for i in range(3, 10)])
    assert {e["code"] for e in errors} == {"auth_failed"}
    await server.wait_log(r"4 wrong passwords in a row from 127\.0\.0\.1: its connections "
                          r"are refused for 1s")
    await server.wait_log(r"10 wrong passwords in a row from 127\.0\.0\.1: its connections "
                          r"are refused for 64s")
    again = await Client.open(server.port)  # refused before any password
    [line] = await again.closed()
    refused = json.loads(line)
    assert refused["code"] == "auth_failed"
    wait = re.fullmatch(r"too many wrong passwords from this address; try again in (\d+)s",
                        refused["message"])
    assert wait is not None and 1 <= int(wait[1]) <= 64, refused
    assert not any("guess" in line for line in server.log)


async def test_a_guessing_flood_is_logged_in_summary(start_chatd: StartChatd) -> None:
    server = await start_chatd("--password", "right horse", "--max-per-ip", "0")
    await _guesses(server, [f"guess{i}" for i in range(10)])  # a wait of 64 s
    for _ in range(30):  # hammering while the address waits: refused, not logged each
        refused = await Client.open(server.port)
        [line] = await refused.closed()
        assert json.loads(line)["code"] == "auth_failed"
    assert sum("refused: too many wrong passwords" in line for line in server.log) == 1
    assert sum("auth failed: wrong password" in line for line in server.log) == 10
