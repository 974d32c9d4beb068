"""chatc's input line parts (chatc/input.py): no secrets in the history, bounds in bytes."""

from __future__ import annotations

from chatc.input import HISTORY_CHARS, InputHistory, secret


def test_oper_lines_and_their_mistyped_forms_are_secret() -> None:
    assert secret("/oper boss wrongpass")
    assert secret("/oper boss")  # a usage error, but it may hold the password
    assert not secret("/operator is a word")
    assert not secret("hello /oper boss pw")
    assert not secret("//oper boss pw")  # a chat line that starts with /
    assert not secret("/nick oper")


def test_history_keeps_lines_newest_first_without_secrets() -> None:
    history = InputHistory()
    for line in ("one", "/oper boss pw", "two"):
        history.append_string(line)
    assert history.get_strings() == ["one", "two"]


def test_history_is_bounded_in_characters_oldest_first_out() -> None:
    history = InputHistory()
    history.append_string("old")
    history.append_string("x" * (HISTORY_CHARS - 2))
    assert history.get_strings() == ["x" * (HISTORY_CHARS - 2)]
    history.append_string("y" * (HISTORY_CHARS + 1))  # longer than it all: not kept
    assert history.get_strings() == ["x" * (HISTORY_CHARS - 2)]
