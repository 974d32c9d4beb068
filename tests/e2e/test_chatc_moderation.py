"""chatc in tmux panes with moderation (PROTOCOL.txt 15): an operator and a user see the
topic in the status bar, operators marked in /who, /help listing the operator commands
for operators only, and a kicked chatc that says why and does not come back."""

from __future__ import annotations

import re

from tests.support.chatc import STAMP, Screens
from tests.support.harness import StartChatd

OPERS = {"CHATD_OPERS": "alice:pw-of-alice"}



def notice(text: str) -> str:
    return rf"{STAMP} \* {re.escape(text)}"


def status_bar(text: str) -> str:
    """The status bar: the row above the input line."""
    rows = [row for row in text.rstrip("\n").split("\n") if row.strip()]
    return rows[-2] if len(rows) >= 2 else ""  # a screen still being drawn has none


async def test_operator_and_user_in_chatc(start_chatd: StartChatd, screens: Screens) -> None:
    server = await start_chatd("--rate", "0", env=OPERS)
    alice = await screens.chatc("alice", server.port, "--name", "alice")
    await alice.wait_for(r"you are alice in lobby")
    await alice.enter("/oper alice pw-of-alice")
    await alice.wait_for(notice("alice is now an operator"))
    await alice.wait_until(lambda t: "@alice in lobby" in status_bar(t), "@alice in status")
    await alice.enter("/topic be nice here")
    await alice.wait_for(notice("alice set the topic: be nice here"))
    await alice.wait_until(lambda t: "topic: be nice here" in status_bar(t), "topic in status")
    await alice.enter("/help")
    await alice.wait_for(r"/kick NAME \[REASON\]\s+remove a user from the server")
    assert "pw-of-alice" not in await alice.text()  # the password is not on the screen

    bob = await screens.chatc("bob", server.port, "--name", "bob")
    await bob.wait_for(notice("topic: be nice here"))
    await bob.wait_until(lambda t: "topic: be nice here" in status_bar(t), "topic in status")
    await bob.enter("/who")
    await bob.wait_for(notice("in lobby: @alice, bob"))
    await bob.enter("/help")
    text = await bob.wait_for(r"/oper NAME PASSWORD\s+become an operator")
    assert "/kick" not in text

    await alice.wait_for(notice("bob joined"))
    await alice.enter("/kick bob spam")
    await alice.wait_for(notice("bob was removed by alice (spam)"))
    await bob.wait_for(r"you were removed from the server by alice \(spam\)")
    assert await bob.exit_status() == 3  # and it did not reconnect
    text = await bob.text()
    assert "reconnecting" not in text
    # Said once (issue 23 item 2), in words: not also as chatc's exit line, nor a code.
    assert len(re.findall(r"removed from the server", text)) == 1, text
    assert re.search(rf"{STAMP} ! you were removed from the server by alice \(spam\)$",
                     text, re.M), text
    assert "kicked" not in text and "chatc:" not in text


async def test_a_ban_is_said_once_and_exits_3(start_chatd: StartChatd, screens: Screens
                                              ) -> None:
    server = await start_chatd("--rate", "0", env=OPERS)
    alice = await screens.chatc("alice", server.port, "--name", "alice")
    await alice.wait_for(r"you are alice in lobby")
    await alice.enter("/oper alice pw-of-alice")
    await alice.wait_for(notice("alice is now an operator"))
    carol = await screens.chatc("carol", server.port, "--name", "carol")
    await carol.wait_for(r"you are carol in lobby")
    await alice.enter("/ban carol 2h flooding")
    assert await carol.exit_status() == 3
    text = await carol.text()
    assert len(re.findall(r"the name carol is banned", text)) == 1, text
    assert "banned)" not in text and "chatc:" not in text and "reconnecting" not in text
    again = await screens.chatc("again", server.port, "--name", "carol")
    assert await again.exit_status() == 3  # a ban keeps carol out: the same status
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_oper_lines_are_not_kept_in_the_input_history(
        start_chatd: StartChatd, screens: Screens) -> None:
    """Issue 23 item 4: Up-arrow brought back `/oper boss wrongpass`."""
    server = await start_chatd("--rate", "0", env=OPERS)
    alice = await screens.chatc("alice", server.port, "--name", "alice")
    await alice.wait_for(r"you are alice in lobby")
    await alice.enter("before the secret")
    await alice.wait_for(rf"{STAMP} <alice> before the secret")
    await alice.enter("/oper boss wrongpass")
    await alice.wait_for(r"oper_failed")
    await alice.enter("/oper alice pw-of-alice")
    await alice.wait_for(notice("alice is now an operator"))
    await alice.keys("Up")
    await alice.wait_until(lambda t: input_row(t) == "lobby> before the secret",
                           "the line before the /oper lines")
    await alice.keys("Up")  # nothing older: it stays
    await alice.keys("Down", "Down")
    await alice.type("typed after")
    text = await alice.wait_until(lambda t: input_row(t) == "lobby> typed after",
                                  "the empty line again")
    assert "wrongpass" not in input_row(text) and "pw-of-alice" not in input_row(text)
    await alice.keys("C-u")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


def input_row(text: str) -> str:
    return [row for row in text.rstrip("\n").split("\n") if row.strip()][-1].rstrip()


async def test_an_operator_is_told_when_a_restart_took_the_status(
        start_chatd: StartChatd, screens: Screens) -> None:
    """15.1: operator status lasts as long as the session, so a server restart (a new
    session, 10.4) ends it; chatc says so and how to get it back, as the page does,
    rather than only dropping the "@" from the status bar."""
    first = await start_chatd("--rate", "0", env=OPERS)
    alice = await screens.chatc("alice", first.port, "--name", "alice")
    await alice.wait_for(r"you are alice in lobby")
    await alice.enter("/oper alice pw-of-alice")
    await alice.wait_until(lambda t: "@alice in lobby" in status_bar(t), "@alice in status")
    await first.stop()
    await alice.wait_for(r"connection lost")
    await start_chatd("--rate", "0", "--port", str(first.port), env=OPERS)
    await alice.wait_for(notice("you are no longer an operator: the server restarted; "
                                "/oper NAME PASSWORD"))  # (the rest wraps)
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
