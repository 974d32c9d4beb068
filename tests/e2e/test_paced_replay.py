"""A resume's replay is written as the send queue drains (PROTOCOL.txt 8.2, 10.2)."""

from __future__ import annotations

from tests.support.harness import Client, StartChatd

LINES = 1000
SIZE = 60_000


async def test_a_resume_replays_far_more_than_the_send_queue_without_a_cut_off(
    start_chatd: StartChatd,
) -> None:
    """1,000 missed lines of 60 KB (about 60 MB, 230 times the 256 KiB send queue) all
    arrive, in id order, then live lines; the resuming client is not cut off."""
    server = await start_chatd("--rate", "0", "--max-per-ip", "0",
                               "--history-memory", "256M")
    rita = await Client.joined(server.port, "rita")
    sender = await Client.joined(server.port, "sam")
    await rita.recv_until(lambda m: m["type"] == "connect" and m["name"] == "sam")
    await sender.say("before", ref="before")
    got = await rita.recv_until(lambda m: m.get("message") == "before")
    last_id = got[-1]["id"]
    rita.reset()
    await server.wait_log("rita lost the connection")
    for i in range(LINES):
        await sender.say(f"{i:04} " + "x" * SIZE, ref=str(i))
    await sender.recv_until(lambda m: m.get("ref") == str(LINES - 1), timeout=120)

    back = await Client.open(server.port)
    welcome = await back.join("rita", resume=rita.resume, last_id=last_id)
    assert welcome["resumed"] is True
    await sender.say("live")
    got = await back.recv_until(lambda m: m.get("message") == "live", timeout=120)
    messages = [m for m in got if m["type"] == "message"]
    assert [m["message"][:4] for m in messages[:-1]] == [f"{i:04}" for i in range(LINES)]
    assert all(len(m["message"]) == SIZE + 5 for m in messages[:-1])
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(ids)
    assert "send queue" not in "".join(server.log)
