"""Moderation against real chatd processes (PROTOCOL.txt 15): two operators, a troll and
bystanders, over JSON and nc; a restart with --history-db; a two-node cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.harness import LISTENING, Chatd, Client, RedisServer, StartChatd, is_join
from tests.support.nc import Nc

OPERS = {"CHATD_OPERS": "alice:pw-of-alice,dora:pw-of-dora"}
SECRETS = ("pw-of-alice", "pw-of-dora", "guess-")


def _no_password_in(server: Chatd) -> None:
    """PROTOCOL.txt 15.7: the log never holds an operator password, right or wrong."""
    for line in server.log:
        assert not any(secret in line for secret in SECRETS), line


async def _logged(server: Chatd, text: str) -> None:
    await server.wait_log(re.escape(text))


async def _oper(client: Client, name: str = "alice", password: str = "pw-of-alice") -> None:
    await client.send({"type": "oper", "name": name, "password": password})
    await client.recv_until(lambda m: m["type"] == "oper" and m["name"] == client.name)


async def _nc_join(port: int, name: str) -> Nc:
    nc = await Nc.open(port)
    await nc.send(name)
    await nc.until(lambda line: line.startswith(f"* {name} joined"))
    return nc


async def test_operators_log_in_over_json_and_nc_and_guessing_is_throttled(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 15.1: operators from CHATD_OPERS; marked in who; /help lists their
    commands; wrong passwords get oper_failed, then the address must wait; nothing of a
    password reaches the log."""
    server = await start_chatd("--rate", "0", env=OPERS)
    alice = await Client.joined(server.port, "alice")
    dora = await _nc_join(server.port, "dora")
    await alice.recv_until(is_join("dora"))
    await _oper(alice)
    await dora.until("* alice is now an operator")
    await dora.send("/oper dora pw-of-dora")
    await dora.until("* dora is now an operator")
    await alice.recv_until(lambda m: m["type"] == "oper" and m["name"] == "dora")
    await dora.send("/who")
    await dora.until("* lobby: @alice, @dora")
    await alice.send({"type": "who"})
    who = await alice.recv("who")
    assert who["opers"] == ["alice", "dora"]
    await dora.send("/help")
    helped = await dora.until(lambda line: line.startswith("* /topic TEXT"))
    assert any(line.startswith("* /ban NAME [TIME] [REASON]") for line in helped)

    guesser = await Client.joined(server.port, "guesser")
    await guesser.send({"type": "kick", "name": "alice"})
    assert (await guesser.recv("error"))["code"] == "not_operator"
    waits = []
    for i in range(12):  # 3 free tries, then the address waits 1 s, 2 s, ...
        await guesser.send({"type": "oper", "name": "alice", "password": f"guess-{i}"})
        error = await guesser.recv("error")
        assert error["code"] in ("oper_failed", "oper_throttled")
        if error["code"] == "oper_throttled":
            assert type(error["retry_after"]) is int and error["retry_after"] >= 1
            waits.append(error["message"])
            break
    assert waits and waits[0].startswith("too many wrong operator passwords from this address")
    await _logged(server, "audit: wrong operator name or password (4 in a row from 127.0.0.1)")
    _no_password_in(server)
    await guesser.send({"type": "ping"})  # the connection stays
    await guesser.recv("pong")


async def test_kick_mute_and_topic_with_a_troll_and_bystanders(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 15.2, 15.4, 15.5, 15.7 over JSON and nc; the audit lines are logged
    even with --quiet."""
    server = await start_chatd("--rate", "0", "--quiet", "--oper", "alice:pw-of-alice",
                               env=OPERS)
    alice = await Client.joined(server.port, "alice")
    troll = await Client.joined(server.port, "troll")
    bob = await Client.joined(server.port, "bob")
    dora = await _nc_join(server.port, "dora")
    for client in (alice, troll, bob):
        await client.recv_until(is_join("dora"))
    await _oper(alice)
    await dora.send("/oper dora pw-of-dora")
    await dora.until("* dora is now an operator")
    for client in (alice, troll, bob):
        await client.recv_until(lambda m: m["type"] == "oper" and m["name"] == "dora")

    # Topic: set over nc, seen by JSON users, in a later welcome, asked by anyone.
    await dora.send("/topic no insults please")
    await dora.until("* dora set the topic: no insults please")
    topic = await bob.recv("topic")
    assert topic["topic"] == "no insults please" and topic["name"] == "dora"
    late = await Client.open(server.port)
    assert (await late.join("late"))["topic"] == "no insults please"
    await troll.send({"type": "topic", "topic": "trolls rule"})
    assert (await troll.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == "not_operator"

    # Mute: the troll's line goes nowhere; the bystanders' next line is what they see.
    await alice.send({"type": "mute", "name": "troll", "reason": "calm down"})
    assert (await alice.recv_until(lambda m: m["type"] == "notice"))[-1]["message"] == \
        "troll is muted in lobby"
    notice = await troll.recv_until(lambda m: m["type"] == "notice")
    assert notice[-1]["message"] == "you were muted in lobby by alice (calm down)"
    await troll.say("you are all idiots", ref="t1")
    error = await troll.recv("error")
    assert (error["code"], error["ref"]) == ("muted", "t1")
    await alice.say("after the mute")
    seen = await bob.recv_until(lambda m: m.get("message") == "after the mute")
    assert not any(m.get("name") == "troll" and m["type"] == "message" for m in seen)
    await dora.until("<alice> after the mute")
    assert not any("idiots" in line for line in dora.seen)

    # Kick from the server, with a reason; the session cannot be resumed.
    token = troll.resume
    await dora.send("/kick troll spam")
    left = (await bob.recv_until(lambda m: m["type"] == "disconnect"))[-1]
    assert left["message"] == "troll was removed by dora (spam)"
    await dora.until("* troll was removed by dora (spam)")
    await dora.until("* troll was removed from the server")
    rest = await troll.closed()
    assert b'"code":"kicked"' in rest[-1] and b"removed from the server by dora (spam)" in rest[-1]
    back = await Client.open(server.port)
    welcome = await back.join("troll", resume=token)
    assert welcome["resumed"] is False and "could not resume" in welcome["notice"]

    # Kick from a room: dev sees why, the user lands in lobby with its who and topic.
    # (a move to dev: join, then part lobby, 17.2, 17.3; alice names dev, 17.12)
    await back.send({"type": "join", "room": "dev"})
    await back.recv_until(lambda m: m["type"] == "history_end")
    await back.send({"type": "part", "room": "lobby"})
    await back.recv_until(lambda m: m["type"] == "disconnect")
    await alice.send({"type": "kick", "name": "troll", "from": "room", "room": "dev",
                      "reason": "off topic"})
    got = await back.recv_until(lambda m: m["type"] == "history_end" and m["room"] == "lobby")
    kicked = next(i for i, m in enumerate(got) if m["type"] == "notice")
    assert got[kicked]["message"].endswith("you are in lobby now")
    assert [m["type"] for m in got[kicked + 1:kicked + 4]] == ["disconnect", "who", "topic"]
    assert got[kicked + 1]["part"] is True

    await _logged(server, "audit: dora kicked troll from the server (reason: spam)")
    await _logged(server, "audit: alice muted troll in lobby (reason: calm down)")
    await _logged(server, "audit: alice kicked troll from dev (reason: off topic)")
    await _logged(server, "audit: dora set the topic of lobby to 'no insults please'")
    _no_password_in(server)


def _v6_port(server: Chatd) -> int:
    line = next(line for line in server.log if LISTENING in line)
    found = re.search(r"\[::1\]:(\d+)", line)
    assert found, line
    return int(found.group(1))


async def test_bans_by_name_and_address_refuse_with_until_and_are_lifted(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 15.3: a name ban covers look-alikes and says until when; an address
    ban removes who is connected from there and refuses it at accept; bans are listed
    and lifted. The operator is on ::1, the troll on 127.0.0.1."""
    server = await start_chatd("--rate", "0", "--host", "::1", env=OPERS)
    alice = await Client.open(_v6_port(server), host="::1")
    await alice.join("alice")
    await _oper(alice)
    troll = await Client.joined(server.port, "troll")
    await alice.recv_until(is_join("troll"))

    await alice.send({"type": "ban", "name": "troll", "seconds": 3600, "reason": "insults"})
    done = (await alice.recv_until(lambda m: m["type"] == "notice"))[-1]["message"]
    assert done.startswith("troll is banned until ") and done.endswith("(insults); removed: troll")
    until = done.split("until ")[1].split(" ")[0]
    [line] = await troll.closed()
    assert b'"code":"banned"' in line and until.encode() in line
    twin = await Client.open(server.port)
    await twin.send({"type": "connect", "name": "TR\u041eLL"})  # Cyrillic O
    [line] = await twin.closed()
    assert b'"code":"banned"' in line and f"until {until} (insults)".encode() in line

    other = await Client.joined(server.port, "other")
    await alice.send({"type": "ban", "address": "127.0.0.0/8", "reason": "raid"})
    [line] = await other.closed()
    assert (b"your address (127.0.0.0/8) is banned from this server by alice permanently "
            b"(raid)") in line
    refused = await Client.open(server.port)
    [line] = await refused.closed()  # at accept: the first and only line
    assert b'"code":"banned"' in line
    await _logged(server, "refused: your address (127.0.0.0/8) is banned")

    await alice.send({"type": "bans"})
    bans = (await alice.recv_until(lambda m: m["type"] == "bans"))[-1]["bans"]
    assert [(b["kind"], b["target"], b["until"]) for b in bans] == [
        ("name", "troll", until), ("address", "127.0.0.0/8", None)]
    await alice.send({"type": "unban", "address": "127.0.0.0/8"})
    await alice.recv_until(lambda m: m["type"] == "notice")
    await alice.send({"type": "unban", "address": "127.0.0.0/8"})
    assert (await alice.recv("error"))["code"] == "no_such_ban"
    again = await Client.joined(server.port, "again")
    assert again.name == "again"
    await _logged(server, "audit: alice banned address 127.0.0.0/8 permanently (raid); "
                          "removed: other")
    await _logged(server, "audit: alice lifted the ban of address 127.0.0.0/8")


async def test_bans_and_topics_survive_a_restart_with_history_db(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """PROTOCOL.txt 15.6: with --history-db, bans and topics are still there after a
    restart; an unban is too."""
    db = str(tmp_path / "chat.db")
    first = await start_chatd("--rate", "0", "--history-db", db, env=OPERS)
    alice = await Client.joined(first.port, "alice")
    await _oper(alice)
    await alice.send({"type": "ban", "name": "troll", "reason": "spam"})
    await alice.send({"type": "ban", "name": "pest", "seconds": 86400})
    await alice.send({"type": "topic", "topic": "welcome back"})
    await alice.recv_until(lambda m: m["type"] == "topic")
    await alice.send({"type": "unban", "name": "pest"})
    await alice.recv_until(lambda m: m.get("message") == "the ban of pest is lifted")
    await first.stop()

    second = await start_chatd("--rate", "0", "--history-db", db, env=OPERS)
    troll = await Client.open(second.port)
    await troll.send({"type": "connect", "name": "troll"})
    [line] = await troll.closed()
    assert b"the name troll is banned from this server by alice permanently (spam)" in line
    pest = await Client.open(second.port)
    assert (await pest.join("pest"))["topic"] == "welcome back"


async def test_a_ban_on_one_cluster_node_holds_on_the_other(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """PROTOCOL.txt 15.6: the ban is a command of the shared log: the troll on node B is
    removed, and refused there afterwards; a node started later knows it too."""
    fast = ("--rate", "0", "--max-per-ip", "0", "--redis", redis_server.url)
    node_a = await start_chatd(*fast, env=OPERS)
    node_b = await start_chatd(*fast, env=OPERS)
    alice = await Client.joined(node_a.port, "alice")
    await _oper(alice)
    troll = await Client.joined(node_b.port, "troll")
    watcher = await Client.joined(node_b.port, "watcher")
    await alice.recv_until(is_join("watcher"))
    await alice.send({"type": "ban", "name": "troll", "reason": "spam"})
    line = (await troll.closed())[-1]
    assert b"the name troll is banned from this server by alice permanently (spam)" in line
    left = (await watcher.recv_until(lambda m: m["type"] == "disconnect"))[-1]
    assert left["message"] == "troll was banned by alice (spam)"
    again = await Client.open(node_b.port)
    await again.send({"type": "connect", "name": "troll"})
    [line] = await again.closed()
    assert b'"code":"banned"' in line
    await alice.send({"type": "topic", "topic": "cluster rules"})
    await watcher.recv_until(lambda m: m["type"] == "topic")
    await _logged(node_b, "audit: alice banned name troll permanently (spam); removed: troll")

    node_c = await start_chatd(*fast, "--snapshot-every", "0.1", env=OPERS)
    late = await Client.open(node_c.port)
    await late.send({"type": "connect", "name": "troll"})
    [line] = await late.closed()
    assert b'"code":"banned"' in line
    joiner = await Client.open(node_c.port)
    welcome: dict[str, Any] = await joiner.join("joiner")
    assert welcome["topic"] == "cluster rules" and welcome["opers"] == ["alice"]
