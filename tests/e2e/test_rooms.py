"""Rooms, who, nick, private lines, ids, times and acks (PROTOCOL.txt 3.4-3.7, 4, 9)."""

from __future__ import annotations

import asyncio

from chatd.protocol import parse_time
from tests.support.harness import Chatd, Client


async def _joined(chatd: Chatd, *names: str) -> list[Client]:
    clients = [await Client.joined(chatd.port, name) for name in names]
    last = clients[-1].name
    for client in clients[:-1]:
        await client.recv_until(lambda m: m["type"] == "connect" and m["name"] == last)
    return clients


async def test_rooms_isolate_traffic_and_moving_sends_the_right_notices(chatd: Chatd) -> None:
    alice, bob, carol = await _joined(chatd, "alice", "bob", "carol")
    # A move is a join, then a part of the old room (PROTOCOL.txt 3.4, 17.2, 17.3).
    await bob.send({"type": "join", "room": "dev"})
    got = await bob.recv_until(lambda m: m["type"] == "connect")
    assert got[0] == {"type": "who", "room": "dev", "users": ["bob"]}
    assert got[-1]["room"] == "dev" and got[-1]["name"] == "bob"
    await bob.send({"type": "part", "room": "lobby"})
    left = await alice.recv("disconnect")
    assert (left["name"], left["room"], left["message"], left["part"]) == (
        "bob", "lobby", "bob left lobby", True)
    assert (await bob.recv("disconnect"))["room"] == "lobby"
    await carol.recv("disconnect")

    await carol.send({"type": "join", "room": "DEV"})  # room names ignore case
    joined = await bob.recv("connect")
    assert (joined["name"], joined["room"]) == ("carol", "dev")
    await carol.recv_until(lambda m: m["type"] == "connect")
    await carol.send({"type": "part"})  # no room named: the current one, dev (17.3)
    assert (await carol.recv("disconnect"))["room"] == "dev"
    assert (await bob.recv("disconnect"))["name"] == "carol"
    await carol.send({"type": "join", "room": "dev"})
    await carol.recv_until(lambda m: m["type"] == "connect")
    assert (await bob.recv("connect"))["name"] == "carol"
    await carol.send({"type": "part", "room": "lobby"})
    await carol.recv("disconnect")

    assert (await alice.recv("disconnect"))["message"] == "carol left lobby"
    await alice.say("lobby only")
    await bob.say("dev only")
    assert (await carol.recv("message"))["message"] == "dev only"
    assert await alice.nothing_more()
    await alice.send({"type": "who"})
    assert await alice.recv("who") == {"type": "who", "room": "lobby", "users": ["alice"]}
    await alice.send({"type": "rooms"})
    assert await alice.recv("rooms") == {"type": "rooms", "rooms": [
        {"room": "dev", "users": 2}, {"room": "lobby", "users": 1}]}
    await alice.send({"type": "who", "all": True})
    assert (await alice.recv("who"))["rooms"] == [
        {"room": "dev", "users": ["bob", "carol"]}, {"room": "lobby", "users": ["alice"]}]
    await alice.send({"type": "join", "room": "lobby"})
    assert (await alice.recv("error"))["code"] == "already_in_room"
    await alice.send({"type": "join", "room": "has space"})
    assert (await alice.recv("error"))["code"] == "bad_room"


async def test_nick_change_and_collisions(chatd: Chatd) -> None:
    alice, bob = await _joined(chatd, "alice", "bob")
    await alice.send({"type": "nick", "name": "BOB"})
    error = await alice.recv("error")
    assert (error["code"], error["message"]) == ("name_taken", "bob is taken")
    await alice.send({"type": "nick", "name": "carol"})
    for client in (alice, bob):
        notice = await client.recv("nick")
        assert (notice["name"], notice["old"]) == ("carol", "alice")
        assert notice["message"] == "alice is now known as carol"
    await alice.say("as carol")
    assert (await bob.recv("message"))["name"] == "carol"
    late = await Client.joined(chatd.port, "alice")  # the old name is free again
    assert late.name == "alice"


async def test_private_lines_reach_only_their_target_in_any_room(chatd: Chatd) -> None:
    alice, bob, carol = await _joined(chatd, "alice", "bob", "carol")
    await bob.send({"type": "join", "room": "dev"})
    await bob.recv_until(lambda m: m["type"] == "connect")
    await alice.say("psst", to="Bob", ref="p1")
    private = await bob.recv("message")
    assert (private["name"], private["to"], private["private"]) == ("alice", "bob", True)
    assert "room" not in private
    ack = await alice.recv_until(lambda m: m["type"] == "ack")
    assert ack[-1]["id"] == private["id"]
    await alice.say("hello?", to="nobody", ref="p2")
    error = await alice.recv("error")
    assert (error["code"], error["ref"]) == ("no_such_user", "p2")
    await carol.send({"type": "who"})
    await carol.recv_until(lambda m: m["type"] == "who")
    assert await carol.nothing_more()  # carol saw the move notice, never the private line


async def test_ids_increase_times_parse_and_acks_carry_the_id(chatd: Chatd) -> None:
    alice, bob = await _joined(chatd, "alice", "bob")
    for i in range(20):
        await alice.say(f"line {i}", ref=f"r{i}")
    got = await bob.recv_until(lambda m: m.get("message") == "line 19")
    acks = await alice.recv_until(lambda m: m.get("ref") == "r19")
    ids = [int(m["id"]) for m in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [a["id"] for a in acks if a["type"] == "ack"] == [m["id"] for m in got
                                                             if m["type"] == "message"]
    times = [parse_time(m["time"]) for m in got]
    assert times == sorted(times)
    assert all(m["time"].endswith("Z") and len(m["time"]) == 24 for m in got)
    await alice.say("no ref, no echo")
    await bob.recv("message")
    assert await alice.nothing_more()


async def test_text_mode_slash_commands_through_nc(chatd: Chatd) -> None:
    """PROTOCOL.txt 6.2, typed into the real nc."""
    json_user = await Client.joined(chatd.port, "jay")
    nc = await asyncio.create_subprocess_exec(
        "nc", "-N", "127.0.0.1", str(chatd.port), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert nc.stdin is not None and nc.stdout is not None
    out = nc.stdout

    async def expect(prefix: str) -> str:
        while True:
            line = (await asyncio.wait_for(out.readline(), 10)).decode()
            assert line, f"nc ended while waiting for {prefix!r}"
            if line.startswith(prefix):
                return line.rstrip("\n")

    async def type_line(text: str) -> None:
        assert nc.stdin is not None
        nc.stdin.write(text.encode() + b"\n")
        await nc.stdin.drain()

    await type_line("tex")
    await expect("* welcome, tex")
    await type_line("/who")
    assert await expect("* lobby:") == "* lobby: jay, tex"
    await type_line("/msg jay secret")
    private = await json_user.recv_until(lambda m: m["type"] == "message")
    assert (private[-1]["message"], private[-1]["to"]) == ("secret", "jay")
    await json_user.say("back", to="tex")
    assert await expect("*jay*") == "*jay* back"
    await type_line("/nick tex2")
    assert await expect("* tex is now") == "* tex is now known as tex2"
    await type_line("/join dev")  # a move: join, then part (17.10)
    await expect("* tex2 joined")
    await type_line("/part lobby")
    await expect("[lobby] * tex2 left lobby")
    await type_line("/rooms")
    assert {await expect("* dev"), await expect("* lobby")} == {"* dev: 1 user (current)",
                                                                 "* lobby: 1 user"}
    await type_line("/bogus")
    assert (await expect("! ")).startswith("! unknown_command:")
    await type_line("/join lobby")
    await expect("* tex2 joined")
    await type_line("//slash")
    await type_line("hello from nc")
    got = await json_user.recv_until(lambda m: m.get("message") == "hello from nc")
    assert [m["message"] for m in got if m["type"] == "message"] == ["/slash", "hello from nc"]
    await type_line("/quit")
    assert (await json_user.recv("disconnect"))["name"] == "tex2"
    nc.stdin.close()
    assert await asyncio.wait_for(nc.wait(), 10) == 0
