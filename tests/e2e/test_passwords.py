"""Password guessing is throttled per address (PROTOCOL.txt 11.2); real chatd."""

from __future__ import annotations

import json

from tests.conftest import StartChatd
from tests.harness import Chatd, Client


async def _guess(server: Chatd, password: str) -> dict[str, object]:
    client = await Client.open(server.port)
    await client.send({"type": "connect", "name": "eve", "password": password})
    error: dict[str, object] = await client.recv("error")
    assert await client.closed() == []
    return error


async def test_after_three_wrong_passwords_the_address_must_wait(
    start_chatd: StartChatd,
) -> None:
    server = await start_chatd("--password", "right horse", "--max-per-ip", "0")
    for i in range(4):  # three are free; the fourth starts a wait
        assert (await _guess(server, f"guess{i}"))["code"] == "auth_failed"
    again = await Client.open(server.port)  # at once: refused before any password
    [line] = await again.closed()
    refused = json.loads(line)
    assert refused["code"] == "auth_throttled"
    assert refused["retry_after"] == 1
    assert refused["message"] == "too many wrong passwords from this address; try again in 1s"
    await server.wait_log(r"4 wrong passwords in a row from 127\.0\.0\.1: its connections "
                          r"are refused for 1s")
    assert not any("guess" in line for line in server.log)


async def test_a_guessing_flood_is_logged_in_summary(start_chatd: StartChatd) -> None:
    server = await start_chatd("--password", "right horse", "--max-per-ip", "0")
    for i in range(4):
        await _guess(server, f"guess{i}")
    for _ in range(30):  # hammering while the address waits: refused, not logged each
        refused = await Client.open(server.port)
        [line] = await refused.closed()
        assert json.loads(line)["code"] == "auth_throttled"
    assert sum("refused: too many wrong passwords" in line for line in server.log) == 1
    assert sum("auth failed: wrong password" in line for line in server.log) == 4
