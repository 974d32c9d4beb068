"""Several rooms at once in the hub (PROTOCOL.txt 17): memberships and the current room,
the audience of a rename, leaving, resume, replication and text mode's prefix."""

from __future__ import annotations

import json
from typing import Any

from chatd import protocol as p
from chatd.effects import Broadcast, Multicast
from chatd.hub import Hub, HubConfig, id_key, replication
from chatd.protocol import ErrorCode
from tests.support.hub_world import FakePeer, World, chats, only


def _rooms(w: World, name: str) -> tuple[list[str], str]:
    """A user's rooms (keys, joining order) and current room, as the hub holds them."""
    session = w.hub.state.named(name)
    assert session is not None
    return list(session.rooms), session.room


def _errors(lines: list[dict[str, Any]]) -> list[str]:
    return [m["code"] for m in lines if m["type"] == "error"]


def _last_id(lines: list[dict[str, Any]]) -> str:
    last: str = [m["id"] for m in lines if "id" in m][-1]
    return last


# --------------------------------------------------------------- memberships (17.1-17.5)


def test_join_adds_and_part_falls_back_to_the_last_joined_room() -> None:
    """17.1-17.3: rooms in joining order; a join makes its room current; parting the
    current room makes the most recently joined remaining one current; none at last."""
    w = World()
    a = w.join("alice")
    w.send(a, p.Join("dev"))
    w.send(a, p.Join("ops"))
    assert _rooms(w, "alice") == (["lobby", "dev", "ops"], "ops")
    w.send(a, p.Switch("lobby"))
    assert only(w.take(a)[-1:], "switch") == {"type": "switch", "room": "lobby"}
    w.send(a, p.Part("dev"))  # not the current one: lobby stays current
    assert _rooms(w, "alice") == (["lobby", "ops"], "lobby")
    w.send(a, p.Part())
    assert _rooms(w, "alice") == (["ops"], "ops")
    w.send(a, p.Part())
    assert _rooms(w, "alice") == ([], "")
    w.take(a)
    w.say(a, "nowhere", ref="r")
    w.send(a, p.Who())
    w.send(a, p.History())
    w.send(a, p.Part())
    assert _errors(w.take(a)) == [ErrorCode.NOT_IN_ROOM] * 4
    assert "dev" not in w.hub.rooms and "ops" not in w.hub.rooms


def test_a_line_goes_to_the_room_named_or_the_current_one() -> None:
    """17.5: "room" picks one of the sender's rooms; another room: not_in_room with the
    ref, and nothing reaches it; private lines ignore "room"."""
    w = World()
    a, b = w.join("alice"), w.join("bob", room="dev")
    c = w.join("carol", room="ops")
    w.send(a, p.Join("dev"))
    for x in (a, b, c):
        w.take(x)
    w.say(a, "to lobby", room="LOBBY")
    w.say(a, "to dev")  # the current room
    w.say(a, "to ops", room="ops", ref="o1")
    w.say(a, "psst", to="carol", room="ops")
    assert chats(w.take(b)) == ["to dev"]
    assert chats(w.take(c)) == ["psst"]
    got = w.take(a)
    assert [(m["code"], m["ref"]) for m in got if m["type"] == "error"] == [
        (ErrorCode.NOT_IN_ROOM, "o1")]
    w.say(a, "bad", room="two words", ref="b1")
    assert [(m["code"], m.get("ref")) for m in w.take(a)] == [(ErrorCode.BAD_ROOM, "b1")]


def test_joins_are_bounded_and_checked_when_applied() -> None:
    """17.2, 17.11: already_in_room and too_many_rooms change nothing."""
    w = World(max_rooms=2)
    a = w.join("alice")
    w.send(a, p.Join("dev"))
    w.take(a)
    w.send(a, p.Join("Dev"))
    w.send(a, p.Join("ops"))
    w.send(a, p.Switch("ops"))
    assert _errors(w.take(a)) == [ErrorCode.ALREADY_IN_ROOM, ErrorCode.TOO_MANY_ROOMS,
                                  ErrorCode.NOT_IN_ROOM]
    assert _rooms(w, "alice") == (["lobby", "dev"], "dev")


def test_the_joiner_gets_the_room_then_everyone_the_notice_and_a_part_tells_all() -> None:
    """17.2, 17.3: who, history, history_end, then the connect to the room (joiner too);
    a part is a disconnect with "part": true to the room, the parter included."""
    w = World()
    a, b = w.join("alice"), w.join("bob", room="dev")
    w.say(b, "dev talk")
    w.take(a), w.take(b)
    w.send(a, p.Join("dev"))
    assert [m["type"] for m in w.take(a)] == ["who", "message", "history_end", "connect"]
    assert only(w.take(b), "connect")["room"] == "dev"
    w.send(a, p.Part("dev"))
    for x in (a, b):
        left = only(w.take(x), "disconnect")
        assert (left["room"], left["message"], left["part"]) == ("dev", "alice left dev", True)


def test_who_history_and_topic_take_a_room() -> None:
    """17.6: who of any room (an empty one too), history only of one's rooms, the topic
    of any room."""
    w = World()
    a, b = w.join("alice"), w.join("bob", room="dev")
    w.say(b, "in dev")
    w.take(a)
    w.send(a, p.Who(room="DEV"))
    w.send(a, p.Who(room="nowhere"))
    w.send(a, p.History(room="dev"))
    w.send(a, p.SetTopic(None, room="dev"))
    got = w.take(a)
    assert got == [{"type": "who", "room": "dev", "users": ["bob"]},
                   {"type": "who", "room": "nowhere", "users": []},
                   {"type": "error", "code": ErrorCode.NOT_IN_ROOM,
                    "message": "you are not in dev (/join it first)"},
                   {"type": "topic", "room": "dev", "topic": ""}]


def test_whois_gives_the_first_room_and_every_room() -> None:
    """17.9: the first in joining order, then all sorted; none: no "room"."""
    w = World()
    a, b = w.join("alice"), w.join("bob", room="Zoo")
    w.send(b, p.Join("dev"))
    w.take(a)
    w.send(a, p.Whois("bob"))
    assert w.take(a) == [{"type": "whois", "name": "bob", "room": "Zoo", "oper": False,
                          "rooms": ["dev", "Zoo"]}]
    for room in ("Zoo", "dev"):
        w.send(b, p.Part(room))
    w.send(a, p.Whois("bob"))
    assert w.take(a) == [{"type": "whois", "name": "bob", "oper": False}]


# --------------------------------------------------------------- once per person (17.7)


def test_a_rename_reaches_each_person_once_in_the_first_room_they_share() -> None:
    """17.7: the audience partitioned by room in the renamed user's joining order: the
    first room by a broadcast, the others' new people by one multicast each."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    c, d = w.join("carol", room="dev"), w.join("dan", room="ops")
    e = w.join("eve", room="ops")
    w.send(a, p.Join("dev"))
    w.send(a, p.Join("ops"))
    w.send(b, p.Join("dev"))
    w.send(e, p.Join("dev"))
    for x in (a, b, c, d, e):
        w.take(x)
    w.applied.clear()
    w.send(a, p.Nick("ada"))
    seen = {}
    for x, name in ((a, "alice"), (b, "bob"), (c, "carol"), (d, "dan"), (e, "eve")):
        notice = only(w.take(x), "nick")
        seen[name] = notice["room"]
        assert (notice["old"], notice["name"]) == ("alice", "ada")
    assert seen == {"alice": "lobby", "bob": "lobby", "carol": "dev", "eve": "dev",
                    "dan": "ops"}
    [fx] = w.applied
    assert [type(op) for op in fx.ops] == [Broadcast, Multicast, Multicast]
    assert [len(op.peers) for op in fx.ops if isinstance(op, Multicast)] == [2, 1]


def test_an_operator_line_reaches_each_person_once() -> None:
    """17.7: "is now an operator" like a rename."""
    w = World(opers=(("olga", "pw"),))
    o, b = w.join("olga"), w.join("bob")
    w.send(o, p.Join("dev"))
    w.send(b, p.Join("dev"))
    w.take(o), w.take(b)
    w.send(o, p.Oper("olga", "pw"))
    assert only(w.take(b), "oper")["room"] == "lobby"
    assert only(w.take(o), "oper")["room"] == "lobby"


def test_leaving_the_server_is_one_notice_in_each_room() -> None:
    """17.8: without "part"."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    for x in (a, b):
        w.send(x, p.Join("dev"))
    w.take(b)
    w.send(a, p.Disconnect())
    left = [m for m in w.take(b) if m["type"] == "disconnect"]
    assert sorted(m["room"] for m in left) == ["dev", "lobby"]
    assert not any("part" in m for m in left)
    # The server log's line names every room left, not only the last (ORIGIN.md: the
    # log shows all traffic)
    assert w.notes[-1] == "alice left lobby, dev"


# --------------------------------------------------------------- resume (17.9)


def test_resume_lists_every_room_then_the_others_then_one_merged_replay() -> None:
    """17.9, 10.2: welcome with rooms and the current room, who and topic of the other
    rooms, then every missed line of every room and the private ones, in id order,
    each with its room."""
    w = World(opers=(("olga", "pw"),))
    a, b = w.join("alice"), w.join("bob")
    o = w.join("olga", room="dev")
    w.send(o, p.Oper("olga", "pw"))
    w.send(o, p.SetTopic("builds"))
    for x in (a, b):
        w.send(x, p.Join("dev"))
    w.send(a, p.Switch("lobby"))
    first = w.take(a)
    token, last = first[0]["resume"], _last_id(first)
    w.lost(a)
    w.say(b, "l1", room="lobby")
    w.say(o, "d1")
    w.say(b, "p1", to="alice")
    w.say(b, "d2", room="dev")
    a2 = w.peer()
    w.send(a2, p.Connect(name="alice", resume=token, last_id=last))
    got = w.take(a2)
    welcome = got[0]
    assert (welcome["resumed"], welcome["room"], welcome["rooms"]) == (
        True, "lobby", ["lobby", "dev"])
    assert welcome["users"] == ["alice", "bob"]
    assert got[1] == {"type": "who", "room": "dev", "users": ["olga", "alice", "bob"],
                      "opers": ["olga"]}
    assert got[2] == {"type": "topic", "room": "dev", "topic": "builds"}
    replay = [(m.get("room"), m["message"]) for m in got[3:]]
    assert replay == [("lobby", "l1"), ("dev", "d1"), (None, "p1"), ("dev", "d2")]
    assert [id_key(m["id"]) for m in got[3:]] == sorted(id_key(m["id"]) for m in got[3:])
    w.say(b, "live", room="dev")
    assert chats(w.take(a2)) == ["live"]


# --------------------------------------------------------------- replication (17.13)


def test_a_snapshot_keeps_every_room_in_joining_order_and_the_current_one() -> None:
    w = World()
    a, b = w.join("alice"), w.join("bob", room="dev")
    w.send(a, p.Join("dev"))
    w.send(a, p.Join("ops"))
    w.send(a, p.Switch("dev"))
    w.send(b, p.Join("lobby"))
    w.lost(a)  # held: its memberships stay
    snap = json.loads(json.dumps(replication.snapshot(w.hub)))
    copy: Hub[FakePeer] = Hub(HubConfig(), node="later")
    replication.restore_dict(copy, snap)
    assert replication.snapshot(copy) == snap
    alice, bob = copy.state.named("alice"), copy.state.named("bob")
    assert alice is not None and bob is not None
    assert (list(alice.rooms), alice.room) == (["lobby", "dev", "ops"], "dev")
    assert (list(bob.rooms), bob.room) == (["dev", "lobby"], "lobby")
    assert copy.rooms["dev"].listed(1 << 20)[0] == ("bob", "alice")
    assert alice.rooms == w.hub.state.named("alice").rooms  # type: ignore[union-attr]


def test_a_snapshot_of_one_room_a_session_is_read_as_such() -> None:
    """17.13: a version-1 snapshot (no "rooms" in a session's record) restores."""
    w = World()
    w.join("alice"), w.join("bob", room="dev")
    snap = json.loads(json.dumps(replication.snapshot(w.hub)))
    for record in snap["sessions"]:
        record["since"] = record.pop("rooms")[0][1]
    copy: Hub[FakePeer] = Hub(HubConfig(), node="later")
    replication.restore_dict(copy, snap)
    bob = copy.state.named("bob")
    assert bob is not None and (list(bob.rooms), bob.room) == (["dev"], "dev")


# --------------------------------------------------------------- text mode (17.10)


def test_text_mode_prefixes_the_lines_of_rooms_other_than_the_current_one() -> None:
    """17.10: the current room plain, the others "[room] "; switch, join and part move
    the reader between the two."""
    w = World()
    b = w.join("bob")
    t = w.join("tina", text=True)
    d = w.join("dan", room="dev")
    w.line(t, b"/join dev")
    assert w.take_text(t)[-2:] == ["* tina joined", "* you now talk in dev"]
    w.say(b, "in lobby\nsecond line")
    w.say(d, "in dev")
    assert w.take_text(t) == ["[lobby] <bob> in lobby", "[lobby]   second line",
                              "<dan> in dev"]
    w.line(t, b"typed")
    assert chats(w.take(d))[-1:] == ["typed"]
    w.line(t, b"/switch lobby")
    w.say(b, "lobby again")
    w.say(d, "dev again")
    assert w.take_text(t) == ["* you now talk in lobby", "<bob> lobby again",
                              "[dev] <dan> dev again"]
    w.line(t, b"/rooms")
    assert w.take_text(t) == ["* dev: 2 users (you are here)",
                              "* lobby: 2 users (current)"]
    w.line(t, b"/part")  # the current room: dev, the last joined left, becomes current
    assert w.take_text(t) == ["* tina left lobby", "* you now talk in dev"]
    w.say(d, "plain now")
    assert w.take_text(t) == ["<dan> plain now"]
    w.send(d, p.Nick("daniel"))
    assert w.take_text(t) == ["* dan is now known as daniel"]
    w.line(t, b"/whois daniel")
    assert w.take_text(t) == ["* daniel is in dev"]


def test_help_lists_the_room_commands() -> None:
    w = World()
    t = w.join("tina", text=True)
    w.take(t)
    w.line(t, b"/help")
    shown = "\n".join(w.take_text(t))
    for usage in ("/join ROOM", "/part [ROOM]", "/switch ROOM", "/who [ROOM|all]"):
        assert usage in shown
