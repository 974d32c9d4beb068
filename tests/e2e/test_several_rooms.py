"""Several rooms at once (PROTOCOL.txt 17): JSON clients, nc, moderation and a cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.harness import Chatd, Client, RedisServer, StartChatd, is_join
from tests.support.nc import OpenNc

OPERS = {"CHATD_OPERS": "olga:pw-of-olga"}
Line = dict[str, Any]


def _in(room: str, kind: str, name: str | None = None) -> Callable[[Line], bool]:
    return lambda m: (m["type"] == kind and m.get("room") == room
                      and (name is None or m.get("name") == name))


async def _join(client: Client, room: str) -> list[Line]:
    """join ROOM; the joiner's lines up to its own join notice there (17.2)."""
    await client.send({"type": "join", "room": room})
    return await client.recv_until(_in(room, "connect", client.name))


async def _people(chatd: Chatd, *names: str) -> list[Client]:
    """Clients in lobby, each having seen every later one join."""
    clients: list[Client] = []
    for name in names:
        client = await Client.joined(chatd.port, name)
        for earlier in clients:
            await earlier.recv_until(is_join(client.name))
        clients.append(client)
    return clients


async def test_a_client_that_names_no_room_sees_the_tutorial_chat(chatd: Chatd) -> None:
    """17.1, 2.2, 2.3: one room, join notices, a line to everyone else, the name stamped."""
    alice = await Client.open(chatd.port)
    welcome = await alice.join("alice")
    assert (welcome["version"], welcome["room"], welcome["rooms"]) == (2, "lobby", ["lobby"])
    assert welcome["max_rooms"] == 20
    bob = await Client.joined(chatd.port, None)
    assert bob.name == "익명"
    joined = await alice.recv("connect")
    assert (joined["name"], joined["room"]) == ("익명", "lobby")
    await bob.say("안녕", name="forged")
    line = await alice.recv("message")
    assert (line["name"], line["message"], line["room"]) == ("익명", "안녕", "lobby")
    assert await bob.nothing_more()


async def test_join_adds_a_room_and_lines_go_to_the_room_named(chatd: Chatd) -> None:
    """17.2, 17.5: join adds a room (the user stays in the others) and makes it current."""
    alice, bob, carol = await _people(chatd, "alice", "bob", "carol")
    await _join(carol, "dev")
    got = await _join(alice, "dev")
    assert got[0] == {"type": "who", "room": "dev", "users": ["carol", "alice"]}
    assert [m["type"] for m in got[1:]] == ["history_end", "connect"]
    assert got[-2] == {"type": "history_end", "room": "dev", "count": 0, "more": False}
    await carol.recv_until(_in("dev", "connect", "alice"))
    # bob saw carol leave nothing: joins no longer move anyone out of lobby
    await bob.send({"type": "who"})
    assert (await bob.recv("who"))["users"] == ["alice", "bob", "carol"]

    await bob.say("for lobby")
    assert (await alice.recv("message"))["room"] == "lobby"
    await carol.say("for dev", room="dev")
    assert (await alice.recv("message"))["room"] == "dev"
    await alice.say("no room: the current one, dev")
    got_dev = await carol.recv_until(lambda m: m.get("message", "").startswith("no room"))
    assert got_dev[-1]["room"] == "dev"
    await alice.say("named lobby", room="lobby", ref="r1")
    to_lobby = await bob.recv_until(lambda m: m.get("message") == "named lobby")
    assert to_lobby[-1]["room"] == "lobby"
    assert [m["type"] for m in await alice.recv_until(lambda m: m.get("ref") == "r1")] == ["ack"]
    await carol.recv_until(lambda m: m.get("message") == "named lobby")  # in lobby too
    assert await carol.nothing_more()
    await bob.send({"type": "who"})
    await bob.recv("who")
    assert await bob.nothing_more()  # never a dev line

    await alice.send({"type": "join", "room": "DEV"})
    assert (await alice.recv("error"))["code"] == "already_in_room"
    await alice.send({"type": "join", "room": "has space"})
    assert (await alice.recv("error"))["code"] == "bad_room"


async def test_a_line_for_a_room_one_is_not_in_is_refused(chatd: Chatd) -> None:
    """17.5: not_in_room, with the line's ref; nothing reaches that room."""
    alice, bob = await _people(chatd, "alice", "bob")
    await _join(bob, "dev")
    await alice.say("sneaky", room="dev", ref="s1")
    error = await alice.recv("error")
    assert (error["code"], error["ref"]) == ("not_in_room", "s1")
    await alice.send({"type": "history", "room": "dev"})
    assert (await alice.recv("error"))["code"] == "not_in_room"
    await alice.send({"type": "who", "room": "dev"})  # anyone may see who is in a room
    assert await alice.recv("who") == {"type": "who", "room": "dev", "users": ["bob"]}
    assert await bob.nothing_more()


async def test_part_leaves_one_room_and_the_current_room_falls_back(chatd: Chatd) -> None:
    """17.3, 17.1: part tells the room (the parter included) with "part": true; the
    current room becomes the last joined of those left; no room at all is allowed."""
    alice, bob = await _people(chatd, "alice", "bob")
    await _join(bob, "dev")
    await _join(alice, "dev")
    await bob.recv_until(_in("dev", "connect", "alice"))
    await alice.send({"type": "part", "room": "dev"})
    for client in (alice, bob):
        left = await client.recv("disconnect")
        assert (left["name"], left["room"], left["part"]) == ("alice", "dev", True)
        assert left["message"] == "alice left dev"
    await alice.say("back in lobby")
    line = await bob.recv("message")
    assert (line["room"], line["message"]) == ("lobby", "back in lobby")
    await alice.send({"type": "part", "room": "dev"})
    assert (await alice.recv("error"))["code"] == "not_in_room"

    await alice.send({"type": "part"})  # no room: the current one, lobby
    assert _in("lobby", "disconnect", "alice")(await alice.recv("disconnect"))
    await bob.recv_until(_in("lobby", "disconnect", "alice"))
    await alice.say("nowhere", ref="n")
    assert (await alice.recv("error"))["code"] == "not_in_room"
    await bob.say("still reaches you", to="alice")
    assert (await alice.recv("message"))["private"] is True
    await _join(alice, "lobby")


async def test_switch_chooses_the_current_room(chatd: Chatd) -> None:
    """17.4"""
    alice, bob = await _people(chatd, "alice", "bob")
    await _join(alice, "dev")
    await alice.send({"type": "switch", "room": "lobby"})
    assert await alice.recv("switch") == {"type": "switch", "room": "lobby"}
    await alice.say("to lobby")
    assert (await bob.recv("message"))["room"] == "lobby"
    await alice.send({"type": "switch", "room": "ops"})
    assert (await alice.recv("error"))["code"] == "not_in_room"
    await alice.send({"type": "who"})  # who and history follow the current room (17.6)
    assert (await alice.recv("who"))["room"] == "lobby"


async def test_history_and_topic_take_a_room(start_chatd: StartChatd) -> None:
    """17.6: history of one of one's rooms, in that room's terms."""
    chatd = await start_chatd("--rate", "0", env=OPERS)
    olga, bob = await _people(chatd, "olga", "bob")
    await _join(bob, "dev")
    for i in range(3):
        await bob.say(f"dev {i}", room="dev", ref=f"d{i}")
    await bob.recv_until(lambda m: m.get("ref") == "d2")
    await olga.send({"type": "oper", "name": "olga", "password": "pw-of-olga"})
    await olga.recv_until(lambda m: m["type"] == "oper")
    await olga.send({"type": "topic", "room": "dev", "topic": "builds"})
    set_topic = (await bob.recv_until(lambda m: m["type"] == "topic"))[-1]
    assert (set_topic["room"], set_topic["topic"]) == ("dev", "builds")
    got = await _join(olga, "dev")
    first = next(i for i, m in enumerate(got) if m["type"] == "who")
    answer = got[first:]
    assert [m["type"] for m in answer[:2]] == ["who", "topic"]
    assert [m["message"] for m in answer if m["type"] == "message"] == [
        "dev 0", "dev 1", "dev 2"]
    assert all(m["room"] == "dev" for m in answer)
    await olga.send({"type": "history", "room": "dev", "limit": 2})
    page = await olga.recv_until(lambda m: m["type"] == "history_end")
    assert [m["message"] for m in page[:-1]] == ["dev 1", "dev 2"]
    assert (page[-1]["room"], page[-1]["more"]) == ("dev", True)
    await olga.send({"type": "topic", "room": "lobby"})
    asked = await olga.recv("topic")
    assert (asked["room"], asked["topic"]) == ("lobby", "")


async def test_a_rename_is_shown_once_to_each_person(chatd: Chatd) -> None:
    """17.7: once per person sharing a room, with a room both are in."""
    alice, bob, carol = await _people(chatd, "alice", "bob", "carol")
    for client in (alice, bob):
        await _join(client, "dev")
    await alice.recv_until(_in("dev", "connect", "bob"))
    await carol.send({"type": "part", "room": "lobby"})
    await _join(carol, "dev")
    for client in (alice, bob):
        await client.recv_until(_in("dev", "connect", "carol"))
    await _join(carol, "ops")  # carol shares dev only; nobody else is in ops
    await alice.send({"type": "nick", "name": "ada"})
    seen = {}
    for client in (alice, bob, carol):
        notice = await client.recv("nick")
        seen[client.name] = notice["room"]
        assert (notice["old"], notice["name"]) == ("alice", "ada")
        assert await client.nothing_more()
    assert seen == {"alice": "lobby", "bob": "lobby", "carol": "dev"}


async def test_leaving_the_server_shows_one_notice_in_each_room(chatd: Chatd) -> None:
    """17.8"""
    alice, bob = await _people(chatd, "alice", "bob")
    for client in (alice, bob):
        await _join(client, "dev")
    await alice.recv_until(_in("dev", "connect", "bob"))
    await bob.send({"type": "disconnect"})
    left = [await alice.recv("disconnect") for _ in range(2)]
    assert sorted(m["room"] for m in left) == ["dev", "lobby"]
    assert not any(m.get("part") for m in left)
    assert await alice.nothing_more()


async def test_resume_lists_every_room_and_replays_each(start_chatd: StartChatd) -> None:
    """17.9: the welcome lists all rooms, then who of the others, then every missed line of
    every room in id order."""
    chatd = await start_chatd("--rate", "0", "--max-per-ip", "0")
    rita, sam = await _people(chatd, "rita", "sam")
    for client in (sam, rita):
        await _join(client, "dev")
    await sam.say("seen", room="dev")
    last = (await rita.recv_until(lambda m: m.get("message") == "seen"))[-1]["id"]
    rita.reset()
    await chatd.wait_log("rita lost the connection")
    await sam.say("missed in dev", room="dev")
    await sam.say("missed in lobby", room="lobby", ref="m")
    await sam.recv_until(lambda m: m.get("ref") == "m")
    back = await Client.open(chatd.port)
    welcome = await back.join("rita", resume=rita.resume, last_id=last)
    assert (welcome["resumed"], welcome["rooms"], welcome["room"]) == (
        True, ["lobby", "dev"], "dev")
    got = await back.recv_until(lambda m: m.get("message") == "missed in lobby")
    assert got[0] == {"type": "who", "room": "lobby", "users": ["rita", "sam"]}
    missed = [(m["room"], m["message"]) for m in got if m["type"] == "message"]
    assert missed == [("dev", "missed in dev"), ("lobby", "missed in lobby")]


async def test_nc_joins_switches_parts_and_sees_other_rooms_prefixed(
    chatd: Chatd, open_nc: OpenNc,
) -> None:
    """17.10: [room] before the lines of rooms other than the current one."""
    jay, kim = await _people(chatd, "jay", "kim")
    await _join(kim, "dev")
    nc = await open_nc(chatd.port)
    await nc.send("tex")
    await nc.until(lambda s: s.startswith("* welcome, tex"))
    await nc.send("/join dev")
    await nc.until("* you now talk in dev")
    await jay.say("in lobby")
    await nc.until("[lobby] <jay> in lobby")
    await kim.say("in dev", room="dev")
    await nc.until("<kim> in dev")
    await nc.send("/rooms")
    rooms = await nc.until(lambda s: s.startswith("* lobby"))
    assert "* dev: 2 users (current)" in rooms[-2:]
    assert rooms[-1] == "* lobby: 3 users (you are here)"
    await nc.send("typed into dev")
    assert (await kim.recv_until(lambda m: m.get("message") == "typed into dev"))[-1][
        "room"] == "dev"
    await nc.send("/switch lobby")
    await nc.until("* you now talk in lobby")
    await kim.say("dev again", room="dev")
    await nc.until("[dev] <kim> dev again")
    await nc.send("/part dev")
    await nc.until(lambda s: s.endswith("tex left dev"))
    await nc.send("/part dev")
    await nc.until(lambda s: s.startswith("! not_in_room:"))
    await nc.send("/quit")
    left = await jay.recv_until(lambda m: m["type"] == "disconnect")
    assert left[-1]["room"] == "lobby"


async def test_rooms_per_user_are_limited_and_joins_cost_flood_tokens(
    start_chatd: StartChatd,
) -> None:
    """17.11: --max-rooms; join and part take a token of flood control."""
    chatd = await start_chatd("--rate", "0", "--max-rooms", "3")
    [alice] = await _people(chatd, "alice")
    for room in ("a", "b"):
        await _join(alice, room)
    await alice.send({"type": "join", "room": "c"})
    error = await alice.recv("error")
    assert error["code"] == "too_many_rooms" and "3" in error["message"]

    # Buckets of two tokens that refill once in 1,000 s: the connect takes one, so the
    # third line finds the bucket empty whatever the machine's speed, unless the second
    # (a join, a part) was free.
    slow = await start_chatd("--rate", "0.001", "--burst", "2", "--max-per-ip", "0")
    [bob, cat] = await _people(slow, "bob", "cat")
    await _join(bob, "x")
    await bob.send({"type": "part", "room": "x"})
    assert (await bob.recv("error"))["code"] == "rate_limited"
    await cat.send({"type": "part", "room": "lobby"})
    await cat.recv_until(_in("lobby", "disconnect", "cat"))
    await cat.send({"type": "join", "room": "lobby"})
    assert (await cat.recv("error"))["code"] == "rate_limited"


async def test_moderation_is_per_room_where_it_was_and_server_wide_where_it_was(
    start_chatd: StartChatd,
) -> None:
    """17.12: roomkick and mute in one room; a kick ends every room's membership."""
    chatd = await start_chatd("--rate", "0", env=OPERS)
    olga, troll, bob = await _people(chatd, "olga", "troll", "bob")
    await olga.send({"type": "oper", "name": "olga", "password": "pw-of-olga"})
    await olga.recv_until(lambda m: m["type"] == "oper")
    for client in (troll, bob, olga):
        await _join(client, "dev")
    await bob.recv_until(_in("dev", "connect", "olga"))
    await troll.recv_until(_in("dev", "connect", "olga"))

    await olga.send({"type": "mute", "name": "troll", "room": "dev"})
    await troll.recv_until(lambda m: m["type"] == "notice")
    await troll.say("shout", room="dev", ref="m1")
    assert (await troll.recv("error"))["code"] == "muted"
    await troll.say("fine here", room="lobby")
    assert (await bob.recv_until(lambda m: m["type"] == "message"))[-1]["room"] == "lobby"

    await olga.send({"type": "kick", "name": "troll", "from": "room", "room": "dev"})
    removed = await bob.recv_until(_in("dev", "disconnect", "troll"))
    assert removed[-1]["part"] is True
    await troll.recv_until(lambda m: m["type"] == "notice")
    await troll.say("still in lobby", room="lobby")
    await bob.recv_until(lambda m: m.get("message") == "still in lobby")
    await olga.send({"type": "kick", "name": "troll", "from": "room", "room": "dev"})
    assert (await olga.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == "not_in_room"

    await _join(troll, "ops")
    await olga.send({"type": "kick", "name": "troll"})
    gone = await bob.recv_until(_in("lobby", "disconnect", "troll"))
    assert not gone[-1].get("part")
    rest = await troll.closed()
    assert b'"code":"kicked"' in rest[-1]


async def test_a_cluster_agrees_on_who_is_in_which_room(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """17.13: memberships are replicated; per-room lines arrive once, in order, on every
    node; a node that starts later knows them from the snapshot and the log."""
    fast = ("--rate", "0", "--max-per-ip", "0", "--redis", redis_server.url,
            "--snapshot-every", "0.2")
    one = await start_chatd(*fast)
    two = await start_chatd(*fast)
    alice = await Client.joined(one.port, "alice")
    bob = await Client.joined(two.port, "bob")
    await alice.recv_until(is_join("bob"))
    for client in (alice, bob):
        await _join(client, "dev")
    await alice.recv_until(_in("dev", "connect", "bob"))
    for i in range(10):
        await alice.say(f"dev {i}", room="dev")
        await alice.say(f"lobby {i}", room="lobby")
    got = await bob.recv_until(lambda m: m.get("message") == "lobby 9")
    by_room: dict[str, list[str]] = {"dev": [], "lobby": []}
    for m in got:
        if m["type"] == "message":
            by_room[m["room"]].append(m["message"])
    assert by_room == {room: [f"{room} {i}" for i in range(10)] for room in by_room}
    await bob.send({"type": "part", "room": "lobby"})
    await alice.recv_until(_in("lobby", "disconnect", "bob"))
    three = await start_chatd(*fast)
    carol = await Client.joined(three.port, "carol")
    await carol.send({"type": "whois", "name": "bob"})
    whois = await carol.recv("whois")
    assert (whois["room"], whois["rooms"]) == ("dev", ["dev"])
    await carol.send({"type": "who", "room": "dev"})
    assert (await carol.recv("who"))["users"] == ["alice", "bob"]
