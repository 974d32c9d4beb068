"""Unit tests of chatd.hub, the pure room state machine, driven through a LocalBus.

No sockets: a peer is a tiny object with `cid` and `text`; deliveries are collected per
peer the way chatd.server delivers them. Each test cites the PROTOCOL.txt section it checks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.channels import encode, page_parts
from chatd.effects import Page
from chatd.hub import DetachCmd, LeaveCmd, SayCmd, Status, entry_cost, id_key
from chatd.hub.base import entries_cost
from chatd.protocol import ErrorCode
from tests.support.hub_world import T0, FakePeer, World, chats, only

# The old import path of helpers now in tests.support.hub_world, kept while branches merge.
__all__ = ["T0", "FakePeer", "World", "chats", "only"]

# --------------------------------------------------------------------------- joining


def test_join_sends_welcome_history_end_then_connect_to_the_joiner() -> None:
    """PROTOCOL.txt 2.2, 4.1: welcome, history, history_end, then the connect notice."""
    w = World()
    a = w.join("alice")
    lines = w.take(a)
    assert [m["type"] for m in lines] == ["welcome", "history_end", "connect"]
    welcome, end, joined = lines
    assert welcome["name"] == "alice" and welcome["room"] == "lobby"
    assert welcome["users"] == ["alice"]
    assert welcome["version"] == 2 and welcome["resumed"] is False
    assert welcome["rooms"] == ["lobby"] and welcome["max_rooms"] == 20
    assert welcome["resume"] and "notice" not in welcome
    assert end == {"type": "history_end", "room": "lobby", "count": 0, "more": False}
    assert joined["name"] == "alice" and joined["message"] == "alice joined"
    assert joined["room"] == "lobby" and joined["id"] and joined["time"].endswith("Z")
    assert w.hub.state.status(a) is Status.ATTACHED


def test_join_notice_reaches_everyone_including_the_joiner() -> None:
    """PROTOCOL.txt 2.2 (ORIGIN.md point 4): the connect notice goes to all, joiner included."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    c = w.join("carol")
    for peer in (a, b):
        notice = w.take(peer)[-1]
        assert (notice["type"], notice["name"]) == ("connect", "carol")
    lines = w.take(c)
    assert lines[0]["users"] == ["alice", "bob", "carol"]  # joining order
    assert (lines[-1]["type"], lines[-1]["name"]) == ("connect", "carol")


def test_join_in_a_given_room() -> None:
    """PROTOCOL.txt 3.1: "room" chooses the room to start in."""
    w = World()
    a = w.join("alice", room="dev")
    lobby = w.join("bob")
    welcome = w.take(a)[0]
    assert welcome["room"] == "dev"
    assert w.types(a) == []  # bob joined the lobby, not dev
    assert w.take(lobby)[0]["users"] == ["bob"]


@pytest.mark.parametrize("name", [None, "", "   ", "\t"])
def test_blank_or_missing_name_gives_anonymous(name: str | None) -> None:
    """PROTOCOL.txt 3.1, 5.1 (ORIGIN.md point 7): blank or missing gives "익명"."""
    w = World()
    a = w.join(name)
    assert w.take(a)[0]["name"] == "익명"


def test_taken_names_get_variants_ignoring_case() -> None:
    """PROTOCOL.txt 5.1: unique ignoring case; the first free variant, and a notice."""
    w = World()
    w.join("alice")
    b, c, d = w.join("Alice"), w.join("ALICE"), w.join("alice")
    assert [w.take(x)[0]["name"] for x in (b, c, d)] == ["Alice2", "ALICE3", "alice4"]
    w2 = World()
    w2.join(None)
    second = w2.join("")
    welcome = w2.take(second)[0]
    assert welcome["name"] == "익명2"
    assert welcome["notice"] == "익명 is taken, so you are 익명2"


def test_name_is_trimmed_and_nfc() -> None:
    """PROTOCOL.txt 5.1: trimmed and NFC, so decomposed and composed names collide."""
    w = World()
    a = w.join("  \u1100\u1161  ")
    assert w.take(a)[0]["name"] == "가"
    b = w.join("가")
    assert w.take(b)[0]["name"] == "가2"


def test_variant_of_a_32_character_name_fits() -> None:
    """PROTOCOL.txt 5.1: variants are cut to fit 32 characters."""
    w = World()
    w.join("n" * 32)
    b = w.join("N" * 32)
    assert w.take(b)[0]["name"] == "N" * 31 + "2"


def test_bad_name_leaves_the_connection_unjoined_and_it_may_retry() -> None:
    """PROTOCOL.txt 5.1: bad_name, the connection stays unjoined, another connect may follow."""
    w = World()
    a = w.join("has space")
    assert only(w.take(a), "error")["code"] == ErrorCode.BAD_NAME
    assert w.hub.state.status(a) is not Status.ATTACHED
    w.say(a, "hi")
    assert only(w.take(a), "error")["code"] == ErrorCode.NOT_JOINED
    w.send(a, p.Connect(name="alice"))
    assert w.take(a)[0]["name"] == "alice"


def test_bad_room_on_connect() -> None:
    """PROTOCOL.txt 5.2: a room breaking the rules gets bad_room."""
    w = World()
    a = w.join("alice", room="two words")
    assert only(w.take(a), "error")["code"] == ErrorCode.BAD_ROOM
    assert w.hub.state.status(a) is not Status.ATTACHED


def test_lines_before_connect_get_not_joined_except_ping() -> None:
    """PROTOCOL.txt 2.2: until connect, every line but ping/pong gets not_joined."""
    w = World()
    a = w.peer()
    events: list[p.Event] = [p.Message("hi"), p.Join("dev"), p.Who(), p.Rooms(), p.Nick("x"),
                             p.History()]
    for event in events:
        w.send(a, event)
        assert only(w.take(a), "error")["code"] == ErrorCode.NOT_JOINED
    w.send(a, p.Ping())
    assert w.take(a) == [{"type": "pong"}]
    w.send(a, p.Pong())
    assert w.take(a) == []


def test_connect_twice_is_already_joined() -> None:
    """PROTOCOL.txt 7: connect on a connection that has joined gets already_joined."""
    w = World()
    a = w.join("alice")
    w.take(a)
    w.send(a, p.Connect(name="other"))
    assert only(w.take(a), "error")["code"] == ErrorCode.ALREADY_JOINED
    assert w.hub.state.local.get(a.cid) is not None
    assert w.hub.state.local.get(a.cid).name == "alice"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- chat lines


def test_message_fans_out_to_the_room_except_the_sender() -> None:
    """PROTOCOL.txt 2.3 (ORIGIN.md point 5): A's line reaches B and C, not A; encoded once."""
    w = World()
    a, b, c = w.join("alice"), w.join("bob"), w.join("carol")
    elsewhere = w.join("dave", room="dev")
    for x in (a, b, c, elsewhere):
        w.take(x)
    fx = w.hub.handle(a, p.Message("hi all"))
    assert [type(op) for op in fx.ops] == [SayCmd] and len(fx.commands) == 1
    w.bus.publish(*fx.commands)
    applied = w.applied[-1]
    assert len(w.delivered[-1]) == 1
    targets, update, skip = w.delivered[-1][0]
    assert set(targets) == {a, b, c}
    assert skip is a
    assert isinstance(update, p.Chat)
    assert (update.name, update.message, update.room) == ("alice", "hi all", "lobby")
    assert applied.note == "<alice@lobby> hi all"


def test_a_room_line_is_one_update_for_both_modes() -> None:
    """PROTOCOL.txt 6.3: JSON and text users share a room; the hub broadcasts one update
    (the writer encodes it once per mode: tests/unit/test_outbox.py)."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    t = w.join("tina", text=True)
    for peer in (a, b, t):
        w.take(peer)
    fx = w.hub.handle(a, p.Message("hey"))
    w.bus.publish(*fx.commands)
    [(targets, update, skip)] = w.delivered[-1]
    assert set(targets) == {a, b, t} and skip is a
    assert w.updates(b) == [update] and w.updates(t) == [update]
    assert update == p.Chat("alice", "hey", "4", p.format_time(T0), room="lobby")


def test_sender_name_is_the_connections_name() -> None:
    """PROTOCOL.txt 2.3: the name field of a message is ignored; the server's name is used."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.take(b)
    w.line(a, b'{"type":"message","message":"hi","name":"bob"}')
    assert only(w.take(b), "message")["name"] == "alice"


def test_ids_increase_in_server_order() -> None:
    """PROTOCOL.txt 9.1: ids are unique and increase in the order the server applied them."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.take(a)
    for i in range(5):
        w.say(b, f"m{i}")
    w.send(b, p.Nick("robert"))
    w.send(b, p.Join("dev"))
    w.send(b, p.Part("lobby"))
    ids = [id_key(m["id"]) for m in w.take(a)]
    assert len(ids) == 7
    assert ids == sorted(set(ids))


def test_message_with_ref_is_acked_to_the_sender_alone() -> None:
    """PROTOCOL.txt 4.6, 9.3: the ack carries the ref and the id/time the line got."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.take(a), w.take(b)
    w.say(a, "hello", ref="c17")
    ack = only(w.take(a), "ack")
    msg = only(w.take(b), "message")
    assert ack == {"type": "ack", "ref": "c17", "id": msg["id"], "time": msg["time"]}
    assert "ref" not in msg
    w.say(a, "no ref")
    assert w.take(a) == []


def test_multiline_message_and_tab_are_kept() -> None:
    """PROTOCOL.txt 5.3: "\\n" for several lines and tab are kept; text mode shows both."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    t = w.join("tina", text=True)
    w.take(b), w.take_text(t)
    w.line(a, b'{"type":"message","message":"one\\ntwo\\tthree\\u001b"}')
    assert only(w.take(b), "message")["message"] == "one\ntwo\tthree"
    assert w.take_text(t) == ["<alice> one", "  two three"]


# --------------------------------------------------------------------------- rooms


def test_a_move_is_a_join_then_a_part() -> None:
    """PROTOCOL.txt 3.4, 17.2, 17.3: the joiner gets who + history, the new room the
    connect; the part tells the old room (the parter too) "alice left lobby"."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    c = w.join("carol", room="dev")
    w.say(c, "dev talk")
    for x in (a, b, c):
        w.take(x)
    w.send(a, p.Join("dev"))
    assert w.take(b) == []  # a join moves nobody out
    lines = w.take(a)
    assert [m["type"] for m in lines] == ["who", "message", "history_end", "connect"]
    assert lines[0] == {"type": "who", "room": "dev", "users": ["carol", "alice"]}
    assert lines[1]["message"] == "dev talk" and lines[1]["history"] is True
    assert lines[3]["room"] == "dev" and lines[3]["name"] == "alice"
    assert only(w.take(c), "connect")["name"] == "alice"
    w.send(a, p.Part("lobby"))
    left = only(w.take(b), "disconnect")
    assert left["name"] == "alice" and left["message"] == "alice left lobby"
    assert left["room"] == "lobby" and left["part"] is True and "reason" not in left
    assert only(w.take(a), "disconnect")["room"] == "lobby"
    w.say(b, "lobby only")
    assert w.take(a) == []
    w.say(c, "dev only")
    assert chats(w.take(a)) == ["dev only"]


def test_rooms_are_case_insensitive_and_keep_the_first_spelling() -> None:
    """PROTOCOL.txt 5.2: rooms are unique ignoring case."""
    w = World()
    a = w.join("alice", room="Dev")
    b = w.join("bob", room="dev")
    assert w.take(b)[0]["room"] == "Dev"
    w.take(a)
    w.send(a, p.Join("DEV"))
    assert only(w.take(a), "error")["code"] == ErrorCode.ALREADY_IN_ROOM


def test_join_bad_room_or_the_same_room() -> None:
    """PROTOCOL.txt 5.2, 7: bad_room for a room breaking the rules, already_in_room for
    the one one is in."""
    w = World()
    a = w.join("alice")
    w.take(a)
    for room in ["lobby", "LOBBY", "two words", "r" * 33, " ", "a\x1bb"]:
        w.send(a, p.Join(room))
        code = ErrorCode.ALREADY_IN_ROOM if room.lower() == "lobby" else ErrorCode.BAD_ROOM
        assert only(w.take(a), "error")["code"] == code, room
    assert w.hub.state.local.get(a.cid).room == "lobby"  # type: ignore[union-attr]


def test_who_and_rooms() -> None:
    """PROTOCOL.txt 3.5, 3.6, 4.7, 4.8: users of the room, of every room, and room counts."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.join("carol", room="dev")
    w.join("zed", room="Zoo")
    w.take(a)
    w.send(a, p.Who())
    assert w.take(a) == [{"type": "who", "room": "lobby", "users": ["alice", "bob"]}]
    w.send(a, p.Who(all=True))
    assert w.take(a) == [{"type": "who", "all": True, "rooms": [
        {"room": "dev", "users": ["carol"]}, {"room": "lobby", "users": ["alice", "bob"]},
        {"room": "Zoo", "users": ["zed"]}]}]
    w.send(a, p.Rooms())
    assert w.take(a) == [{"type": "rooms", "rooms": [
        {"room": "dev", "users": 1}, {"room": "lobby", "users": 2}, {"room": "Zoo", "users": 1}]}]
    w.send(b, p.Join("dev"))
    w.send(b, p.Part("lobby"))
    w.send(a, p.Rooms())
    assert w.take(a)[-1]["rooms"] == [{"room": "dev", "users": 2}, {"room": "lobby", "users": 1},
                                      {"room": "Zoo", "users": 1}]


def test_names_listed_have_a_bound_in_bytes_and_the_rest_are_counted() -> None:
    """PROTOCOL.txt 4.1, 4.7: a welcome and a who list the room's names in joining
    order as far as HubConfig.names_bytes (32 KiB) of them go, as sent (UTF-8,
    with quotes and comma), and "more" counts the others; who all shares one budget."""
    long = "가" * 32  # 3 bytes a character: a name of 31 of them and a digit lists as 97
    w = World(names_bytes=3 * 97)
    peers = [w.join(f"{long[:31]}{i}") for i in range(5)]
    welcome = w.take(peers[-1])[0]
    assert welcome["users"] == [f"{long[:31]}{i}" for i in range(3)]
    assert welcome["more"] == 2
    w.send(peers[0], p.Who())
    who = w.take(peers[0])[-1]
    assert (len(who["users"]), who["more"]) == (3, 2)
    w.join("bob", room="dev")
    w.send(peers[0], p.Who(all=True))
    every = w.take(peers[0])[-1]
    assert every["rooms"] == [{"room": "dev", "users": ["bob"]},
                              {"room": "lobby", "users": welcome["users"][:2]}]
    assert every["more"] == 3
    alone = World()
    assert "more" not in alone.take(alone.join("alice"))[0]  # absent when none is left out


def test_rooms_without_users_are_not_listed() -> None:
    """PROTOCOL.txt 4.8: only rooms with at least one user are listed."""
    w = World()
    a = w.join("alice")
    b = w.join("bob", room="dev")
    w.send(b, p.Disconnect())
    w.take(a)
    w.send(a, p.Rooms())
    assert w.take(a) == [{"type": "rooms", "rooms": [{"room": "lobby", "users": 1}]}]
    w.send(a, p.Who(all=True))
    assert w.take(a)[0]["rooms"] == [{"room": "lobby", "users": ["alice"]}]


# --------------------------------------------------------------------------- nick


def test_nick_change_notice_and_old_name_freed() -> None:
    """PROTOCOL.txt 3.7, 4.5: the room, renamed user included, gets the nick notice."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    other = w.join("olga", room="dev")
    for x in (a, b, other):
        w.take(x)
    w.send(a, p.Nick("carol"))
    for x in (a, b):
        notice = only(w.take(x), "nick")
        assert (notice["name"], notice["old"], notice["room"]) == ("carol", "alice", "lobby")
        assert notice["message"] == "alice is now known as carol"
    assert w.take(other) == []
    w.say(a, "as carol")
    assert only(w.take(b), "message")["name"] == "carol"
    fresh = w.join("alice")
    assert w.take(fresh)[0]["name"] == "alice"


def test_nick_to_a_taken_name_is_name_taken_without_variant() -> None:
    """PROTOCOL.txt 3.7: the name must be free (ignoring case); no variant is picked."""
    w = World()
    a = w.join("alice")
    w.join("bob", room="elsewhere")
    w.take(a)
    for name in ["bob", "BOB", " Bob "]:
        w.send(a, p.Nick(name))
        assert only(w.take(a), "error")["code"] == ErrorCode.NAME_TAKEN
    assert w.hub.state.local.get(a.cid).name == "alice"  # type: ignore[union-attr]


def test_nick_bad_names() -> None:
    """PROTOCOL.txt 3.7, 5.1: blank or rule-breaking names get bad_name, one's own name
    same_name."""
    w = World()
    a = w.join("alice")
    w.take(a)
    for name in ["", "  ", "alice", "two words", "x" * 33, "a\u202eb"]:
        w.send(a, p.Nick(name))
        code = ErrorCode.SAME_NAME if name == "alice" else ErrorCode.BAD_NAME
        assert only(w.take(a), "error")["code"] == code, name


def test_nick_to_a_different_case_of_ones_own_name() -> None:
    """PROTOCOL.txt 3.7, 5.1: the name is one's own ignoring case, so it is free."""
    w = World()
    a = w.join("alice")
    w.take(a)
    w.send(a, p.Nick("Alice"))
    assert only(w.take(a), "nick")["name"] == "Alice"
    taker = w.join("ALICE")
    assert w.take(taker)[0]["name"] == "ALICE2"


# --------------------------------------------------------------------------- private lines


def test_private_line_to_one_user_in_any_room() -> None:
    """PROTOCOL.txt 3.2, 4.2: "to" sends to that user only, in any room, ignoring case."""
    w = World()
    a, c = w.join("alice"), w.join("carol")
    b = w.join("bob", room="dev")
    for x in (a, b, c):
        w.take(x)
    w.say(a, "psst", to="BOB", ref="p1")
    msg = only(w.take(b), "message")
    assert msg["name"] == "alice" and msg["message"] == "psst"
    assert msg["to"] == "bob" and msg["private"] is True and "room" not in msg
    assert w.take(c) == []
    ack = only(w.take(a), "ack")
    assert (ack["ref"], ack["id"]) == ("p1", msg["id"])


def test_private_line_to_nobody() -> None:
    """PROTOCOL.txt 7: no_such_user, carrying the ref (4.10)."""
    w = World()
    a = w.join("alice")
    w.take(a)
    w.say(a, "hello?", to="nobody", ref="r9")
    err = only(w.take(a), "error")
    assert (err["code"], err["ref"]) == (ErrorCode.NO_SUCH_USER, "r9")
    w.say(a, "hello?", to="nobody")
    err = only(w.take(a), "error")
    assert err["code"] == ErrorCode.NO_SUCH_USER and "ref" not in err


def test_private_lines_are_not_in_room_history() -> None:
    """PROTOCOL.txt 9.4: private lines are never in room history."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.say(a, "public")
    w.say(a, "secret", to="bob")
    w.take(a)
    w.send(a, p.History())
    assert chats(w.take(a)) == ["public"]
    late = w.join("carl")
    assert chats(w.take(late)) == ["public"]
    w.take(b)


def test_text_mode_private_line_rendering() -> None:
    """PROTOCOL.txt 6.1: a private line shows as *bob* text."""
    w = World()
    t = w.join("tina", text=True)
    b = w.join("bob")
    w.take_text(t)
    w.say(b, "psst", to="tina")
    assert w.take_text(t) == ["*bob* psst"]


# --------------------------------------------------------------------------- history


def _say_many(w: World, peer: FakePeer, n: int, prefix: str = "m") -> list[str]:
    """Say n lines; returns their ids (read from the acks)."""
    ids = []
    for i in range(1, n + 1):
        w.say(peer, f"{prefix}{i}", ref=f"r{i}")
        ids.append(only(w.take(peer), "ack")["id"])
    return ids


def test_history_on_join() -> None:
    """PROTOCOL.txt 2.2, 8.6: a joiner gets the room's last lines, oldest first, then the end."""
    w = World(history_on_join=3)
    a = w.join("alice")
    _say_many(w, a, 5)
    b = w.join("bob")
    lines = w.take(b)
    assert [m["type"] for m in lines] == ["welcome", "message", "message", "message",
                                           "history_end", "connect"]
    assert chats(lines) == ["m3", "m4", "m5"]
    assert all(m["history"] is True and m["name"] == "alice" for m in lines[1:4])
    assert lines[4] == {"type": "history_end", "room": "lobby", "count": 3, "more": True}


def test_history_on_join_when_all_fit() -> None:
    """PROTOCOL.txt 4.9: "more" is false when nothing older is kept."""
    w = World(history_on_join=3)
    a = w.join("alice")
    _say_many(w, a, 3)
    b = w.join("bob")
    assert only(w.take(b), "history_end") == {"type": "history_end", "room": "lobby",
                                              "count": 3, "more": False}


def test_history_paging() -> None:
    """PROTOCOL.txt 3.8: latest, before and after pages, oldest first, with "more"."""
    w = World()
    a = w.join("alice")
    ids = _say_many(w, a, 10)

    def page(**ask: Any) -> tuple[list[str], bool]:
        w.send(a, p.History(**ask))
        lines = w.take(a)
        end = lines[-1]
        assert end["type"] == "history_end" and end["count"] == len(lines) - 1
        assert all(m["history"] is True for m in lines[:-1])
        return chats(lines), end["more"]

    assert page(limit=3) == (["m8", "m9", "m10"], True)
    assert page(limit=10) == ([f"m{i}" for i in range(1, 11)], False)
    assert page(limit=100) == ([f"m{i}" for i in range(1, 11)], False)
    assert page(before=ids[3], limit=2) == (["m2", "m3"], True)
    assert page(before=ids[3], limit=3) == (["m1", "m2", "m3"], False)
    assert page(before=ids[1], limit=5) == (["m1"], False)
    assert page(before=ids[0]) == ([], False)
    assert page(after=ids[6], limit=2) == (["m8", "m9"], True)
    assert page(after=ids[6], limit=3) == (["m8", "m9", "m10"], False)
    assert page(after=ids[9]) == ([], False)
    assert page(after="0", limit=4) == (["m1", "m2", "m3", "m4"], True)
    # ids that are not those of a chat line still order correctly
    assert page(before=str(int(ids[9]) + 1000), limit=1) == (["m10"], True)


def test_history_pages_fit_their_bytes_as_each_mode_reads_them() -> None:
    """PROTOCOL.txt 3.8, 8.3: a page (and a joiner's recent lines) stops at page_bytes as
    sent in the reader's mode (at least one line), and is charged by that size."""
    w = World(page_bytes=10_000)
    bob = w.join("bob")
    for i in range(4):
        w.say(bob, f"{i}" + "\na" * 1_500)  # 3,001 characters: 4.5 KB of JSON, 6 KB of text
    for text in (False, True):
        peer = w.join(f"reader{int(text)}", text=text)
        raw = b"".join(encode(u, text) for u in w.updates(peer))
        fx = w.send(peer, p.History(limit=4))
        page = b"".join(encode(u, text) for u in w.updates(peer))
        [asked] = [op for op in fx.ops if isinstance(op, Page)]
        _, parts = page_parts(asked, text)  # as the writer cuts and charges it
        assert b"".join(parts) == page
        assert sum(map(len, parts[:-1])) == len(page) - len(page.splitlines(keepends=True)[-1])
        for data in (raw, page):
            shown = (data.count(b"\n<bob> ") + data.count(b"] <bob> ") if text
                     else data.count(b'"history":true'))
            assert shown == (1 if text else 2)
        assert len(page) <= 10_000 + 200
        end = page.splitlines()[-1]
        assert end == b"* -- 1 earlier line above --" if text else json.loads(end)["more"]


def test_history_bad_id() -> None:
    """PROTOCOL.txt 7: bad_id when before/after is not a message id."""
    w = World()
    a = w.join("alice")
    w.take(a)
    for ask in [p.History(before="abc"), p.History(after="-1"), p.History(after="1e5"),
                p.History(before=""), p.History(after=" 5"), p.History(after="9" * 41)]:
        w.send(a, ask)
        assert only(w.take(a), "error")["code"] == ErrorCode.BAD_ID, ask


def test_history_accepts_cluster_ids() -> None:
    """PROTOCOL.txt 9.1: ids may be Redis stream ids ("1764100800123-0")."""
    w = World()
    a = w.join("alice")
    _say_many(w, a, 2)
    w.send(a, p.History(after="0-0"))
    assert chats(w.take(a)) == ["m1", "m2"]


def test_history_size_is_bounded() -> None:
    """PROTOCOL.txt 8.6, 9.4: each room keeps its last N lines and no more."""
    w = World(history_size=5)
    a = w.join("alice")
    for i in range(1, 24):
        w.say(a, f"m{i}")
    w.send(a, p.History(limit=100))
    lines = w.take(a)
    assert chats(lines) == ["m19", "m20", "m21", "m22", "m23"]
    assert lines[-1]["more"] is False
    for _ in range(200):
        w.say(a, "more")
    assert len(w.hub.history.lines["lobby"]) < 2 * 5


def test_history_per_room() -> None:
    """PROTOCOL.txt 3.8: history is the asker's room's."""
    w = World()
    a = w.join("alice")
    b = w.join("bob", room="dev")
    w.say(a, "in lobby")
    w.say(b, "in dev")
    w.take(b)
    w.send(b, p.History())
    assert chats(w.take(b)) == ["in dev"]


# --------------------------------------------------------------------------- leaving


def test_polite_leave_announced_at_once_and_connection_closed() -> None:
    """PROTOCOL.txt 2.4, 3.3: a polite leave closes and tells the room at once, no reason."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.take(b)
    fx = w.send(a, p.Disconnect())
    assert fx.closed == [a]
    left = only(w.take(b), "disconnect")
    assert (left["name"], left["message"], left["room"]) == ("alice", "alice left", "lobby")
    assert "reason" not in left
    assert w.hub.state.status(a) is not Status.ATTACHED
    w.lost(a, None)  # the socket then closes: nothing more happens
    assert w.take(b) == []
    again = w.join("alice")
    assert w.take(again)[0]["name"] == "alice"


def test_disconnect_before_joining_just_closes() -> None:
    """PROTOCOL.txt 3.3: a disconnect of an unjoined connection closes it, no error."""
    w = World()
    a = w.peer()
    fx = w.send(a, p.Disconnect())
    assert fx.closed == [a] and w.take(a) == []


def test_clean_close_announced_at_once() -> None:
    """PROTOCOL.txt 2.4: closing the socket (EOF) is announced at once, without reason."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.take(b)
    w.lost(a, None)
    left = only(w.take(b), "disconnect")
    assert left["name"] == "alice" and "reason" not in left


def test_broken_json_connection_is_held_for_resume() -> None:
    """PROTOCOL.txt 2.4, 10.1: a lost JSON connection is held, unannounced, keeping its name."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    w.take(b)
    session = w.hub.state.local.get(a.cid)
    assert session is not None
    fx = w.hub.disconnected(a, "connection reset")
    assert fx.commands == [DetachCmd(session.sid, "connection reset")]
    w.effects(fx)
    assert w.take(b) == []
    w.send(b, p.Who())
    assert w.take(b)[0]["users"] == ["alice", "bob"]
    newcomer = w.join("alice")
    assert w.take(newcomer)[0]["name"] == "alice2"
    assert any("alice lost the connection (connection reset)" in n for n in w.notes)


def test_broken_connection_leaves_after_the_grace_period() -> None:
    """PROTOCOL.txt 2.4, 10.1: when grace ends the leave is announced, with a reason."""
    w = World(resume_grace=120)
    a, b = w.join("alice"), w.join("bob")
    w.take(b)
    w.lost(a)
    w.now += 119
    w.expire()
    assert w.take(b) == []
    w.send(b, p.Who())
    assert w.take(b)[0]["users"] == ["alice", "bob"]
    w.now += 1.5
    w.expire()
    left = only(w.take(b), "disconnect")
    assert left["name"] == "alice" and left["reason"]
    w.send(b, p.Who())
    assert w.take(b)[0]["users"] == ["bob"]
    assert w.take(w.join("alice"))[0]["name"] == "alice"


def test_broken_connection_without_grace_leaves_at_once() -> None:
    """PROTOCOL.txt 2.4, 8.6: with --resume-grace 0 a lost connection leaves at once."""
    w = World(resume_grace=0)
    a, b = w.join("alice"), w.join("bob")
    w.take(b)
    fx = w.hub.disconnected(a, "connection reset")
    assert [type(c) for c in fx.commands] == [LeaveCmd]
    w.effects(fx)
    left = only(w.take(b), "disconnect")
    assert left["reason"] == "connection reset"


def test_text_mode_user_leaves_at_once_when_the_connection_breaks() -> None:
    """PROTOCOL.txt 2.4: a text-mode user cannot resume, so its leave is announced at once."""
    w = World(resume_grace=120)
    t = w.join("tina", text=True)
    b = w.join("bob")
    t2 = w.join("tom", text=True)
    w.take(b), w.take_text(t2)
    w.lost(t)
    left = only(w.take(b), "disconnect")
    assert (left["name"], left["reason"]) == ("tina", "connection reset")
    assert w.take_text(t2) == ["* tina left (connection reset)"]


# --------------------------------------------------------------------------- resume


def _last_id(lines: list[dict[str, Any]]) -> str:
    return str([m["id"] for m in lines if "id" in m][-1])


def test_resume_replays_missed_room_and_private_lines_in_id_order() -> None:
    """PROTOCOL.txt 10.2: welcome resumed, then every missed line after last_id, in id order;
    nothing is announced to the room."""
    w = World()
    a = w.join("alice")
    b, c = w.join("bob"), w.join("carol", room="dev")
    w.say(b, "seen")
    first = w.take(a)
    token, last = first[0]["resume"], _last_id(first)
    w.lost(a)
    w.take(b)
    w.say(b, "m1")
    w.say(c, "p1", to="alice")
    w.say(b, "m2")
    w.say(c, "dev line")  # another room: not for alice
    w.say(b, "p2", to="alice")
    w.take(b)
    a2 = w.peer()
    w.send(a2, p.Connect(name="alice", resume=token, last_id=last))
    lines = w.take(a2)
    welcome = lines[0]
    assert welcome["type"] == "welcome" and welcome["resumed"] is True
    assert (welcome["name"], welcome["room"], welcome["resume"]) == ("alice", "lobby", "")
    assert welcome["users"] == ["alice", "bob"]
    replay = lines[1:]
    assert [m["message"] for m in replay] == ["m1", "p1", "m2", "p2"]
    assert [id_key(m["id"]) for m in replay] == sorted(id_key(m["id"]) for m in replay)
    assert replay[1]["private"] is True and replay[1]["to"] == "alice"
    assert replay[0]["room"] == "lobby" and "history" not in replay[0]
    assert w.take(b) == []  # nothing announced
    w.say(b, "live")
    assert chats(w.take(a2)) == ["live"]
    assert w.take(a) == []


def test_resume_gives_acks_for_own_lines_with_ref() -> None:
    """PROTOCOL.txt 10.2: for the client's own lines that carried a ref, the ack instead."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    lines = w.take(a)
    token, last = lines[0]["resume"], _last_id(lines)
    w.say(a, "mine", ref="c1")  # its ack is lost with the connection
    w.say(a, "mine, no ref")
    w.say(a, "private", to="bob", ref="c2")
    w.lost(a)
    w.say(b, "theirs")
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token, last_id=last))
    replay = w.take(a2)[1:]
    assert [(m["type"], m.get("ref") or m.get("message")) for m in replay] == [
        ("ack", "c1"), ("ack", "c2"), ("message", "theirs")]
    assert id_key(replay[0]["id"]) < id_key(replay[1]["id"]) < id_key(replay[2]["id"])


def test_resume_without_last_id_replays_since_the_join_point() -> None:
    """PROTOCOL.txt 10.2, 10.3: without last_id, lines after the session joined its room."""
    w = World()
    b = w.join("bob")
    w.say(b, "before alice")
    a = w.join("alice")
    token = w.take(a)[0]["resume"]
    w.say(b, "after 1")
    w.lost(a)
    w.say(b, "after 2")
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token))
    lines = w.take(a2)
    assert lines[0]["resumed"] is True
    assert chats(lines) == ["after 1", "after 2"]


def test_resume_after_a_room_change_starts_at_the_move() -> None:
    """PROTOCOL.txt 10.2: only lines the session would have received, i.e. since it moved in."""
    w = World()
    b = w.join("bob", room="dev")
    w.say(b, "old dev line")
    a = w.join("alice")
    token = w.take(a)[0]["resume"]
    w.send(a, p.Join("dev"))
    w.say(b, "new dev line")
    w.lost(a)
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token))
    lines = w.take(a2)
    assert lines[0]["room"] == "dev"
    assert chats(lines) == ["new dev line"]


def test_resume_twice_with_the_same_token() -> None:
    """PROTOCOL.txt 10.3: a resume works any number of times and keeps the same token."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    token = w.take(a)[0]["resume"]
    w.take(b)
    w.lost(a)
    w.say(b, "one")
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token))
    lines = w.take(a2)
    assert chats(lines) == ["one"]
    w.lost(a2)
    w.say(b, "two")
    a3 = w.peer()
    w.send(a3, p.Connect(resume=token, last_id=_last_id(lines)))
    lines = w.take(a3)
    assert lines[0]["resumed"] is True and chats(lines) == ["two"]
    assert w.take(b) == []


def test_resume_while_the_old_connection_is_still_attached() -> None:
    """PROTOCOL.txt 10.3: the old connection is closed without a leave notice."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    token = w.take(a)[0]["resume"]
    w.take(b)
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token))
    assert a in w.closed
    assert w.take(a2)[0]["resumed"] is True
    w.lost(a, None)  # the old socket then closes cleanly: still no leave
    w.lost(a, "connection reset")
    assert w.take(b) == []
    w.say(b, "to the new one")
    assert chats(w.take(a2)) == ["to the new one"]
    assert w.take(a) == []
    w.send(b, p.Who())
    assert w.take(b)[0]["users"] == ["alice", "bob"]


def test_resume_of_an_expired_session_is_a_fresh_join_with_a_notice() -> None:
    """PROTOCOL.txt 10.4: an expired session: fresh join with the name/room given, a notice."""
    w = World(resume_grace=10)
    a, b = w.join("alice"), w.join("bob")
    token = w.take(a)[0]["resume"]
    w.lost(a)
    w.now += 11
    w.expire()
    w.take(b)
    a2 = w.peer()
    w.send(a2, p.Connect(name="alice", room="dev", resume=token, last_id="1"))
    lines = w.take(a2)
    welcome = lines[0]
    assert welcome["resumed"] is False and welcome["name"] == "alice"
    assert welcome["room"] == "dev" and welcome["resume"] and welcome["resume"] != token
    assert "resume" in welcome["notice"]
    assert lines[-1]["type"] == "connect"


def test_resume_with_an_unknown_token_is_a_fresh_join() -> None:
    """PROTOCOL.txt 10.4: an unknown token is a fresh join, and the notice says why."""
    w = World()
    a = w.peer()
    w.send(a, p.Connect(name="alice", resume="n1-99.bogus"))
    welcome = w.take(a)[0]
    assert welcome["resumed"] is False and welcome["name"] == "alice" and welcome["notice"]


def test_resume_with_a_wrong_secret_does_not_take_the_session() -> None:
    """PROTOCOL.txt 10: a token is a secret; a guessed one does not take over a session."""
    w = World()
    a = w.join("alice")
    token = w.take(a)[0]["resume"]
    w.lost(a)
    sid = token.rpartition(".")[0]
    thief = w.peer()
    w.send(thief, p.Connect(name="mallory", resume=sid + ".guess"))
    welcome = w.take(thief)[0]
    assert welcome["resumed"] is False and welcome["name"] == "mallory"


def test_resume_with_a_bad_last_id() -> None:
    """PROTOCOL.txt 7, 10.2: last_id that is not a message id gets bad_id."""
    w = World()
    a = w.join("alice")
    token = w.take(a)[0]["resume"]
    w.lost(a)
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token, last_id="latest"))
    assert only(w.take(a2), "error")["code"] == ErrorCode.BAD_ID
    w.send(a2, p.Connect(resume=token))
    assert w.take(a2)[0]["resumed"] is True


def test_private_inbox_for_resume_is_bounded() -> None:
    """PROTOCOL.txt 8.6: private lines kept for resume are bounded per session."""
    w = World(inbox_size=3)
    a, b = w.join("alice"), w.join("bob")
    lines = w.take(a)
    token, last = lines[0]["resume"], _last_id(lines)
    w.lost(a)
    for i in range(1, 6):
        w.say(b, f"p{i}", to="alice")
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token, last_id=last))
    assert chats(w.take(a2)) == ["p3", "p4", "p5"]


def test_private_lines_kept_for_resume_are_bounded_in_bytes() -> None:
    """PROTOCOL.txt 8.6: per session at most inbox_bytes of private lines (the newest
    kept), in all at most private_memory (the server's oldest go first); a session's
    lines go when it ends."""
    big = "x" * 60_000  # about 120 KB as history counts it: two fit a 256 KiB session
    w = World(private_memory=600_000)
    a, b, c = w.join("alice"), w.join("bob"), w.join("carol")
    tokens = {peer.cid: w.take(peer)[0]["resume"] for peer in (a, b)}
    w.lost(a)
    w.lost(b)
    for i in range(5):
        w.say(c, f"{i}{big}", to="alice")
    alice = w.hub.names[p.name_key("alice")]
    assert [e.message[0] for e in alice.inbox or ()] == ["3", "4"]
    for i in range(5, 8):  # carol keeps her sent lines too: the server's oldest go first
        w.say(c, f"{i}{big}", to="bob")
    inboxes = w.hub.inboxes
    assert inboxes.bytes <= 600_000
    assert alice.inbox is None  # the oldest lines on the server went first
    assert sum(s.inbox_bytes for s in w.hub.sessions.values()) == inboxes.bytes
    a2 = w.peer()
    w.send(a2, p.Connect(resume=tokens[a.cid]))
    assert chats(w.take(a2)) == []
    bob = w.hub.names[p.name_key("bob")]
    assert [e.message[0] for e in bob.inbox or ()] == ["6", "7"]
    w.send(c, p.Disconnect())
    w.send(a2, p.Disconnect())
    w.now += 1000
    w.expire()
    assert inboxes.bytes == 0 and not inboxes.order


def test_detached_session_can_still_be_addressed() -> None:
    """PROTOCOL.txt 10.1: lines for a held session keep going to its private-line inbox."""
    w = World()
    a, b = w.join("alice"), w.join("bob")
    token = w.take(a)[0]["resume"]
    w.lost(a)
    w.take(b)
    w.say(b, "are you there?", to="alice", ref="q")
    assert only(w.take(b), "ack")["ref"] == "q"
    a2 = w.peer()
    w.send(a2, p.Connect(resume=token))
    assert chats(w.take(a2)) == ["are you there?"]


# --------------------------------------------------------------------------- text mode


def test_text_mode_peer_gets_readable_lines() -> None:
    """PROTOCOL.txt 6.1, 6.3: welcome, notices, chat and errors as text, never JSON."""
    w = World()
    b = w.join("bob")
    w.say(b, "earlier line")
    t = w.join("tina", text=True)
    text = w.take_text(t)
    assert text[0] == "* welcome, tina: you are in lobby with bob (/help for commands)"
    assert text[1].endswith("] <bob> earlier line") and text[1].startswith("[")
    assert text[2:] == ["* -- 1 earlier line above --", "* tina joined"]
    w.say(b, "hi")
    assert w.take_text(t) == ["<bob> hi"]
    w.line(t, b"/dance")
    assert w.take_text(t)[0].startswith("! unknown_command: ")
    w.line(t, b"/msg")
    assert w.take_text(t) == ["! bad_field: usage: /msg NAME TEXT"]
    w.line(t, b"/help")
    help_lines = w.take_text(t)
    assert len(help_lines) == len(p.TEXT_COMMANDS) and all(h.startswith("* /") for h in help_lines)
    w.line(t, b"/who")
    assert w.take_text(t) == ["* lobby: bob, tina"]
    w.take(b)
    w.line(t, b"//slash")
    assert only(w.take(b), "message")["message"] == "/slash"
    w.line(t, b"/nick tanya")
    assert w.take_text(t) == ["* tina is now known as tanya"]
    w.line(t, b"/quit")
    assert t in w.closed
    assert only(w.take(b), "disconnect")["name"] == "tanya"


def test_text_mode_sees_json_users_and_the_other_way_round() -> None:
    """PROTOCOL.txt 6.3: JSON users see text-mode users as ordinary users."""
    w = World()
    t = w.join("tina", text=True)
    b = w.join("bob")
    w.take(b), w.take_text(t)
    w.line(t, "안녕 👋".encode())
    msg = only(w.take(b), "message")
    assert (msg["name"], msg["message"]) == ("tina", "안녕 👋")
    w.line(b, '{"type":"message","message":"반가워"}'.encode())
    assert w.take_text(t) == ["<bob> 반가워"]


# --------------------------------------------------------------------------- robustness

RAW_LINES = st.one_of(
    st.binary(max_size=120),
    st.builds(lambda kind, key, value: json.dumps({"type": kind, key: value, "message": "x"}
                                                  ).encode(),
              st.sampled_from(["message", "connect", "join", "nick", "history", "who"]),
              st.sampled_from(["to", "ref", "name", "room", "resume", "last_id", "before",
                               "after", "message"]),
              st.text(st.characters(codec=None), max_size=8)
              | st.sampled_from(["\ud800", "a\udfff", "bob", "BOB\ud83d", "n1-1.\ud800"])),
)


def _check_deliveries(w: World) -> None:
    for updates in w.inbox.values():
        for update in updates:
            for data in ((update,) if isinstance(update, bytes)
                         else (p.encode_json(update), p.encode_text(update))):
                data.decode("utf-8")  # every byte string sent is UTF-8 text
    w.inbox.clear()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RAW_LINES, min_size=1, max_size=6))
def test_any_line_from_a_joined_user_never_breaks_the_hub(lines: list[bytes]) -> None:
    """PROTOCOL.txt 7: any line gets an answer or an error; the hub raises nothing and every
    delivery is UTF-8 (a lone surrogate from a JSON escape must not break encoding)."""
    w = World()
    w.join("bob")
    a = w.join("alice")
    for raw in lines:
        w.line(a, raw)
        _check_deliveries(w)


@pytest.mark.parametrize("line", [
    b'{"type":"message","message":"x","ref":"\\ud800"}',
    b'{"type":"message","message":"x","to":"\\ud800"}',
    b'{"type":"message","message":"x","to":"bob","ref":"a\\udfff"}',
    b'{"type":"message","message":"","ref":"\\ud800"}',
])
def test_lone_surrogate_in_ref_or_to_does_not_break_encoding(line: bytes) -> None:
    """PROTOCOL.txt 5.3, 7: fields with lone surrogates get an answer that is valid UTF-8."""
    w = World()
    b = w.join("bob")
    a = w.join("alice")
    w.take(a), w.take(b)
    w.line(a, line)
    answer = w.take(a)
    assert len(answer) == 1 and answer[0]["type"] in {"ack", "error"}


def test_resume_token_with_a_lone_surrogate_does_not_break_the_hub() -> None:
    """PROTOCOL.txt 10.4, 3: a token that cannot be one (a lone surrogate from a JSON escape)
    is either an unknown token (a fresh join) or a bad_field, never a crash."""
    w = World()
    a = w.join("alice")
    token = w.take(a)[0]["resume"]
    sid = token.rpartition(".")[0]
    other = w.peer()
    w.line(other, b'{"type":"connect","name":"zed","resume":"' + sid.encode() + b'.\\ud800"}')
    answer = w.take(other)[0]
    if answer["type"] == "welcome":
        assert answer["resumed"] is False and answer["name"] == "zed"
    else:
        assert (answer["type"], answer["code"]) == ("error", "bad_field")


def test_text_mode_name_line_errors_then_retry() -> None:
    """PROTOCOL.txt 6.1: a bad name gets an error and the next line is another try."""
    w = World()
    t = w.peer(text=True)
    w.send(t, p.Connect(name="two words", text=True))
    assert w.take_text(t)[0].startswith("! bad_name: ")
    w.send(t, p.Connect(name="tina", text=True))
    assert w.take_text(t)[0].startswith("* welcome, tina:")


def test_polite_leave_of_text_user_quits() -> None:
    """PROTOCOL.txt 6.2: /quit leaves politely."""
    w = World()
    t = w.join("tina", text=True)
    b = w.join("bob")
    w.take(b)
    w.line(t, b"/quit")
    left = only(w.take(b), "disconnect")
    assert left["name"] == "tina" and "reason" not in left
    assert t in w.closed


def test_a_room_nobody_is_in_is_forgotten_and_its_history_comes_back() -> None:
    """PROTOCOL.txt 8.6: an empty room goes; without a database its lines wait in the
    archive (within its budget) and come back when the room fills again."""
    w = World()
    a = w.join("alice", room="attic")
    w.say(a, "up here")
    w.send(a, p.Join("lobby"))
    w.send(a, p.Part("attic"))
    assert "attic" not in w.hub.rooms and w.hub.archive.rooms.keys() == {"attic"}
    b = w.join("bob", room="attic")
    assert chats(w.take(b)) == ["up here"]  # the join batch
    assert w.hub.archive.rooms == {}


def test_a_held_session_keeps_its_room() -> None:
    w = World()
    a = w.join("alice", room="attic")
    w.lost(a)  # held for resume: still a member
    assert "attic" in w.hub.rooms
    w.now += 1000
    w.expire()
    assert "attic" not in w.hub.rooms


def test_history_in_memory_has_a_total_bound() -> None:
    """PROTOCOL.txt 8.6: past --history-memory the room that grew loses its oldest lines
    first, then the others; the newest line always stays."""
    w = World(history_memory=60_000)
    a, b = w.join("alice", room="one"), w.join("bob", room="two")
    w.say(b, "x" * 10_000)
    for i in range(20):
        w.say(a, f"{i:02d}" + "y" * 5_000)
    assert w.hub.history_bytes <= 60_000
    one = [e.message[:2] for e in w.hub.history.lines["one"]]
    assert one[-1] == "19" and len(one) < 20
    assert len(w.hub.history.lines["two"]) == 1  # the other room kept its line so far
    w.say(a, "z" * 40_000)  # too big for the rest: the other room pays too
    assert w.hub.history_bytes <= 60_000 + 81_000
    assert w.hub.history.lines["one"][-1].message.startswith("z")


@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=40))
@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
def test_history_counts_exactly_what_it_keeps(messages: list[str]) -> None:
    """The count PROTOCOL.txt 8.6's bound reads: each line's entry_cost as it comes, the
    trimmed ones (summed at once, entries_cost) as they go."""
    w = World(history_size=3)
    a = w.join("alice")
    for message in messages:
        w.say(a, message)
    kept = w.hub.history.lines["lobby"]
    assert w.hub.history_bytes == sum(map(entry_cost, kept)) == entries_cost(kept)


def test_the_archive_has_a_budget() -> None:
    w = World(history_memory=4 * 30_000)  # archive: 30,000
    for i in range(5):
        peer = w.join(f"u{i}", room=f"r{i}")
        w.say(peer, "x" * 5_000)
        w.send(peer, p.Disconnect())
    assert len(w.hub.archive.rooms) == 2 and w.hub.archive.bytes <= 30_000
    assert list(w.hub.archive.rooms) == ["r3", "r4"]  # the oldest went first
