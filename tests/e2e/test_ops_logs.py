"""--log-format json and --log-file (docs/operations.md, "Reading the logs")."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.e2e.ops_support import JsonLogChatd
from tests.harness import Client, is_join


async def test_json_logs_parse_line_by_line() -> None:
    chatd = await JsonLogChatd("--log-format", "json", "--rate", "0").start()
    try:
        alice = await Client.joined(chatd.port, "alice")
        await alice.say("hello\u202eworld", ref="1")
        await alice.send(b"{broken\n")
        await alice.recv("ack")
        await alice.recv("error")
        await alice.close()
    finally:
        await chatd.stop()
    records = [json.loads(line) for line in chatd.log]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "event", "message"} <= record.keys(), record
        assert record["time"].endswith("Z")
    connect = next(r for r in records if r["event"] == "connect")
    assert isinstance(connect["conn"], int)
    assert connect["address"].startswith("127.0.0.1:")
    join = next(r for r in records if r["event"] == "join")
    assert (join["user"], join["room"], join["conn"]) == ("alice", "lobby", connect["conn"])
    said = next(r for r in records if r["event"] == "message")
    assert (said["user"], said["room"], said["conn"]) == ("alice", "lobby", connect["conn"])
    assert said["address"] == connect["address"]
    assert "hello" in said["message"]
    assert "\u202e" not in said["message"]  # network text is made visible
    error = next(r for r in records if r["event"] == "connection" and r["level"] == "warning")
    assert error["conn"] == connect["conn"] and "bad_json" in error["message"]
    assert records[-1]["message"] == "bye"


async def test_the_log_file_is_reopened_on_sighup(tmp_path: Path) -> None:
    log = tmp_path / "chatd.log"
    # The lines every level shows (where chatd listens, reloads) go to stderr too.
    chatd = await JsonLogChatd("--log-file", str(log), "--log-format", "json").start()
    try:
        alice = await Client.joined(chatd.port, "alice")
        log.rename(tmp_path / "chatd.log.1")  # what logrotate does
        chatd.signal(signal.SIGHUP)
        await chatd.wait_log("reload: ")
        bob = await Client.joined(chatd.port, "bob")
        await alice.recv_until(is_join("bob"))
        for client in (alice, bob):
            await client.close()
    finally:
        await chatd.stop()
    old = [json.loads(line) for line in (tmp_path / "chatd.log.1").read_text().splitlines()]
    new = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["user"] for r in old if r["event"] == "join"] == ["alice"]
    assert [r["user"] for r in new if r["event"] == "join"] == ["bob"]
    assert any(r["event"] == "reload" for r in new)
