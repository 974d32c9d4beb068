"""chatc with several rooms at once (PROTOCOL.txt 17, issue 25): one window per room and
per private partner, in a real terminal (tmux) against a real chatd; JSON clients as the
other people. What is checked is what a person sees: the visible rows of the pane (the
scrollback also holds what other windows drew before a switch)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.chatc import (
    STAMP,
    Proxy,
    Screen,
    Screens,
    finish,
    line,
    read_until,
    spawn,
    status_bar,
)
from tests.support.harness import Chatd, Client, StartChatd


def shows(rows: str, name: str, text: str) -> bool:
    return re.search(line(name, text), rows) is not None


async def status(screen: Screen, expected: str) -> str:
    """Wait until the status bar starts with `expected`; the visible rows."""
    return await screen.wait_shown(lambda rows: status_bar(rows).startswith(expected),
                                   f"status bar {expected!r}")


async def in_rooms(port: int, name: str, *rooms: str) -> Client:
    """A JSON client in lobby and then `rooms`, each join's answer read."""
    client = await Client.joined(port, name)
    for room in rooms:
        await client.send({"type": "join", "room": room})
        await client.recv_until(joined(name, room))
    return client


def joined(name: str, room: str) -> Any:
    return lambda m: m["type"] == "connect" and m["name"] == name and m.get("room") == room


async def speak(client: Client, text: str, **fields: Any) -> None:
    """Say `text` and wait for the server to take it (its ack)."""
    await client.say(text, ref=text[:64], **fields)
    await client.recv_until(lambda m: m["type"] == "ack" and m["ref"] == text[:64])


def said(text: str) -> Any:
    return lambda m: m["type"] == "message" and m.get("message") == text


async def test_join_opens_a_window_and_typing_goes_to_the_shown_windows_room(
        chatd: Chatd, screens: Screens) -> None:
    bob = await in_rooms(chatd.port, "bob", "dev")
    await speak(bob, "earlier in dev", room="dev")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await status(alice, " alice in lobby · 2 here · 127.0.0.1")
    await alice.enter("/join dev")
    rows = await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")
    await alice.wait_shown(
        lambda r: shows(r, "bob", "earlier in dev") and r.rstrip().endswith("\ndev>"),
        "dev's history above dev's input line")
    await alice.enter("hello dev")
    got = await bob.recv_until(said("hello dev"))
    assert got[-1]["room"] == "dev"

    await alice.keys("M-1")  # Alt-1: the lobby's window, its own lines
    rows = await status(alice, " alice in lobby · 2 here · [1:lobby] 2:dev · ")
    assert "hello dev" not in rows and rows.rstrip().endswith("\nlobby>")
    await alice.enter("hello lobby")
    got = await bob.recv_until(said("hello lobby"))
    assert got[-1]["room"] == "lobby"
    # The server's current room followed the window (switch): /who answers for lobby.
    await alice.enter("/who")
    await alice.wait_shown(lambda r: re.search(rf"{STAMP} \* in lobby: ", r) is not None,
                           "who of lobby")

    await speak(bob, "busy in dev", room="dev")
    await status(alice, " alice in lobby · 2 here · [1:lobby] 2:dev(1) · ")
    await speak(bob, "ALICE: look here", room="dev")  # names her: marked
    rows = await status(alice, " alice in lobby · 2 here · [1:lobby] 2:dev(!2) · ")
    assert "busy in dev" not in rows and "look here" not in rows

    await alice.enter("/win 2")
    rows = await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")
    rows = await alice.wait_shown(lambda r: shows(r, "bob", "ALICE: look here"), "dev again")
    assert shows(rows, "alice", "hello dev") and shows(rows, "bob", "busy in dev")
    assert "hello lobby" not in rows
    await alice.enter("/who")
    await alice.wait_shown(lambda r: re.search(rf"{STAMP} \* in dev: ", r) is not None,
                           "who of dev")
    await alice.keys("M-Left")
    rows = await status(alice, " alice in lobby · 2 here · [1:lobby] 2:dev · ")
    assert shows(rows, "alice", "hello lobby") and "busy in dev" not in rows
    await alice.keys("M-Right")
    await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")

    await alice.enter("/part")
    got = await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alice")
    assert got[-1]["room"] == "dev" and got[-1].get("part") is True
    rows = await status(alice, " alice in lobby · 2 here · 127.0.0.1")  # one window again
    assert shows(rows, "alice", "hello lobby")
    await alice.enter("/part dev")
    await alice.wait_shown(lambda r: "! you are not in dev" in r, "not in dev")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_private_window_per_partner(chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob")
    carol = await Client.joined(chatd.port, "carol")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await status(alice, " alice in lobby · 3 here · 127.0.0.1")
    await speak(bob, "psst [bold]x[/]", to="alice")
    rows = await status(alice, " alice in lobby · 3 here · [1:lobby] 2:*bob*(!1) · ")
    assert "psst" not in rows
    await alice.keys("M-2")
    rows = await status(alice, " alice with bob · 1:lobby [2:*bob*] · ")
    assert re.search(rf"{STAMP} \*bob\* psst \[bold\]x\[/\]", rows)  # not markup
    assert rows.rstrip().endswith("\n*bob*>")
    await alice.enter("back at you")
    got = await bob.recv_until(said("back at you"))
    assert got[-1].get("to") == "bob" and got[-1].get("private") is True
    await alice.wait_shown(lambda r: re.search(rf"{STAMP} -> \*bob\* back at you", r)
                           is not None, "own private line")
    # /msg from here opens carol's window without leaving this one.
    await alice.enter("/msg carol hi carol")
    await carol.recv_until(said("hi carol"))
    await status(alice, " alice with bob · 1:lobby [2:*bob*] 3:*carol* · ")
    await speak(carol, "hi alice", to="alice")
    await status(alice, " alice with bob · 1:lobby [2:*bob*] 3:*carol*(!1) · ")
    await alice.enter("/part")  # closes a private window; nothing is sent
    await status(alice, " alice in lobby · 3 here · [1:lobby] 2:*carol*(!1) · ")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_each_windows_members_follow_joins_leaves_and_renames(
        chatd: Chatd, screens: Screens) -> None:
    bob = await in_rooms(chatd.port, "bob", "dev")
    carol = await Client.joined(chatd.port, "carol")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await status(alice, " alice in lobby · 3 here · 127.0.0.1")
    await alice.enter("/join dev")
    await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")
    # One rename line, for every window bob is in.
    await bob.send({"type": "nick", "name": "robert"})
    await bob.recv_until(lambda m: m["type"] == "nick")
    renamed = rf"{STAMP} \* bob is now known as robert"
    await alice.wait_shown(lambda r: re.search(renamed, r) is not None, "rename in dev")
    await alice.keys("M-1")
    await status(alice, " alice in lobby · 3 here · [1:lobby] 2:dev · ")
    await alice.wait_shown(lambda r: re.search(renamed, r) is not None, "rename in lobby")
    # carol leaves the server: lobby's count only.
    await carol.send({"type": "disconnect"})
    await status(alice, " alice in lobby · 2 here · ")
    await alice.keys("M-2")
    await status(alice, " alice in dev · 2 here · ")
    # robert leaves the server: one notice per room, each window loses him.
    await bob.send({"type": "disconnect"})
    rows = await status(alice, " alice in dev · 1 here · ")
    assert re.search(rf"{STAMP} \* robert left", rows)
    await alice.keys("M-1")
    await status(alice, " alice in lobby · 1 here · ")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_line_mode_marks_the_lines_of_other_rooms(chatd: Chatd) -> None:
    bob = await in_rooms(chatd.port, "bob", "dev")
    bot = await spawn("127.0.0.1", str(chatd.port), "--name", "bot")
    await read_until(bot, r" \* bot joined$")
    assert bot.stdin is not None
    bot.stdin.write(b"/join dev\nhi from bot\n")
    await bot.stdin.drain()
    got = await bob.recv_until(said("hi from bot"))
    assert got[-1]["room"] == "dev"  # a join makes the joined room current
    await read_until(bot, rf"^{STAMP} <bot> hi from bot$")
    await speak(bob, "in lobby", room="lobby")
    await speak(bob, "in dev", room="dev")
    await read_until(bot, rf"^\[lobby\] {STAMP} <bob> in lobby$")
    await read_until(bot, rf"^{STAMP} <bob> in dev$")
    bot.stdin.write(b"/switch lobby\nback in lobby\n")
    await bot.stdin.drain()
    got = await bob.recv_until(said("back in lobby"))
    assert got[-1]["room"] == "lobby"
    await speak(bob, "dev again", room="dev")
    await read_until(bot, rf"^\[dev\] {STAMP} <bob> dev again$")
    bot.stdin.close()
    code, _, err = await finish(bot)
    assert (code, err) == (0, "")


async def test_a_resumed_session_has_every_window_right_again(
        chatd: Chatd, screens: Screens) -> None:
    bob = await in_rooms(chatd.port, "bob", "dev")
    proxy = await Proxy(chatd.port).start()
    alice = await screens.chatc("alice", proxy.port, "--name", "alice")
    await status(alice, " alice in lobby · 2 here · ")
    await alice.enter("/join dev")
    await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")
    await bob.recv_until(joined("alice", "dev"))
    proxy.cut()
    await alice.wait_for(r"connection lost")
    await speak(bob, "missed in lobby", room="lobby")
    await speak(bob, "missed in dev", room="dev")
    proxy.restore()
    await alice.wait_for(r"reconnected.*; nothing was lost")
    rows = await status(alice, " alice in dev · 2 here · 1:lobby(1) [2:dev] · ")
    assert shows(rows, "bob", "missed in dev") and "missed in lobby" not in rows
    await alice.keys("M-1")
    rows = await status(alice, " alice in lobby · 2 here · [1:lobby] 2:dev · ")
    assert shows(rows, "bob", "missed in lobby")
    await alice.enter("after the resume")
    got = await bob.recv_until(said("after the resume"))
    assert got[-1]["room"] == "lobby"
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


def as_version_1(raw: bytes) -> bytes:
    """A server line as a version 1 server sends it: a welcome without rooms."""
    line = json.loads(raw)
    if line.get("type") != "welcome":
        return raw
    line["version"] = 1
    line.pop("rooms", None)
    line.pop("max_rooms", None)
    return json.dumps(line).encode() + b"\n"


async def test_a_version_1_welcome_gets_one_room_window(
        chatd: Chatd, screens: Screens) -> None:
    """PROTOCOL.txt 12: chatc still talks to a server of version 1. (A version 2 server
    whose welcome is made to look older: the lines chatc sends show what it thinks.)"""
    bob = await Client.joined(chatd.port, "bob")
    proxy = await Proxy(chatd.port, rewrite=as_version_1).start()
    alice = await screens.chatc("alice", proxy.port, "--name", "alice")
    await status(alice, " alice in lobby · 2 here · 127.0.0.1")
    await alice.enter("hello")
    got = await bob.recv_until(said("hello"))
    assert got[-1]["room"] == "lobby"
    await alice.enter("/part")
    await alice.wait_shown(lambda r: "! this server keeps you in one room at a time" in r,
                           "one room at a time")
    await speak(bob, "psst", to="alice")
    await status(alice, " alice in lobby · 2 here · [1:lobby] 2:*bob*(!1) · ")
    await alice.keys("M-2")  # no switch: a version 1 server has none
    await status(alice, " alice with bob · 1:lobby [2:*bob*] · ")
    await alice.keys("M-1")
    rows = await status(alice, " alice in lobby · 2 here · [1:lobby] 2:*bob* · ")
    assert len(re.findall(rf"{STAMP} ! ", rows)) == 1  # the /part: nothing was refused
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


async def test_after_a_restart_chatc_joins_the_rooms_of_its_windows_again(
        start_chatd: StartChatd, screens: Screens) -> None:
    first = await start_chatd("--rate", "0")
    alice = await screens.chatc("alice", first.port, "--name", "alice")
    await status(alice, " alice in lobby · 1 here · ")
    await alice.enter("/join dev")
    await status(alice, " alice in dev · 1 here · 1:lobby [2:dev] · ")
    await first.stop()
    await alice.wait_for(r"connection lost")
    second = await start_chatd("--rate", "0", "--port", str(first.port))
    # Quick enough, the restart is not timed: "reconnected" without "after Ns".
    await alice.wait_for(r"\* reconnected")
    bob = await in_rooms(second.port, "bob", "dev")
    # Both windows stay; chatc is in both rooms of the new server again.
    await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")
    await speak(bob, "hi lobby", room="lobby")
    await status(alice, " alice in dev · 2 here · 1:lobby(1) [2:dev] · ")
    await alice.keys("M-1")
    rows = await status(alice, " alice in lobby · 2 here · [1:lobby] 2:dev · ")
    assert shows(rows, "bob", "hi lobby")
    await alice.enter("back in lobby")
    got = await bob.recv_until(said("back in lobby"))
    assert got[-1]["room"] == "lobby"
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_after_a_restart_chatc_is_back_in_its_rooms_not_in_a_room_it_left(
        start_chatd: StartChatd, screens: Screens) -> None:
    first = await start_chatd("--rate", "0")
    alice = await screens.chatc("alice", first.port, "--name", "alice")
    await status(alice, " alice in lobby · 1 here · ")
    await alice.enter("/join dev")
    await status(alice, " alice in dev · 1 here · 1:lobby [2:dev] · ")
    await alice.enter("/part")
    await status(alice, " alice in lobby · 1 here · 127.0.0.1")
    await first.stop()
    await alice.wait_for(r"connection lost")
    await start_chatd("--rate", "0", "--port", str(first.port))
    # Quick enough, the restart is not timed: "reconnected" without "after Ns".
    await alice.wait_for(r"\* reconnected")
    await alice.enter("/rooms")
    # One screen shows both: a redraw can catch the lines without the bar under them.
    await alice.wait_shown(
        lambda r: "* rooms: lobby (1, yours)" in r
        and status_bar(r).startswith(" alice in lobby · 1 here · 127.0.0.1"),
        "the rooms, alice in lobby")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_parting_every_room_leaves_an_empty_window_and_private_lines_still_come(
        chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await status(alice, " alice in lobby · 2 here · 127.0.0.1")
    await alice.enter("/part")
    await status(alice, " alice in no room · 127.0.0.1")
    await alice.enter("anyone?")
    await alice.wait_shown(lambda r: "(not_in_room)" in r, "not in a room")
    await speak(bob, "still there?", to="alice")
    await status(alice, " alice in no room · [1:(no room)] 2:*bob*(!1) · ")
    await alice.enter("/join lobby")  # takes window 1 over
    await status(alice, " alice in lobby · 2 here · [1:lobby] 2:*bob*(!1) · ")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_removed_from_the_only_room_chatc_shows_lobby_where_it_was_put(
        start_chatd: StartChatd, screens: Screens) -> None:
    """PROTOCOL.txt 15.2, 17.12: a roomkick out of one's only room puts one in lobby."""
    server = await start_chatd("--rate", "0", env={"CHATD_OPERS": "olga:pw-of-olga"})
    olga = await in_rooms(server.port, "olga", "dev")
    await olga.send({"type": "oper", "name": "olga", "password": "pw-of-olga"})
    await olga.recv_until(lambda m: m["type"] == "oper" and m["name"] == "olga")
    alice = await screens.chatc("alice", server.port, "--name", "alice")
    await status(alice, " alice in lobby · 2 here · 127.0.0.1")
    await alice.enter("/join dev")
    await status(alice, " alice in dev · 2 here · 1:lobby [2:dev] · ")
    await alice.enter("/part lobby")
    await status(alice, " alice in dev · 2 here · 127.0.0.1")  # dev only
    await olga.send({"type": "kick", "name": "alice", "from": "room", "room": "dev"})
    rows = await status(alice, " alice in lobby · 2 here · 127.0.0.1")
    assert re.search(rf"{STAMP} \* alice was removed from dev by olga\n", rows)
    await alice.enter("here now")
    got = await olga.recv_until(said("here now"))
    assert got[-1]["room"] == "lobby"
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_window_with_unread_lines_stays_on_a_status_bar_too_wide(
        chatd: Chatd, screens: Screens) -> None:
    """17: with more windows than the status bar's row holds, the quiet ones keep only
    their numbers, so the window with an unread line, the last, is still there (and the
    server's address after it): the bar was cut at the terminal's edge."""
    rooms = [f"{topic}-discussion-room" for topic in ("backend", "frontend", "design",
                                                      "support", "planning")]
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await status(alice, " alice in lobby")
    for room in rooms:
        await alice.enter(f"/join {room}")
        await status(alice, f" alice in {room}")
    await alice.keys("M-1")
    await status(alice, " alice in lobby · 1 here · [1:lobby]")
    bob = await in_rooms(chatd.port, "bob", rooms[-1])
    await speak(bob, "news", room=rooms[-1])
    rows = await alice.wait_shown(lambda r: f"6:{rooms[-1]}(1)" in status_bar(r),
                                  "the unread window in the bar")
    bar = status_bar(rows)
    assert re.search(r"\[1:lobby\] 2 3 4 5 6:\S+\(1\) · 127\.0\.0\.1:\d+$", bar), bar
