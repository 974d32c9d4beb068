"""Flood control charges what a request costs, and big answers come in pages
(PROTOCOL.txt 3.8, 8.3); real chatd."""

from __future__ import annotations

from tests.support.harness import Client, StartChatd


async def test_a_big_history_page_is_cut_and_charged(start_chatd: StartChatd) -> None:
    # The default burst of 10, refilled so slowly (a line in 100 s) that the bucket is
    # where the page left it however long this machine takes between two lines; the
    # byte budget (8.3) would drop the posts.
    server = await start_chatd("--max-per-ip", "0", "--rate", "0.01", "--byte-rate", "0")
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


async def test_rooms_and_who_all_answers_are_bounded(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 4.7, 4.8: 250 rooms; the answers list 200 and count the rest."""
    server = await start_chatd("--rate", "0", "--max-per-ip", "0", "--max-clients", "0")
    users = [await Client.joined(server.port, f"u{i:03d}", room=f"room{i:03d}")
             for i in range(250)]
    asker = users[0]
    await asker.send({"type": "rooms"})
    rooms = (await asker.recv_until(lambda m: m["type"] == "rooms"))[-1]
    assert len(rooms["rooms"]) == 200 and rooms["more"] == 50
    names = [r["room"] for r in rooms["rooms"]]
    assert names == sorted(names)
    await asker.send({"type": "who", "all": True})
    who = (await asker.recv_until(lambda m: m["type"] == "who"))[-1]
    assert len(who["rooms"]) == 200 and who["more"] == 50
    assert [r["room"] for r in who["rooms"]] == [f"room{i:03d}" for i in range(200)]


async def test_the_welcome_announces_the_line_limit(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 4.1: so a client can refuse an over-long line before sending it."""
    server = await start_chatd("--max-line-bytes", "1000")
    client = await Client.open(server.port)
    welcome = await client.join("alice")
    assert welcome["max_line_bytes"] == 1000
