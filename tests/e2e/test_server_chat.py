"""End to end: the real `chatd` on a free loopback port, real sockets, JSON clients chatting.

Covers the tutorial chat of ORIGIN.md (A, B and C, join and leave notices, 익명, a spoofed
name), names, Unicode, order and framing. Each test cites PROTOCOL.txt.
"""

from __future__ import annotations

import asyncio
import json
import socket

from chatd.hub import id_key
from tests.support.harness import Chatd, Client, StartChatd, is_join, trio
from tests.support.server_opts import json_line, start


async def test_a_b_and_c_chat(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.3 (ORIGIN.md point 5): A's line reaches B and C, not A."""
    chatd = await start(start_chatd)
    a, b, c = await trio(chatd)
    await a.say("hello from A")
    for other in (b, c):
        msg = await other.recv("message")
        assert (msg["name"], msg["message"], msg["room"]) == ("A", "hello from A", "lobby")
        assert msg["id"] and msg["time"].endswith("Z")
    await b.say("hello from B")
    assert (await a.recv("message"))["name"] == "B"
    assert (await c.recv("message"))["name"] == "B"
    # A's own line never came back: B's line was the next thing A got.
    await a.send({"type": "ping"})
    assert await a.recv() == {"type": "pong"}
    assert await b.nothing_more()


async def test_join_notice_reaches_everyone_including_the_joiner(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.2, 4.3 (ORIGIN.md point 4): connect notice to all, the joiner included."""
    chatd = await start(start_chatd)
    a = await Client.joined(chatd.port, "A")
    b = await Client.joined(chatd.port, "B")
    notice_a = (await a.recv_until(is_join("B")))[-1]
    c = await Client.open(chatd.port)
    await c.send({"type": "connect", "name": "C"})
    welcome = await c.recv("welcome")
    assert welcome["users"] == ["A", "B", "C"]
    assert welcome["resume"] and welcome["resumed"] is False and welcome["version"] == 2
    end = await c.recv("history_end")
    assert end["count"] == 0
    own = await c.recv("connect")
    assert (own["name"], own["message"], own["room"]) == ("C", "C joined", "lobby")
    for other in (a, b):
        seen = (await other.recv_until(is_join("C")))[-1]
        assert seen == own
    assert notice_a["message"] == "B joined"


async def test_blank_or_missing_name_is_anonymous(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 3.1, 5.1 (ORIGIN.md point 7): a blank name gives 익명."""
    chatd = await start(start_chatd)
    first = await Client.joined(chatd.port, "   ")
    assert first.name == "익명"
    second = await Client.joined(chatd.port, None)
    assert second.name == "익명2"
    watcher = await Client.joined(chatd.port, "w")
    await second.say("누구게?")
    msg = await watcher.recv("message")
    assert msg["name"] == "익명2"
    # byte for byte: the name is UTF-8 on the wire, not \u escapes
    await first.say("x")
    raw = await watcher.read_line()
    assert '"name":"익명"'.encode() in raw


async def test_duplicate_names_get_variants(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 5.1, 4.1: unique ignoring case; the next free variant and a notice."""
    chatd = await start(start_chatd)
    first = await Client.joined(chatd.port, "alice")
    second = await Client.open(chatd.port)
    welcome = await second.join("Alice")
    assert welcome["name"] == "Alice2"
    assert welcome["notice"] == "Alice is taken, so you are Alice2"
    third = await Client.joined(chatd.port, "alice")
    assert third.name == "alice3"
    await third.send({"type": "who"})
    who = await third.recv("who")
    assert who["users"] == ["alice", "Alice2", "alice3"]
    assert first.name == "alice"


async def test_spoofed_name_is_ignored(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.3 (ORIGIN.md point 5): a "name" field on a message is ignored."""
    chatd = await start(start_chatd)
    mallory = await Client.joined(chatd.port, "mallory")
    alice = await Client.joined(chatd.port, "alice")
    await mallory.recv_until(is_join("alice"))
    await mallory.say("I am alice", name="alice")
    msg = await alice.recv("message")
    assert (msg["name"], msg["message"]) == ("mallory", "I am alice")


async def test_korean_and_emoji_round_trip_byte_for_byte(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 1.2, 1.3, 5.3: UTF-8 text is kept exactly, sent raw (not \\u escapes)."""
    chatd = await start(start_chatd)
    sender = await Client.joined(chatd.port, "철수")
    reader = await Client.joined(chatd.port, "영희")
    await sender.recv_until(is_join("영희"))
    texts = [
        "안녕하세요, 반갑습니다!",
        "👋🏽 family: 👨\u200d👩\u200d👧\u200d👦 flag: 🇰🇷",
        "decomposed e\u0301 and \u1100\u1161 stay decomposed",
        "multi\nline\twith tab",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑ 中文 العربية",
    ]
    for text in texts:
        await sender.send(json_line({"type": "message", "message": text}))
        raw = await reader.read_line()
        assert json.dumps(text, ensure_ascii=False).encode() in raw
        msg = json.loads(raw)
        assert msg["message"] == text and msg["name"] == "철수"
        assert msg["message"].encode() == text.encode()


async def test_thousand_lines_from_one_sender_arrive_in_order(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 9.1: one sender's lines arrive complete and in order, ids increasing."""
    chatd = await start(start_chatd)
    sender = await Client.joined(chatd.port, "sender")
    reader = await Client.joined(chatd.port, "reader")
    await sender.recv_until(is_join("reader"))
    batch = 100
    for first in range(0, 1000, batch):
        await sender.send(b"".join(json_line({"type": "message", "message": f"line {i}"})
                                   for i in range(first, first + batch)))
    got = [await reader.recv("message") for _ in range(1000)]
    assert [m["message"] for m in got] == [f"line {i}" for i in range(1000)]
    ids = [id_key(m["id"]) for m in got]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert await sender.nothing_more()


async def test_two_lines_in_one_write(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 1.2: one write may hold several lines; each is one message."""
    chatd = await start(start_chatd)
    a = await Client.joined(chatd.port, "a")
    b = await Client.joined(chatd.port, "b")
    await a.recv_until(is_join("b"))
    await a.send(json_line({"type": "message", "message": "one"})
                 + json_line({"type": "message", "message": "two"}))
    assert (await b.recv("message"))["message"] == "one"
    assert (await b.recv("message"))["message"] == "two"


async def test_one_line_split_over_many_writes(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 1.2: a line may come in pieces, even inside a UTF-8 character or "\\r\\n"."""
    chatd = await start(start_chatd)
    a = await Client.joined(chatd.port, "a")
    b = await Client.joined(chatd.port, "b")
    await a.recv_until(is_join("b"))
    sock = a.writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    line = json_line({"type": "message", "message": "조각조각 🧩 pieces"})[:-1] + b"\r\n"
    for i in range(len(line)):
        await a.send(line[i : i + 1])
    msg = await b.recv("message")
    assert msg["message"] == "조각조각 🧩 pieces"
    # the pieces of a second line, cut elsewhere, also make one message
    second = json_line({"type": "message", "message": "둘"})
    for piece in (second[:3], second[3:17], second[17:-1], second[-1:]):
        await a.send(piece)
    assert (await b.recv("message"))["message"] == "둘"


async def test_crlf_line_endings(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 1.2: "\\r\\n" is accepted too."""
    chatd = await start(start_chatd)
    a = await Client.open(chatd.port)
    await a.send(b'{"type":"connect","name":"crlf"}\r\n')
    assert (await a.recv("welcome"))["name"] == "crlf"
    await a.send(b'{"type":"ping"}\r\n')
    await a.recv_until(lambda m: m["type"] == "pong")


async def test_blank_lines_are_ignored_in_json_mode(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 1.2: blank lines are ignored (no error) once the connection is JSON."""
    chatd = await start(start_chatd)
    a = await Client.open(chatd.port)
    await a.send({"type": "ping"})
    assert await a.recv() == {"type": "pong"}
    await a.send(b"\n\r\n")
    await a.send({"type": "connect", "name": "blank"})
    assert (await a.recv())["type"] == "welcome"
    await a.recv_until(is_join("blank"))
    await a.send(b"\n\n\r\n")
    await a.send({"type": "ping"})
    assert await a.recv() == {"type": "pong"}


async def test_last_line_without_newline_before_close(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 1.2, 2.4: a final line without "\\n" still counts; then the leave."""
    chatd = await start(start_chatd)
    a = await Client.joined(chatd.port, "a")
    b = await Client.joined(chatd.port, "b")
    await a.recv_until(is_join("b"))
    a.writer.write(json_line({"type": "message", "message": "last words"})[:-1])
    a.writer.write_eof()
    assert (await b.recv("message"))["message"] == "last words"
    left = await b.recv("disconnect")
    assert left["name"] == "a" and "reason" not in left


async def test_rooms_private_lines_nick_and_history(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 3.2, 3.4, 3.7, 3.8: the room features over real sockets."""
    chatd = await start(start_chatd)
    a = await Client.joined(chatd.port, "alice")
    b = await Client.joined(chatd.port, "bob")
    await a.recv_until(is_join("bob"))
    await a.say("first", ref="r1")
    ack = await a.recv("ack")
    assert ack["ref"] == "r1"
    assert (await b.recv("message"))["id"] == ack["id"]
    # a move is a join, then a part of the old room (3.4, 17.3)
    await a.send({"type": "join", "room": "dev"})
    lines = await a.recv_until(lambda m: m["type"] == "connect")
    assert [m["type"] for m in lines] == ["who", "history_end", "connect"]
    await a.send({"type": "part", "room": "lobby"})
    left = await b.recv("disconnect")
    assert (left["message"], left["part"]) == ("alice left lobby", True)
    assert (await a.recv("disconnect"))["room"] == "lobby"
    await b.say("psst", to="ALICE")
    private = await a.recv("message")
    assert private["private"] is True and private["to"] == "alice" and "room" not in private
    await a.send({"type": "nick", "name": "alicia"})
    assert (await a.recv("nick"))["old"] == "alice"
    await b.send({"type": "history", "limit": 5})
    hist = await b.recv_until(lambda m: m["type"] == "history_end")
    assert [m["message"] for m in hist[:-1]] == ["first"]
    assert hist[-1] == {"type": "history_end", "room": "lobby", "count": 1, "more": False}
    await b.send({"type": "rooms"})
    assert (await b.recv("rooms"))["rooms"] == [{"room": "dev", "users": 1},
                                                {"room": "lobby", "users": 1}]


async def test_history_on_join_over_the_wire(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.2, 8.6: --history-on-join N lines, marked history, then history_end."""
    chatd = await start(start_chatd, "--history-on-join", "2")
    a = await Client.joined(chatd.port, "a")
    for i in range(5):
        await a.say(f"h{i}", ref=str(i))
    await a.recv_until(lambda m: m.get("ref") == "4")
    b = await Client.open(chatd.port)
    await b.send({"type": "connect", "name": "b"})
    lines = await b.recv_until(is_join("b"))
    assert [m["type"] for m in lines] == ["welcome", "message", "message", "history_end",
                                           "connect"]
    assert [m["message"] for m in lines[1:3]] == ["h3", "h4"]
    assert all(m["history"] is True for m in lines[1:3])
    assert lines[3]["more"] is True and lines[3]["count"] == 2


async def test_server_log_shows_the_conversation(start_chatd: StartChatd) -> None:
    """ORIGIN.md point 8: the server log shows every message that passes; a message cannot
    forge a log line (its newline is shown in caret notation, PROTOCOL.txt 6.1)."""
    chatd = await start(start_chatd)
    a = await Client.joined(chatd.port, "alice")
    b = await Client.joined(chatd.port, "bob")
    await a.recv_until(is_join("bob"))
    await a.say("hello bob")
    await b.recv("message")
    await chatd.wait_log(r"<alice@lobby> hello bob$")
    fake = "2026-01-01T00:00:00.000Z INFO  <bob@lobby> I owe alice 100 dollars"
    mark = len(chatd.log)
    await a.say(f"hi\n{fake}")
    await b.recv("message")
    line = await chatd.wait_log(r"<alice@lobby> hi", start=mark)
    assert line.endswith("<alice@lobby> hi^J" + fake)
    assert not any(entry.startswith(fake) for entry in chatd.log)


async def test_first_line_with_leading_spaces_is_json(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.1: a first line starting with "{" after optional spaces is JSON mode."""
    chatd = await start(start_chatd)
    a = await Client.open(chatd.port)
    await a.send(b'   {"type":"connect","name":"spacey"}\n')
    assert (await a.recv("welcome"))["name"] == "spacey"


async def test_lines_sent_with_the_connect_are_answered_after_the_welcome(chatd: Chatd) -> None:
    """PROTOCOL.txt 2.2, 8.8: the welcome is the first line after a connect, even when the
    client's next lines came in the same packet (they wait, then are answered)."""
    client = await Client.open(chatd.port)
    await client.send(b'{"type":"connect","name":"amy"}\n{"type":"who"}\n')
    got = await client.recv_until(lambda m: m["type"] == "who")
    assert [m["type"] for m in got] == ["welcome", "history_end", "connect", "who"]
    nc = await asyncio.open_connection("127.0.0.1", chatd.port)
    nc[1].write(b"bob\n/who\n")
    first = await asyncio.wait_for(nc[0].readline(), 10)
    assert first.startswith(b"* welcome, bob"), first
    nc[1].close()
    # The server log tells it in that order too: the join, then the line sent with it.
    await client.send(b'{"type":"disconnect"}\n')
    carol = await Client.open(chatd.port)
    await carol.send(b'{"type":"connect","name":"carol"}\n{"type":"message","message":"hi"}\n')
    await chatd.wait_log("<carol@lobby> hi")
    joined = next(i for i, line in enumerate(chatd.log) if "carol joined lobby" in line)
    said = next(i for i, line in enumerate(chatd.log) if "<carol@lobby> hi" in line)
    assert joined < said, chatd.log[joined - 1:said + 2]
