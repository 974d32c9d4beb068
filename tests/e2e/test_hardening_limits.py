"""Bounds that count bytes, not lines (issue 22, items 7 and 8; PROTOCOL.txt 8.3, 8.8),
against a real chatd on loopback."""

from __future__ import annotations

import asyncio
import json
import signal

from tests.conftest import StartChatd
from tests.harness import Client, RedisServer


async def test_the_log_grows_at_most_half_again_what_clients_send(
    start_chatd: StartChatd,
) -> None:
    """Issue 22.8: lines of U+061C (two bytes, once logged as the eight "<U+061C>") from a
    JSON and a text-mode client grow chatd's stderr by at most 1.5 bytes per byte sent,
    and every line still has its log line, saying its size. (14 KB lines: the old log
    line of one, 56 KB, still fits the harness's line reader.)"""
    server = await start_chatd("--rate", "0")
    json_sender = await Client.joined(server.port, "j")
    text_sender = await Client.open(server.port)
    await text_sender.send(b"t\n")
    await server.wait_log(r"t joined lobby")
    start = len(server.log)
    filler = "\u061c" * 7_000
    sent = 0
    for i in range(4):
        line = (json.dumps({"type": "message", "message": f"j{i} {filler}"},
                           ensure_ascii=False) + "\n").encode()
        await json_sender.send(line)
        sent += len(line)
        raw = f"t{i} {filler}\n".encode()
        await text_sender.send(raw)
        sent += len(raw)
    await server.wait_log(r"<t@lobby> t3 ", start=start)
    await server.wait_log(r"<j@lobby> j3 ", start=start)
    logged = server.log[start:]
    growth = sum(len(line.encode()) + 1 for line in logged)
    assert growth <= 1.5 * sent, (growth, sent)
    for who in ("j", "t"):
        for i in range(4):
            [entry] = [x for x in logged if f"<{who}@lobby> {who}{i} " in x]
            assert entry.endswith(f"({len(f'<{who}@lobby> {who}{i} {filler}'.encode()):,} bytes)")


async def test_flood_control_counts_bytes(start_chatd: StartChatd) -> None:
    """Issue 22.7, PROTOCOL.txt 8.3: with the defaults, ten 60,000-byte lines at once (the
    line bucket holds ten) get through only as far as the byte burst (64 KiB, and the line
    that goes into debt); the rest are dropped with rate_limited and their ref, and a
    reader in the room sees only what was acknowledged."""
    server = await start_chatd()  # the defaults a public server runs with
    reader = await Client.joined(server.port, "reader")
    sender = await Client.joined(server.port, "sender")
    started = asyncio.get_running_loop().time()
    filler = "x" * 60_000
    await sender.send(b"".join(
        (json.dumps({"type": "message", "message": f"{i} {filler}", "ref": str(i)}) + "\n")
        .encode() for i in range(10)))
    answers = [await sender.recv("ack", "error") for _ in range(10)]
    elapsed = asyncio.get_running_loop().time() - started
    acked = [a["ref"] for a in answers if a["type"] == "ack"]
    dropped = [a["ref"] for a in answers if a["type"] == "error"]
    assert {a["code"] for a in answers if a["type"] == "error"} == {"rate_limited"}
    assert sorted(acked + dropped, key=int) == [str(i) for i in range(10)]
    # what the byte bucket lets through: its burst, its refill while this ran, one line
    assert len(acked) * 60_000 <= 64 * 1024 + 4096 * elapsed + 65_536
    await sender.say("done", ref="done")
    await sender.recv_until(lambda m: m.get("ref") == "done")  # an error or its ack
    got = await reader.recv_until(lambda m: m.get("name") == "sender" and m["type"] == "message"
                                  and m["message"] in ("done", f"{acked[-1]} {filler}"))
    heard = [m["message"].partition(" ")[0] for m in got if m["type"] == "message"]
    assert heard == acked


async def test_ordinary_chat_never_meets_the_byte_budget(start_chatd: StartChatd) -> None:
    """Issue 22.7, PROTOCOL.txt 8.3: a pasted 20 KB log between short lines, with the
    defaults, is all delivered."""
    server = await start_chatd()
    reader = await Client.joined(server.port, "reader")
    sender = await Client.joined(server.port, "sender")
    lines = ["hi all", "here is the log:", "E" * 20_000, "any idea?", "thanks"]
    for i, line in enumerate(lines):
        await sender.say(line, ref=str(i))
        assert (await sender.recv("ack", "error"))["type"] == "ack"
    got = await reader.recv_until(lambda m: m.get("message") == "thanks")
    assert [m["message"] for m in got if m["type"] == "message"] == lines


async def test_lines_before_the_welcome_are_bounded_in_bytes(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """PROTOCOL.txt 8.8: while a connect waits for the cluster's log (its Redis paused
    here), the lines sent after it wait up to 2 x --max-line-bytes (two 60 KB lines),
    not 100 lines of any size; the rest are dropped at once with rate_limited and their
    ref, and the held ones go on once the connect is decided."""
    server = await start_chatd("--rate", "0", "--redis", redis_server.url)
    assert redis_server.proc is not None
    client = await Client.open(server.port)
    filler = "x" * 60_000
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        await client.send(b"".join(
            [b'{"type":"connect","name":"early"}\n']
            + [(json.dumps({"type": "message", "message": f"{i} {filler}", "ref": str(i)})
                + "\n").encode() for i in range(10)]))
        dropped = [await client.recv("error") for _ in range(8)]
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    assert [(d["code"], d["ref"]) for d in dropped] == [
        ("rate_limited", str(i)) for i in range(2, 10)]
    assert "before the welcome" in dropped[0]["message"]
    got = await client.recv_until(lambda m: m["type"] == "ack" and m["ref"] == "1")
    assert [m["ref"] for m in got if m["type"] == "ack"] == ["0", "1"]
