"""Flood control charges what a request costs, and big answers come in pages
(PROTOCOL.txt 3.8, 8.3); real chatd at the default rate."""

from __future__ import annotations

from tests.conftest import StartChatd
from tests.harness import Client


async def test_a_big_history_page_is_cut_and_charged(start_chatd: StartChatd) -> None:
    server = await start_chatd("--max-per-ip", "0")  # default flood control: 2/s, burst 10
    posters = [await Client.joined(server.port, f"poster{i}") for i in range(5)]
    for n in range(4):
        for poster in posters:
            await poster.say(f"{n}" + "p" * 60_000, ref=f"r{n}")
    for poster in posters:
        await poster.recv_until(lambda m: m["type"] == "ack" and m["ref"] == "r3")
    reader = await Client.joined(server.port, "reader")
    await reader.send({"type": "history", "limit": 100})
    got = await reader.recv_until(lambda m: m["type"] == "history_end")
    page = [m for m in got if m["type"] == "message" and m.get("history")]
    end = got[-1]
    assert 1 <= len(page) <= 5 and end["more"] is True  # 20 lines did not fit in a page
    assert page[-1]["message"].startswith("3")  # the newest lines come first
    await reader.send({"type": "who"})  # the page cost more than the bucket held
    error = await reader.recv_until(lambda m: m["type"] in ("error", "who"))
    assert error[-1]["type"] == "error" and error[-1]["code"] == "rate_limited"
