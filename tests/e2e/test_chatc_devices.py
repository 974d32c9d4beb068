"""chatc as one of several devices of an account (PROTOCOL.txt 18.4), in a real terminal
(tmux) against a real chatd; a JSON client is the user's other device."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.chatc import Screens, status_bar
from tests.support.harness import Chatd, Client, StartChatd, register

PASSWORD = "correct horse"


@pytest.fixture
async def server(start_chatd: StartChatd) -> Chatd:
    return await start_chatd("--rate", "0", "--max-per-ip", "0")


async def _other_device(port: int) -> Client:
    """alice's other device: logged in, up to its own connect notice (18.4)."""
    client = await Client.open(port)
    await client.join("alice", login=PASSWORD)
    return client


def _drawn(coloured: str, message: str) -> str:
    """The SGR codes the name of the chat line `message` is drawn with."""
    found = re.search(r"<((?:\x1b\[[0-9;]*m)+)alice(?:\x1b\[[0-9;]*m)+> *(?:\x1b\[[0-9;]*m)*"
                      + re.escape(message), coloured)
    assert found, (message, coloured)
    return found.group(1)


async def test_a_line_from_another_device_shows_as_the_users_own(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """A line sent from the user's other device ("own": true) shows in its room's window
    drawn as the user's own lines are, is never counted unread (another window's, or a
    private window's) and rings no bell, even naming the user."""
    await register(server.port, "alice", PASSWORD)
    bob = await Client.joined(server.port, "bob")
    alice = await screens.chatc("alice", server.port, "--name", "alice", "--login",
                                env={"XDG_STATE_HOME": str(tmp_path / "state"),
                                     "CHATC_LOGIN": PASSWORD})
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in")
    await alice.enter("/join dev")
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in dev"),
                           "dev shown")
    await alice.enter("typed here")
    await alice.wait_for(r"<alice> typed here")
    phone = await _other_device(server.port)
    await phone.say("alice from my phone", room="lobby", ref="p1")
    await phone.say("psst bob", to="bob", ref="p2")
    await phone.say("phone in dev", room="dev", ref="p3")
    rows = await alice.wait_shown(lambda rows: "<alice> phone in dev" in rows
                                  and "3:*bob*" in status_bar(rows),
                                  "the other device's line in dev, and the bar under it")
    bar = status_bar(rows)
    assert "1:lobby" in bar and "1:lobby(" not in bar, bar  # not unread
    assert "3:*bob*" in bar and "3:*bob*(" not in bar, bar
    coloured = await alice.text(colours=True)
    assert _drawn(coloured, "phone in dev") == _drawn(coloured, "typed here")
    assert not await alice.rang()
    await alice.keys("M-1")
    await alice.wait_shown(lambda rows: "<alice> alice from my phone" in rows, "lobby shown")
    await alice.keys("M-3")
    await alice.wait_shown(lambda rows: "-> *bob* psst bob" in rows, "the private window")
    assert not await alice.rang()
    got = await bob.recv_until(lambda m: m["type"] == "message" and "to" in m)
    assert got[-1]["message"] == "psst bob"
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_chatc_as_a_further_device_opens_the_users_rooms(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.4: chatc logging in while the user is online elsewhere opens a window for each
    of the user's rooms, with their last lines; nobody sees it arrive."""
    await register(server.port, "alice", PASSWORD)
    phone = await _other_device(server.port)
    carol = await Client.joined(server.port, "carol", room="dev")
    await phone.send({"type": "join", "room": "dev"})
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await carol.say("said before chatc", ref="c1")
    await carol.recv("ack")
    alice = await screens.chatc("alice", server.port, "--name", "alice", "--login",
                                "--room", "dev",
                                env={"XDG_STATE_HOME": str(tmp_path / "state"),
                                     "CHATC_LOGIN": PASSWORD})
    await alice.wait_shown(lambda rows: "<carol> said before chatc" in rows
                           and "1:lobby" in status_bar(rows)
                           and "[2:dev]" in status_bar(rows), "both rooms, dev shown")
    await carol.say("hello again", ref="c2")
    seen = await carol.recv_until(lambda m: m["type"] == "ack")
    assert [m["type"] for m in seen] == ["ack"]  # no join of chatc's
    await alice.wait_for(r"<carol> hello again")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_room_joined_on_another_device_gets_a_window_not_shown(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.4: the user joins a room on another device: chatc opens its window, with its
    lines, without showing it; chatc's current room (its lines' room) stays; a part
    there closes the window."""
    await register(server.port, "alice", PASSWORD)
    carol = await Client.joined(server.port, "carol", room="ops")
    alice = await screens.chatc("alice", server.port, "--name", "alice", "--login",
                                env={"XDG_STATE_HOME": str(tmp_path / "state"),
                                     "CHATC_LOGIN": PASSWORD})
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in")
    phone = await _other_device(server.port)
    await phone.send({"type": "join", "room": "ops"})
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await carol.say("welcome to ops", ref="c1")
    await alice.wait_shown(lambda rows: "[1:lobby] 2:ops(1)" in status_bar(rows),
                           "ops opened, lobby still shown")
    await alice.enter("still in lobby")
    got = await phone.recv_until(lambda m: m.get("message") == "still in lobby")
    assert got[-1]["room"] == "lobby" and got[-1]["own"] is True
    await alice.keys("M-2")
    await alice.wait_shown(lambda rows: "<carol> welcome to ops" in rows
                           and status_bar(rows).startswith(" alice in ops"), "ops shown")
    await phone.send({"type": "part", "room": "ops"})
    await alice.wait_shown(lambda rows: "2:ops" not in status_bar(rows), "ops closed")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
