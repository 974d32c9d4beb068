"""Unit tests of chatc.words: decisions on codes and fields, the server's prose only shown
(PROTOCOL.txt 7, issue 24 item 4)."""

from __future__ import annotations

import pytest

from chatc.words import words
from chatd import protocol as p

# Messages a client that read prose would have taken apart: numbers, names, "already".
MESSAGES = ("line longer than 1000 bytes; dropped", "no user named zed", "bob is taken",
            "you are in lobby already", "unknown command /x (try /help; // sends a /)")


@pytest.mark.parametrize("code", [e.code for e in p.ERRORS])
def test_the_message_is_shown_never_read(code: str) -> None:
    """Whatever the server says, chatc's sentence is the same but for the message shown
    as it is: so nothing in it decided anything."""
    said = [words(p.Error(code, message)) for message in MESSAGES]
    first = said[0]
    for message, sentence in zip(MESSAGES[1:], said[1:], strict=True):
        assert sentence == first.replace(MESSAGES[0], message), (code, message)


def test_decisions_hang_on_fields() -> None:
    assert words(p.Error("auth_throttled", "x", retry_after=4)) == (
        "too many wrong passwords from your address; wait 4 seconds")
    assert words(p.Error("oper_throttled", "x", retry_after=120)) == (
        "too many wrong operator passwords from your address; wait 2 minutes, then try /oper "
        "again")
    assert words(p.Error("line_too_long", "x", max_line_bytes=1000), limit=65536) == (
        "over the server's limit of 1,000 bytes; shorten it")
    assert words(p.Error("same_name", "x"), name="bob") == "you are bob already"
    assert words(p.Error("name_taken", "x"), name="bob") == "bob is taken; try /nick bob_"
