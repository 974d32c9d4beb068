"""History on join, paging, SQLite across restarts, and resume (PROTOCOL.txt 2.2, 3.8, 9, 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.harness import Chatd, Client, StartChatd


def _messages(lines: list[dict[str, Any]]) -> list[str]:
    return [m["message"] for m in lines if m["type"] == "message"]


async def _say_all(client: Client, texts: list[str]) -> None:
    for text in texts:
        await client.say(text, ref=text)
    await client.recv_until(lambda m: m.get("ref") == texts[-1])


async def test_history_on_join_and_paging(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "0", "--history-on-join", "5")
    alice = await Client.joined(server.port, "alice")
    await _say_all(alice, [f"line {i}" for i in range(30)])

    bob = await Client.open(server.port)
    await bob.send({"type": "connect", "name": "bob"})
    got = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert got[0]["type"] == "welcome"
    assert _messages(got) == [f"line {i}" for i in range(25, 30)]
    assert all(m["history"] is True for m in got if m["type"] == "message")
    assert got[-1] == {"type": "history_end", "room": "lobby", "count": 5, "more": True}
    ids = {m["message"]: m["id"] for m in got if m["type"] == "message"}

    await bob.recv("connect")
    await bob.send({"type": "history", "before": ids["line 25"], "limit": 10})
    page = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert _messages(page) == [f"line {i}" for i in range(15, 25)]
    assert page[-1]["more"] is True
    oldest = page[0]["id"]
    await bob.send({"type": "history", "before": oldest, "limit": 100})
    page = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert _messages(page) == [f"line {i}" for i in range(15)]
    assert page[-1]["more"] is False
    await bob.send({"type": "history", "after": page[9]["id"], "limit": 3})
    page = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert _messages(page) == ["line 10", "line 11", "line 12"]
    assert page[-1]["more"] is True
    await bob.send({"type": "history", "after": "not-an-id"})
    assert (await bob.recv("error"))["code"] == "bad_id"


async def test_history_is_bounded(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "0", "--history", "10")
    alice = await Client.joined(server.port, "alice")
    await _say_all(alice, [f"line {i}" for i in range(25)])
    await alice.send({"type": "history", "limit": 100})
    page = await alice.recv_until(lambda m: m["type"] == "history_end")
    assert _messages(page) == [f"line {i}" for i in range(15, 25)]
    assert page[-1]["more"] is False


async def test_history_survives_a_restart_with_history_db(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """PROTOCOL.txt 9.4: acknowledged lines survive a clean shutdown; ids keep increasing."""
    db = str(tmp_path / "history.sqlite")
    first = await start_chatd("--rate", "0", "--history-db", db)
    alice = await Client.joined(first.port, "alice")
    texts = [f"kept {i} 안녕" for i in range(200)]
    await _say_all(alice, texts)  # every line acknowledged
    await first.stop()
    assert first.proc is not None and first.proc.returncode == 0

    second = await start_chatd("--rate", "0", "--history-db", db, "--history-on-join", "100")
    bob = await Client.open(second.port)
    await bob.send({"type": "connect", "name": "bob"})
    got = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert _messages(got) == texts[-100:]
    old_ids = [int(m["id"]) for m in got if m["type"] == "message"]
    await bob.recv("connect")
    await bob.say("after the restart", ref="new")
    ack = await bob.recv("ack")
    assert int(ack["id"]) > max(old_ids)


async def _receive_until(client: Client, text: str) -> tuple[list[dict[str, Any]], str]:
    """Lines up to `text`, and the id of the last one: what a client would remember."""
    got = await client.recv_until(lambda m: m.get("message") == text)
    return got, got[-1]["id"]


async def _resume(server: Chatd, token: str, last_id: str | None,
                  name: str = "rita") -> tuple[Client, dict[str, Any]]:
    client = await Client.open(server.port)
    fields: dict[str, Any] = {"resume": token}
    if last_id is not None:
        fields["last_id"] = last_id
    welcome = await client.join(name, **fields)
    return client, welcome


async def test_resume_after_a_reset_replays_exactly_the_missed_lines(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 10.2: same name, missed lines in order, nothing announced."""
    server = await start_chatd("--rate", "0", "--max-per-ip", "0")
    watcher = await Client.joined(server.port, "watcher")
    sender = await Client.joined(server.port, "sam")
    rita = await Client.joined(server.port, "rita")
    await watcher.recv_until(lambda m: m["type"] == "connect" and m["name"] == "rita")
    await sender.recv_until(lambda m: m["type"] == "connect" and m["name"] == "rita")

    await _say_all(sender, [f"before {i}" for i in range(10)])
    _, last_id = await _receive_until(rita, "before 9")
    rita.reset()
    await server.wait_log("rita lost the connection")
    await _say_all(sender, [f"while away {i}" for i in range(25)])
    await sender.say("private while away", to="rita")

    back, welcome = await _resume(server, rita.resume, last_id)
    assert (welcome["resumed"], welcome["name"], welcome["room"]) == (True, "rita", "lobby")
    got = await back.recv_until(lambda m: m.get("message") == "private while away")
    assert _messages(got) == [f"while away {i}" for i in range(25)] + ["private while away"]
    assert got[-1]["private"] is True
    ids = [int(m["id"]) for m in got]
    assert ids == sorted(ids)
    await sender.say("live again")
    assert (await back.recv("message"))["message"] == "live again"
    seen = await watcher.recv_until(lambda m: m.get("message") == "live again")
    assert [m for m in seen if m["type"] in ("connect", "disconnect")] == []


async def test_resume_before_any_line_was_received_and_twice_in_one_session(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 10.3: no last_id means "since I joined"; the token works again."""
    server = await start_chatd("--rate", "0", "--max-per-ip", "0")
    sender = await Client.joined(server.port, "sam")
    rita = await Client.joined(server.port, "rita")
    await sender.recv_until(lambda m: m["type"] == "connect" and m["name"] == "rita")
    token = rita.resume
    rita.reset()
    await server.wait_log("rita lost the connection")
    await _say_all(sender, ["first gap 0", "first gap 1"])

    back, _ = await _resume(server, token, None)
    got, last_id = await _receive_until(back, "first gap 1")
    assert _messages(got) == ["first gap 0", "first gap 1"]

    back.reset()
    await server.wait_log("rita lost the connection", start=len(server.log) - 1)
    await _say_all(sender, ["second gap"])
    again, welcome = await _resume(server, token, last_id)
    assert welcome["resumed"] is True
    got, _ = await _receive_until(again, "second gap")
    assert _messages(got) == ["second gap"]


async def test_resume_while_the_old_connection_is_still_open(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "0", "--max-per-ip", "0")
    watcher = await Client.joined(server.port, "watcher")
    rita = await Client.joined(server.port, "rita")
    await watcher.recv_until(lambda m: m["type"] == "connect" and m["name"] == "rita")
    replacement, welcome = await _resume(server, rita.resume, None)
    assert welcome["resumed"] is True
    assert await rita.closed() == []  # replaced silently
    await replacement.say("it is me")
    got = await watcher.recv_until(lambda m: m.get("message") == "it is me")
    assert [m["type"] for m in got] == ["message"]


async def test_resume_after_the_grace_period_joins_fresh(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "0", "--max-per-ip", "0", "--resume-grace", "1")
    watcher = await Client.joined(server.port, "watcher")
    rita = await Client.joined(server.port, "rita")
    await watcher.recv_until(lambda m: m["type"] == "connect" and m["name"] == "rita")
    rita.reset()
    left = await watcher.recv("disconnect", timeout=5)
    assert (left["name"], left["reason"]) == ("rita", "connection reset")
    back, welcome = await _resume(server, rita.resume, None)
    assert welcome["resumed"] is False
    assert "could not resume" in welcome["notice"]
    assert welcome["name"] == "rita"
    assert (await watcher.recv("connect"))["name"] == "rita"
    await back.close()


async def test_bad_token_joins_fresh_and_says_why(chatd: Chatd) -> None:
    client, welcome = await _resume(chatd, "made-up.token", "5")
    assert welcome["resumed"] is False
    assert welcome["notice"] == "could not resume: the session is unknown or has expired"
    await client.close()
