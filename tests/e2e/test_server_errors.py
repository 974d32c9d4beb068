"""End to end: every error code of PROTOCOL.txt section 7 that chatd has today, over real
sockets, and that the connection stays open after each (a later good line works).

Flood control, limits, TLS, password and keepalive errors are tested elsewhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tests.support.harness import TIMEOUT, Client, StartChatd
from tests.support.server_opts import json_line, start


@dataclass(frozen=True)
class Case:
    code: str
    line: bytes
    joined: bool = True  # the offender has joined (as "alice") before the line
    ref: str | None = None  # the error must carry this ref


CASES = [
    Case("bad_utf8", b'{"type":"message","message":"caf\xe9"}\n'),
    Case("bad_utf8", b'{"type":"ping","x":"\xed\xa0\x80"}\n', joined=False),
    Case("bad_json", b"{oops}\n"),
    Case("bad_json", b'{"type":"message","message":"unterminated}\n'),
    Case("bad_json", b"[1, 2, 3]\n"),
    Case("bad_json", b"{" * 5000 + b"\n"),
    Case("unknown_type", b'{"type":"dance"}\n'),
    Case("unknown_type", b'{"type":"welcome"}\n', joined=False),
    Case("bad_field", b'{"type":"message","message":""}\n'),
    Case("bad_field", b'{"type":"message","message":"   ","ref":"c1"}\n', ref="c1"),
    Case("bad_field", b'{"type":"message","message":42}\n'),
    Case("bad_field", b'{"type":"history","limit":0}\n'),
    Case("bad_field", b'{"type":"join"}\n'),
    Case("bad_field", b'{"type":"who","all":"yes"}\n'),
    Case("bad_field", b'{"no":"type"}\n'),
    Case("bad_name", b'{"type":"connect","name":"two words"}\n', joined=False),
    Case("bad_name", b'{"type":"connect","name":"' + b"n" * 33 + b'"}\n', joined=False),
    Case("bad_name", b'{"type":"nick","name":"a\\u001bb"}\n'),
    Case("bad_room", b'{"type":"join","room":"two words"}\n'),
    Case("bad_room", b'{"type":"join","room":"LOBBY"}\n'),
    Case("bad_room", b'{"type":"connect","name":"x","room":"\\u202eevil"}\n', joined=False),
    Case("bad_id", b'{"type":"history","before":"yesterday"}\n'),
    Case("bad_id", b'{"type":"history","after":"-5"}\n'),
    Case("not_joined", b'{"type":"message","message":"hi"}\n', joined=False),
    Case("not_joined", b'{"type":"who"}\n', joined=False),
    Case("already_joined", b'{"type":"connect","name":"again"}\n'),
    Case("name_taken", b'{"type":"nick","name":"BOB"}\n'),
    Case("no_such_user", b'{"type":"message","message":"hi","to":"nobody","ref":"p"}\n',
         ref="p"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code}-{i}" for i, c in enumerate(CASES)])
async def test_error_code_and_connection_stays_open(start_chatd: StartChatd, case: Case) -> None:
    """PROTOCOL.txt 4.10, 7: the offender alone gets {"type":"error","code":...}; the line is
    dropped and the connection stays open."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    alice = await Client.open(chatd.port)
    if case.joined:
        await alice.join("alice")
        await bob.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    else:  # put the connection in JSON mode (PROTOCOL.txt 2.1) without joining
        await alice.send({"type": "ping"})
        assert await alice.recv() == {"type": "pong"}
    await alice.send(case.line)
    error = await alice.recv()
    assert error["type"] == "error", error
    assert error["code"] == case.code
    assert isinstance(error["message"], str) and error["message"]
    assert error.get("ref") == case.ref
    # still open, and the offending line had no other effect
    await alice.send({"type": "ping"})
    assert await alice.recv() == {"type": "pong"}
    if not case.joined:
        await alice.join("alice")
    await alice.say("still here")
    msg = await bob.recv_until(lambda m: m["type"] == "message")
    assert [m["type"] for m in msg] == ["connect"] * (len(msg) - 1) + ["message"]
    assert (msg[-1]["name"], msg[-1]["message"]) == ("alice", "still here")


async def test_error_goes_to_the_offender_only(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 4.10: an error is sent to the offender only."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    alice = await Client.joined(chatd.port, "alice")
    await bob.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await alice.send(b"{oops}\n")
    assert (await alice.recv("error"))["code"] == "bad_json"
    await alice.say("sync")
    assert (await bob.recv())["message"] == "sync"


async def test_line_over_the_limit_then_a_good_line(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 8.1: line_too_long as soon as it passes the limit, the rest is thrown
    away, and the next line is handled normally, even in the same write."""
    chatd = await start(start_chatd, "--max-line-bytes", "1K")
    bob = await Client.joined(chatd.port, "bob")
    alice = await Client.joined(chatd.port, "alice")
    await bob.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    huge = json_line({"type": "message", "message": "x" * 50_000})
    await alice.send(huge + json_line({"type": "message", "message": "after"}))
    error = await alice.recv("error")
    assert error["code"] == "line_too_long"
    assert (await bob.recv("message"))["message"] == "after"
    # exactly at the limit is fine; one byte over is not
    prefix = b'{"type":"message","message":"'
    fits = prefix + b"y" * (1024 - len(prefix) - 2) + b'"}'
    assert len(fits) == 1024
    await alice.send(fits + b"\n")
    assert (await bob.recv("message"))["message"] == "y" * (1024 - len(prefix) - 2)
    await alice.send(prefix + b"y" * (1025 - len(prefix) - 2) + b'"}\n')
    assert (await alice.recv("error"))["code"] == "line_too_long"
    # a long line without its newline yet: the error comes before the newline does
    await alice.send(b'{"type":"message","message":"' + b"z" * 5000)
    assert (await alice.recv("error"))["code"] == "line_too_long"
    await alice.send(b"z" * 100_000 + b'"}\n' + json_line({"type": "ping"}))
    assert await alice.recv() == {"type": "pong"}
    assert await bob.nothing_more()


async def test_line_over_the_limit_in_many_writes_keeps_memory_bounded(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 8.1: the server never holds more than the limit of an unfinished line."""
    chatd = await start(start_chatd)
    alice = await Client.joined(chatd.port, "alice")
    before = chatd.rss_kib()
    await alice.send(b'{"type":"message","message":"')
    chunk = b"w" * (1024 * 1024)
    for _ in range(64):  # 64 MiB of one line
        await alice.send(chunk)
    await alice.send(b'"}\n{"type":"ping"}\n')
    lines = await alice.recv_until(lambda m: m["type"] == "pong", timeout=30)
    assert [m.get("code") for m in lines] == ["line_too_long", None]
    assert chatd.rss_kib() < before + 20 * 1024


@pytest.mark.parametrize("line", [
    b'{"type":"message","message":"x","ref":"\\ud800"}\n',
    b'{"type":"message","message":"x","to":"\\udfff"}\n',
])
async def test_lone_surrogate_in_a_field_keeps_the_connection(
    start_chatd: StartChatd, line: bytes
) -> None:
    """PROTOCOL.txt 5.3, 7: a JSON escape for a lone surrogate in ref or to gets an answer
    (ack or error), and the connection stays open."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    alice = await Client.joined(chatd.port, "alice")
    await bob.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await alice.send(line)
    answer = await alice.recv()
    assert answer["type"] in {"ack", "error"}
    await alice.send({"type": "ping"})
    assert await alice.recv() == {"type": "pong"}


TEXT_CASES = [
    ("unknown_command", b"/dance"),
    ("unknown_command", b"/"),
    ("bad_field", b"/msg bob"),
    ("bad_field", b"/history 0"),
    ("bad_field", b"/join two words"),  # the usage: a room name has no spaces
    ("bad_room", "/join \u202eevil".encode()),
    ("bad_room", b"/join lobby"),
    ("bad_name", b"/nick a\tb"),
    ("name_taken", b"/nick Bob"),
    ("no_such_user", b"/msg nobody hi"),
    ("bad_utf8", b"caf\xe9"),
    ("line_too_long", b"y" * 70_000),
]


@pytest.mark.parametrize(("code", "line"), TEXT_CASES,
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(TEXT_CASES)])
async def test_text_mode_error_and_connection_stays_open(
    start_chatd: StartChatd, code: str, line: bytes
) -> None:
    """PROTOCOL.txt 6.1, 6.2, 7: in text mode an error is the line "! CODE: TEXT", the line is
    dropped and the connection stays open."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", chatd.port, limit=1 << 20), TIMEOUT)
    try:
        writer.write(b"tina\n")
        for _ in range(10):  # welcome, then the own join notice
            got = await asyncio.wait_for(reader.readline(), TIMEOUT)
            assert got, "server closed the connection"
            if got == b"* tina joined\n":
                break
        else:
            raise AssertionError("no join notice")
        writer.write(line + b"\n")
        answer = (await asyncio.wait_for(reader.readline(), TIMEOUT)).decode()
        if line == b"/msg nobody hi":  # the sender's own copy comes first (6.2)
            assert answer == "-> *nobody* hi\n"
            answer = (await asyncio.wait_for(reader.readline(), TIMEOUT)).decode()
        assert answer.startswith(f"! {code}: "), answer
        assert answer.endswith("\n") and answer.count("\n") == 1
        writer.write(b"still here\n")
        msgs = await bob.recv_until(lambda m: m["type"] == "message")
        assert (msgs[-1]["name"], msgs[-1]["message"]) == ("tina", "still here")
        assert all(m["type"] == "connect" for m in msgs[:-1])
    finally:
        writer.close()
