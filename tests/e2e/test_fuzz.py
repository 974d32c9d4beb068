"""Fuzzing a running server with mutated protocol lines while two clients chat.

A seeded generator (reproducible: the seed is in the test) makes thousands of lines:
valid lines of every type, then mutated (cut, bytes flipped, garbage inserted, fields
of the wrong type, huge, deeply nested, invalid UTF-8). Each fuzz line is followed by
a marker line whose answer is unique (an error carrying the marker's ref), so the
answers to one fuzz line are exactly those before it. Each is judged: a line the codec
rejects gets an error; no line gets internal_error (a bug chatd survives, but a bug); the
server closes the connection only after a line PROTOCOL.txt says closes it (a polite
disconnect, 2.4, or an error marked "closes" in 7); and the server never dies.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path
from typing import Any

from chatd import protocol as p
from tests.support.harness import Client, StartChatd

SEED = 20261125
LINES_PER_FUZZER = 1500
FUZZERS = 4

# Every client line type chatd declares (a new one is fuzzed without a change here),
# and a few it does not know.
_TYPES = [line.wire for line in p.CLIENT_LINES] + ["bogus", "", "MESSAGE"]
_VALUES: list[Any] = [None, True, 0, -1, 10**30, 1.5, "", " ", "x", "lobby", "dev", "익명",
                      "a b", "\u202e", "[bold]x[/]", "\x1b[2J", [], {}, [1, [2]], {"a": 1}]


def _valid(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(_TYPES)
    obj: dict[str, Any] = {"type": kind}
    for field in rng.sample(["message", "name", "room", "to", "ref", "before", "after",
                             "limit", "all", "password", "resume", "last_id"], rng.randint(0, 3)):
        obj[field] = rng.choice(_VALUES) if rng.random() < 0.5 else rng.choice(
            ["hi", "hello 😀", "1", "50", "dev", "nobody", "fuzz-ref"])
    if kind == "join":  # keep most fuzzers in the lobby, where the chatters are
        obj.setdefault("room", rng.choice(["lobby", "lobby", "dev"]))
    if kind == "disconnect" and rng.random() < 0.7:
        obj["type"] = "who"  # a few polite leaves are enough
    return obj


def _mutate(rng: random.Random, line: bytes) -> bytes:
    choice = rng.randrange(9)
    if choice == 0 and line:
        return line[: rng.randrange(len(line))]
    if choice == 1 and line:
        i = rng.randrange(len(line))
        return line[:i] + bytes([rng.randrange(256)]) + line[i + 1:]
    if choice == 2:
        i = rng.randrange(len(line) + 1)
        return line[:i] + rng.randbytes(rng.randint(1, 8)) + line[i:]
    if choice == 3:
        return b"[" * rng.choice([10, 1000, 100_000]) + b"]"
    if choice == 4:
        return b'{"type":"message","message":"' + b"A" * rng.choice([100, 70_000]) + b'"}'
    if choice == 5:
        return rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b'"\\ud800"',
                           b'{"type":"message","message":"\\ud800x"}'])
    if choice == 6:
        return json.dumps(rng.choice(_VALUES)).encode()
    if choice == 7:
        return b'{"type":"message","message":"dup","type":"who"}'
    return line


def _fuzz_lines(rng: random.Random, n: int) -> list[bytes]:
    lines = []
    for _ in range(n):
        line = json.dumps(_valid(rng), ensure_ascii=rng.random() < 0.5).encode()
        if rng.random() < 0.6:
            line = _mutate(rng, line)
        lines.append(line.replace(b"\n", b" "))  # one line each
    return lines


def _closing_codes() -> frozenset[str]:
    """The error codes PROTOCOL.txt 7 marks "closes"."""
    text = (Path(__file__).parents[2] / "PROTOCOL.txt").read_text()
    section = text[text.index("\n7. ERROR CODES"):text.index("\n8. LIMITS")]
    return frozenset(re.findall(r"^ {4}([a-z_]+) +closes:", section, re.MULTILINE))


CLOSING_CODES = _closing_codes()


def _parsed(line: bytes) -> p.Event | p.ProtocolError | None:
    """What chatd makes of the line: an event, None (a blank line: ignored), or an error."""
    if not line.strip():
        return None
    try:
        return p.parse_json_line(line)
    except p.ProtocolError as exc:
        return exc


def _judge(line: bytes, answers: list[dict[str, Any]], closed: bool) -> None:
    """The answers to one fuzz line (and whether the server closed after it) are right."""
    parsed = _parsed(line)
    codes = [m["code"] for m in answers if m["type"] == "error"]
    assert "internal_error" not in codes, (line[:200], answers)
    if isinstance(parsed, p.ProtocolError):
        assert codes, (line[:200], answers)
    if closed:
        assert isinstance(parsed, (p.Disconnect, p.Logout)) or CLOSING_CODES & set(codes), (
            "closed after a line that does not close", line[:200], answers)


async def _fuzzer(port: int, n: int, lines: list[bytes]) -> tuple[int, int]:
    """Sends the lines; returns (lines checked, errors seen)."""
    checked = errors = 0
    client = await Client.joined(port, f"fuzz{n}")
    for k, line in enumerate(lines):
        marker = {"type": "message", "message": "marker", "to": "~no-one~", "ref": f"m{k}"}
        await client.send(line + b"\n" + json.dumps(marker).encode() + b"\n")
        answers: list[dict[str, Any]] = []
        closed = False
        try:
            while True:
                msg = await client.recv()
                if msg.get("ref") == f"m{k}":
                    assert msg["code"] == "no_such_user"
                    break
                answers.append(msg)
        except EOFError:
            closed = True
        _judge(line, answers, closed)
        errors += any(m["type"] == "error" for m in answers)
        checked += 1
        if closed:  # a polite disconnect among the fuzz: go on anew
            client = await Client.joined(port, f"fuzz{n}")
    await client.close()
    return checked, errors


async def test_fuzzing_never_kills_the_server_nor_loses_a_line(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "0", "--max-per-ip", "0", "--log-level", "warning",
                               "--resume-grace", "0")
    a = await Client.joined(server.port, "alice")
    b = await Client.joined(server.port, "bob")
    rng = random.Random(SEED)
    batches = [_fuzz_lines(rng, LINES_PER_FUZZER) for _ in range(FUZZERS)]

    async def chat(sender: Client, receiver: Client) -> None:
        for i in range(300):
            await sender.say(f"{sender.name} {i}", ref=str(i))
        expected = [f"{sender.name} {i}" for i in range(300)]
        got = await receiver.recv_until(
            lambda m: m.get("name") == sender.name and m.get("message") == expected[-1],
            timeout=60)
        assert [m["message"] for m in got if m.get("name") == sender.name
                and m["type"] == "message"] == expected

    fuzzing = asyncio.gather(*(_fuzzer(server.port, n, lines) for n, lines in enumerate(batches)))
    chatting = asyncio.gather(chat(a, b), chat(b, a))
    results, _ = await asyncio.wait_for(asyncio.gather(fuzzing, chatting), 120)
    checked = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    assert checked == FUZZERS * LINES_PER_FUZZER
    assert errors > checked // 4  # the mutations really were mostly bad
    assert server.proc is not None and server.proc.returncode is None
    await a.say("still alive")
    await b.recv_until(lambda m: m.get("message") == "still alive")
