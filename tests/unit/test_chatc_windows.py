"""chatc.windows: one window per room and per private partner (PROTOCOL.txt 17), fed the
server's lines as they arrive on the wire (JSON, decoded by chatd.protocol)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chatc import render
from chatc.actions import Send
from chatc.events import Outgoing
from chatc.session import Session
from chatc.windowlist import LINE_OVERHEAD, Window
from chatc.windows import Windows, names_me, other_room
from chatd import protocol as p


def line(**fields: Any) -> p.Update:
    """A server line as the wire carries it."""
    return p.decode_update(json.dumps(fields).encode() + b"\n")


def welcome(room: str = "lobby", rooms: list[str] | None = None,
            users: list[str] | None = None, version: int = 2) -> p.Welcome:
    obj: dict[str, Any] = {"type": "welcome", "version": version, "name": "alice",
                           "room": room, "users": users or ["alice"], "resume": "t"}
    if rooms is not None:
        obj["rooms"] = rooms
    update = line(**obj)
    assert isinstance(update, p.Welcome)
    return update


def started(rooms: list[str] | None = None, room: str = "lobby",
            users: list[str] | None = None) -> Windows[str]:
    windows: Windows[str] = Windows()
    windows.welcome(welcome(room, rooms or [room], users))
    return windows


def names(windows: Windows[str]) -> list[str]:
    return [w.label for w in windows.windows]


def chat(room: str, name: str, message: str, id: str = "1") -> p.Update:
    return line(type="message", name=name, message=message, room=room, id=id,
                time="2026-01-01T00:00:00Z")


def feed(windows: Windows[str], update: p.Update, text: str = "x") -> list[Window[str]]:
    """As chatc.incoming does: place the update, keep its line in each window it shows in."""
    where = windows.place(update)
    unread = isinstance(update, p.Chat) and not update.history
    for window in where:
        windows.keep(window, text, len(text), unread=unread,
                     mention=windows.is_mention(update))
    return where


def join(windows: Windows[str], room: str, users: list[str]) -> None:
    """The answer to a join, in the server's order (PROTOCOL.txt 17)."""
    windows.joining(room)
    feed(windows, line(type="who", room=room, users=users))
    feed(windows, line(type="message", name="bob", message="old", room=room, id="5",
                       time="t", history=True))
    feed(windows, line(type="history_end", room=room, count=1, more=False))
    feed(windows, line(type="connect", name="alice", room=room, message="alice joined",
                       id="6", time="t"))


# ---------------------------------------------------------------------- the welcome


def test_a_fresh_welcome_opens_its_room_as_window_1() -> None:
    windows = started(users=["alice", "bob"])
    assert names(windows) == ["lobby"]
    assert windows.current is windows.windows[0]
    assert windows.windows[0].users == ["alice", "bob"]
    assert windows.multi and windows.server_room == "lobby"
    assert windows.status() == "[1:lobby]"


def test_a_version_1_welcome_has_one_window_and_no_switch() -> None:
    windows: Windows[str] = Windows()
    windows.welcome(welcome("lobby", rooms=None, version=1))
    assert names(windows) == ["lobby"] and not windows.multi
    private = windows.open_private("bob")
    assert windows.select(private) is None
    assert windows.select(windows.windows[0]) is None


def test_version_1_join_moves_the_one_room_window() -> None:
    windows: Windows[str] = Windows()
    windows.welcome(welcome("lobby", rooms=None, version=1))
    lobby = windows.windows[0]
    windows.joining("dev")
    feed(windows, line(type="who", room="dev", users=["alice", "carol"]))
    assert names(windows) == ["dev"] and windows.windows[0] is lobby
    assert lobby.users == ["alice", "carol"] and windows.current is lobby
    # The old room's notice of one's own leaving does not close the only window.
    feed(windows, line(type="disconnect", name="alice", room="lobby",
                       message="alice left for dev", id="7", time="t"))
    assert names(windows) == ["dev"]


def test_a_resume_gives_every_window_its_members_and_its_missed_lines() -> None:
    """Welcome with several rooms, a who per other room, then the merged replay."""
    windows = started(["lobby", "dev", "ops"], room="dev", users=["alice", "bob"])
    windows.open_private("carol")
    assert names(windows) == ["lobby", "dev", "ops", "*carol*"]
    assert windows.current is windows.room("dev")
    for room, users in (("lobby", ["alice", "dave"]), ("ops", ["alice", "erin"])):
        where = feed(windows, line(type="who", room=room, users=users))
        assert where == [windows.room(room)]  # not shown in the current window
    feed(windows, chat("lobby", "dave", "one", "10"))
    feed(windows, chat("dev", "bob", "two", "11"))
    feed(windows, chat("ops", "erin", "alice: three", "12"))
    feed(windows, line(type="message", name="carol", message="psst", to="alice",
                       private=True, id="13", time="t"))
    dev = windows.room("dev")
    assert dev is not None and dev.users == ["alice", "bob"] and dev.unread == 0
    lobby, ops = windows.room("lobby"), windows.room("ops")
    assert lobby is not None and ops is not None
    assert lobby.users == ["alice", "dave"] and ops.users == ["alice", "erin"]
    assert windows.status() == "1:lobby(1) [2:dev] 3:ops(!1) 4:*carol*(!1)"


def test_a_new_session_after_a_restart_joins_every_room_of_a_window_again() -> None:
    windows = started(["lobby", "dev", "ops", "qa"])
    windows.open_private("bob")
    dev = windows.room("dev")
    assert dev is not None
    windows.select(dev)
    feed(windows, chat("dev", "bob", "before"))
    # The server restarted: a new session, in the room chatc connected to.
    sends = windows.welcome(welcome("lobby", ["lobby"]))
    assert sends == [p.Join("ops"), p.Join("qa"), p.Join("dev")]  # the shown one last
    assert names(windows) == ["lobby", "dev", "ops", "qa", "*bob*"]
    assert windows.current is dev and dev.recent() == ["x"] and dev.users == []
    for room in ("ops", "qa", "dev"):
        where = feed(windows, line(type="who", room=room, users=["alice", "carol"]))
        assert where == [windows.room(room)] and windows.current is dev
    assert dev.users == ["alice", "carol"] and windows.server_room == "dev"
    assert windows.rooms == ["lobby", "ops", "qa", "dev"]


def test_a_new_session_shown_in_its_own_room_switches_back_after_joining_again() -> None:
    windows = started(["lobby", "dev"])
    assert windows.welcome(welcome("lobby", ["lobby"])) == [p.Join("dev"), p.Switch("lobby")]


def test_a_resumed_session_without_a_room_closes_its_window() -> None:
    """Removed from a room while away (an operator's roomkick): nothing to join again."""
    windows = started(["lobby", "dev"])
    resumed = welcome("lobby", ["lobby"])
    sends = windows.welcome(dataclasses.replace(resumed, resumed=True))
    assert sends == [] and names(windows) == ["lobby"]


# ---------------------------------------------------------------------- join and part


def test_join_opens_the_room_window_and_shows_it() -> None:
    windows = started()
    join(windows, "dev", ["bob", "alice"])
    dev = windows.room("dev")
    assert dev is not None and windows.current is dev
    assert names(windows) == ["lobby", "dev"] and windows.server_room == "dev"
    assert dev.recent() == ["x", "x", "x", "x"]  # who, history line, its end, the notice
    assert dev.users == ["bob", "alice"] and dev.unread == 0
    assert windows.rooms == ["lobby", "dev"]


def test_a_refused_join_opens_nothing() -> None:
    windows = started()
    windows.joining("dev")
    feed(windows, line(type="error", code="too_many_rooms", message="too many"))
    feed(windows, line(type="who", room="dev", users=["bob"]))  # a /who dev later
    assert names(windows) == ["lobby"]


def test_an_own_part_closes_the_window_and_shows_the_current_room() -> None:
    windows = started(["lobby", "dev", "ops"], room="ops")
    windows.select(windows.windows[1])  # dev: the server is told
    assert windows.server_room == "dev"
    where = feed(windows, line(type="disconnect", name="alice", room="dev",
                               message="alice left dev", part=True, id="9", time="t"))
    # The server's current room is now the most recently joined one left: ops.
    assert names(windows) == ["lobby", "ops"]
    assert windows.current is windows.room("ops") and where == [windows.current]
    assert windows.server_room == "ops"


def test_a_part_of_another_room_keeps_the_shown_window() -> None:
    windows = started(["lobby", "dev"], room="lobby")
    feed(windows, line(type="disconnect", name="alice", room="dev",
                       message="alice left dev", part=True, id="9", time="t"))
    assert names(windows) == ["lobby"] and windows.current is windows.windows[0]


def test_leaving_the_server_removes_a_user_from_that_rooms_window_only() -> None:
    """One disconnect per room: each takes the user out of its own room's window."""
    windows = started(["lobby", "dev"], users=["alice", "bob"])
    feed(windows, line(type="who", room="dev", users=["alice", "bob"]))
    feed(windows, line(type="disconnect", name="bob", room="dev", message="bob left",
                       id="9", time="t"))
    lobby, dev = windows.room("lobby"), windows.room("dev")
    assert lobby is not None and dev is not None
    assert dev.users == ["alice"] and lobby.users == ["alice", "bob"]


def test_a_rename_comes_once_and_shows_in_every_window_the_user_is_in() -> None:
    windows = started(["lobby", "dev", "ops"], users=["alice", "bob"])
    feed(windows, line(type="who", room="dev", users=["alice", "bob"]))
    feed(windows, line(type="who", room="ops", users=["alice"]))
    talk = windows.open_private("bob")
    where = feed(windows, line(type="nick", name="robert", old="bob", room="lobby",
                               message="bob is now robert", id="9", time="t"))
    assert [w.label for w in where] == ["lobby", "dev", "*robert*"]
    assert talk.name == "robert" and windows.partner("robert") is talk
    for room in ("lobby", "dev"):
        window = windows.room(room)
        assert window is not None and window.users == ["alice", "robert"]


def test_an_own_rename_shows_in_every_room_window() -> None:
    windows = started(["lobby", "dev"])
    where = feed(windows, line(type="nick", name="alicia", old="alice", room="lobby",
                               message="alice is now alicia", id="9", time="t"))
    assert [w.label for w in where] == ["lobby", "dev"] and windows.me == "alicia"


# ---------------------------------------------------------------------- private windows


def test_a_private_line_opens_the_partners_window_without_showing_it() -> None:
    windows = started()
    where = feed(windows, line(type="message", name="Bob", message="hi", to="alice",
                               private=True, id="3", time="t"))
    assert names(windows) == ["lobby", "*Bob*"] and windows.current is windows.windows[0]
    assert where == [windows.windows[1]]
    assert windows.status() == "[1:lobby] 2:*Bob*(!1)"
    # Its own lines, and the same partner in another case, go to the same window.
    assert windows.own(Outgoing("r", "yo", to="bob")) is windows.windows[1]
    feed(windows, line(type="message", name="alice", message="yo", to="BOB",
                       private=True, id="4", time="t"))
    assert len(windows.windows) == 2


def test_own_room_lines_show_in_their_rooms_window() -> None:
    windows = started(["lobby", "dev"])
    assert windows.own(Outgoing("r", "hi", room="dev")) is windows.room("dev")
    assert windows.own(Outgoing("r", "hi")) is windows.room("lobby")  # the current room


def test_private_windows_are_bounded_the_longest_idle_closes() -> None:
    windows: Windows[str] = Windows(max_windows=4)
    windows.welcome(welcome())
    for name in ("a", "b", "c"):
        feed(windows, line(type="message", name=name, message="hi", to="alice",
                           private=True, id=name, time="t"))
    feed(windows, line(type="message", name="a", message="again", to="alice",
                       private=True, id="a2", time="t"))
    feed(windows, line(type="message", name="d", message="hi", to="alice",
                       private=True, id="d", time="t"))
    assert names(windows) == ["lobby", "*a*", "*c*", "*d*"]


# ---------------------------------------------------------------------- switching


def test_selecting_a_room_window_asks_the_server_to_switch_once() -> None:
    windows = started(["lobby", "dev"])
    dev, lobby = windows.room("dev"), windows.room("lobby")
    assert dev is not None and lobby is not None
    feed(windows, chat("dev", "bob", "hi"))
    assert dev.unread == 1
    assert windows.select(dev) == p.Switch("dev")
    assert dev.unread == 0 and windows.status() == "1:lobby [2:dev]"
    talk = windows.open_private("bob")
    assert windows.select(talk) is None  # a private window leaves the room as it is
    assert windows.select(dev) is None  # the server's current room is dev already
    assert windows.select(lobby) == p.Switch("lobby")


def test_the_servers_switch_answer_sets_the_current_room() -> None:
    windows = started(["lobby", "dev"])
    assert feed(windows, line(type="switch", room="dev")) == []
    assert windows.server_room == "dev"


def test_windows_by_number_and_beside() -> None:
    windows = started(["lobby", "dev", "ops"])
    assert windows.select_number(3) is windows.room("ops")
    assert windows.select_number(4) is None and windows.select_number(0) is None
    assert windows.beside(-1) is windows.room("ops")  # round from window 1
    assert windows.beside(1) is windows.room("dev")


# ---------------------------------------------------------------------- lines and marks


@pytest.mark.parametrize(("message", "named"), [
    ("alice: hi", True),
    ("hi ALICE!", True),
    ("(Alice)", True),
    ("alicebob is here", False),
    ("malice", False),
    ("bob", False),
])
def test_a_mention_is_the_name_as_a_word_in_any_case(message: str, named: bool) -> None:
    assert names_me(message, "alice") is named


def test_history_and_own_lines_are_not_unread() -> None:
    windows = started(["lobby", "dev"])
    feed(windows, line(type="message", name="bob", message="alice", room="dev", id="1",
                       time="t", history=True))
    feed(windows, chat("dev", "alice", "me, alice", "2"))
    dev = windows.room("dev")
    assert dev is not None and dev.mentions == 0 and dev.unread == 1


def test_a_windows_lines_are_bounded_in_bytes() -> None:
    budget = 10 * (100 + LINE_OVERHEAD)
    windows: Windows[str] = Windows(budget=budget)
    windows.welcome(welcome())
    window = windows.windows[0]
    for n in range(50):
        windows.keep(window, f"line {n}", 100)
    assert window.size <= budget and len(window.lines) == 10
    assert window.recent()[-1] == "line 49" and window.recent()[0] == "line 40"
    windows.keep(window, "huge", budget * 5)  # one line over the budget is kept alone
    assert window.recent() == ["huge"]


def test_a_topic_answer_shows_where_asked_a_change_in_its_room() -> None:
    windows = started(["lobby", "dev"])
    assert feed(windows, line(type="topic", room="dev", topic="t1")) == [windows.current]
    dev = windows.room("dev")
    assert dev is not None and dev.topic == "t1"
    assert feed(windows, line(type="topic", room="dev", topic="t2", name="bob",
                              message="bob set the topic", id="3", time="t")) == [dev]


# ---------------------------------------------------------------------- line mode


def test_line_mode_marks_lines_of_other_rooms() -> None:
    assert other_room(chat("dev", "bob", "hi"), "lobby") == "dev"
    assert other_room(chat("lobby", "bob", "hi"), "lobby") is None
    assert other_room(line(type="connect", name="bob", room="dev", message="bob joined",
                           id="1", time="t"), "lobby") == "dev"
    assert other_room(line(type="message", name="bob", message="hi", to="alice",
                           private=True, id="1", time="t"), "lobby") is None
    assert other_room(line(type="who", room="dev", users=[]), "lobby") is None
    assert other_room(chat("dev", "bob", "hi"), None) is None


# ---------------------------------------------------------------------- the lines chatc sends


def test_an_own_line_names_its_room_and_is_measured_with_it() -> None:
    session = Session("alice", refs=iter(["r1", "r2"]))
    session.welcomed(welcome("lobby", ["lobby", "dev"]), 0.0)
    line_, actions = session.say("hi", None, 0.0, room="dev")
    assert line_.room == "dev"
    assert actions == [Send(p.Message("hi", ref="r1", room="dev"))]
    assert p.encode_event(p.Message("hi", ref="r1", room="dev")) == (
        b'{"type":"message","message":"hi","ref":"r1","room":"dev"}\n')
    # A private line goes to its person, in no room.
    private, _ = session.say("psst", "bob", 0.0, room="dev")
    assert private.room is None


def test_whois_names_every_room_of_the_user() -> None:
    def said(**fields: Any) -> str:
        return render.render(line(type="whois", **fields), "alice")[0].body.plain

    assert said(name="bob", room="dev", rooms=["dev", "lobby"]) == "bob is in dev, lobby"
    assert said(name="bob", room="lobby", oper=True) == "bob is in lobby (operator)"
    assert said(name="bob", room="") == "bob is in no room"


def test_parting_every_room_leaves_an_empty_window_the_next_join_takes_over() -> None:
    windows = started(["lobby", "dev"])
    for room in ("dev", "lobby"):
        feed(windows, line(type="disconnect", name="alice", room=room,
                           message=f"alice left {room}", part=True, id=room, time="t"))
    assert names(windows) == ["(no room)"] and windows.server_room is None
    empty = windows.current
    assert empty is not None and empty.roomless and empty.recent() == ["x"]
    assert windows.select(empty) is None  # no switch to no room
    join(windows, "ops", ["alice"])
    assert names(windows) == ["ops"] and windows.current is empty
    assert empty.recent() == ["x"] * 5 and windows.server_room == "ops"


def test_a_room_being_left_is_not_open_for_a_join_typed_meanwhile() -> None:
    """/part lobby then /join lobby, typed before the server answered: the join is
    meant, not "you are there already"."""
    windows = started(["lobby", "dev"])
    lobby = windows.room("lobby")
    assert windows.is_open("LOBBY") is lobby
    windows.parting("lobby")
    assert windows.is_open("lobby") is None and windows.room("lobby") is lobby
    windows.joining("lobby")
    feed(windows, line(type="disconnect", name="alice", room="lobby",
                       message="alice left lobby", part=True, id="1", time="t"))
    join(windows, "lobby", ["alice"])
    assert names(windows) == ["dev", "lobby"] and windows.is_open("lobby") is windows.current


def test_a_new_session_in_no_room_before_gets_its_room_in_the_empty_window() -> None:
    windows = started(["lobby"])
    feed(windows, line(type="disconnect", name="alice", room="lobby",
                       message="alice left lobby", part=True, id="1", time="t"))
    assert names(windows) == ["(no room)"]
    assert windows.welcome(welcome("lobby", ["lobby"])) == []
    assert names(windows) == ["lobby"]


def test_removed_from_the_only_room_the_server_puts_one_in_lobby() -> None:
    windows = started(["dev"], room="dev")
    feed(windows, line(type="notice", message="you were removed from dev by olga; "
                                              "you are in lobby now"))
    feed(windows, line(type="disconnect", name="alice", room="dev", part=True, id="1",
                       time="t", message="alice was removed from dev by olga"))
    where = feed(windows, line(type="who", room="lobby", users=["bob", "alice"]))
    lobby = windows.room("lobby")
    assert where == [lobby] and windows.current is lobby and names(windows) == ["lobby"]
    assert lobby is not None and lobby.users == ["bob", "alice"]
    assert windows.server_room == "lobby" and windows.rooms == ["lobby"]
    # A look at a room one is not in opens nothing.
    assert feed(windows, line(type="who", room="ops", users=["carol"])) == [lobby]
    assert names(windows) == ["lobby"]


def test_the_rooms_answer_marks_the_users_rooms() -> None:
    windows = started(["lobby", "dev"])
    answer = windows.marked(line(type="rooms", rooms=[{"room": "dev", "users": 3},
                                                      {"room": "ops", "users": 1}]))
    said = render.render(answer, "alice")[0].body.plain
    assert said == "rooms: dev (3, yours), ops (1)"


def test_the_servers_read_counts_replace_the_windows_but_not_the_shown_ones() -> None:
    """18.5: the welcome's read list and read lines set a room window's unread and
    mention counts (the status bar's "dev(!3)"); the shown window has none."""
    windows = started(["lobby", "dev"])
    assert windows.read(p.ReadMark("dev", "9", unread=3, mentions=1))
    assert "2:dev(!3)" in windows.status()
    assert not windows.read(p.ReadMark("lobby", "9", unread=5))  # shown
    assert windows.read(p.ReadMark("DEV", "12", unread=0))  # read on another device
    assert "2:dev(" not in windows.status()
    assert not windows.read(p.ReadMark("nowhere", "1", unread=2))


def test_a_room_joined_on_another_device_counts_the_unlisted_members() -> None:
    """A crowd's who lists names within 32 KiB and counts the rest in "more" (PROTOCOL.txt
    4.7, 8.13); a room another device of the account joined (18.4) opens a window that
    counts them too, as a room joined here does."""
    windows = started(["lobby"])
    where = feed(windows, line(type="who", room="dev", users=["alice", "bob"], more=300))
    dev = windows.room("dev")
    assert dev is not None and where == [dev] and windows.current is not dev
    assert (dev.users, dev.more) == (["alice", "bob"], 300)


def test_a_status_too_wide_keeps_every_number_and_what_is_unread() -> None:
    """The status bar is one terminal row: with more windows than fit, the quiet ones
    keep only their numbers (for Alt-N), so a window with unread lines never falls off
    the edge, and narrower still only the shown window and those with unread remain."""
    windows = started(["lobby", "engineering", "marketing", "design", "support", "ops"])
    feed(windows, chat("ops", "bob", "hi alice", id="7"))
    full = "[1:lobby] 2:engineering 3:marketing 4:design 5:support 6:ops(!1)"
    assert windows.status() == windows.status(len(full)) == full
    assert windows.status(len(full) - 1) == "[1:lobby] 2 3 4 5 6:ops(!1)"
    assert windows.status(20) == "[1:lobby] 6:ops(!1)"
    assert windows.status(5) == "[1] 6(!1)"
