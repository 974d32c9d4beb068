"""chatc in tmux panes with moderation (PROTOCOL.txt 15): an operator and a user see the
topic in the status bar, operators marked in /who, /help listing the operator commands
for operators only, and a kicked chatc that says why and does not come back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.chatc import STAMP, Screens
from tests.support.harness import StartChatd

OPERS = {"CHATD_OPERS": "alice:pw-of-alice"}


@pytest.fixture
async def screens(tmp_path: Path) -> AsyncIterator[Screens]:
    made = Screens(tmp_path)
    yield made
    await made.close()


def notice(text: str) -> str:
    return rf"{STAMP} \* {re.escape(text)}"


def status_bar(text: str) -> str:
    """The status bar: the row above the input line."""
    rows = [row for row in text.rstrip("\n").split("\n") if row.strip()]
    return rows[-2]


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
    assert await bob.exit_status() == 1  # and it did not reconnect
    assert "reconnecting" not in await bob.text()
