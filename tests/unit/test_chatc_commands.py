"""chatc.commands: what a typed line means."""

from __future__ import annotations

import pytest

from chatc import commands as c
from chatd import protocol as p


@pytest.mark.parametrize(("typed", "action"), [
    ("hello", c.Say("hello")),
    ("  spaced  ", c.Say("  spaced  ")),
    ("안녕하세요", c.Say("안녕하세요")),
    ("//etc/hosts is a file", c.Say("/etc/hosts is a file")),
    ("/msg bob hi there", c.Say("hi there", to="bob")),
    ("/MSG bob hi", c.Say("hi", to="bob")),
    ("/who", c.Send(p.Who())),
    ("/who all", c.Send(p.Who(all=True))),
    ("/rooms", c.Send(p.Rooms())),
    ("/join dev", c.Send(p.Join("dev"))),
    ("/nick 민수", c.Send(p.Nick("민수"))),
    ("/help", c.Help()),
    ("/quit", c.Quit()),
    ("/part", c.Window(part=True)),
    ("/PART dev", c.Window(room="dev", part=True)),
    ("/win 3", c.Window(number=3)),
    ("/switch dev", c.Window(room="dev")),
    ("/query bob", c.Window(query="bob")),
])
def test_lines_and_commands(typed: str, action: c.Action) -> None:
    assert c.parse(typed) == action


@pytest.mark.parametrize("typed", ["", "   ", "\t"])
def test_blank_lines_are_not_sent(typed: str) -> None:
    assert c.parse(typed) is None


@pytest.mark.parametrize(("typed", "usage"), [
    ("/join", "usage: /join ROOM"),
    ("/join two words", "usage: /join ROOM"),
    ("/nick", "usage: /nick NAME"),
    ("/msg bob", "usage: /msg NAME TEXT"),
    ("/msg", "usage: /msg NAME TEXT"),
    ("/who two rooms", "usage: /who [ROOM|all]"),
    ("/part a b", "usage: /part [ROOM]"),
    ("/win", "usage: /win N"),
    ("/win two", "usage: /win N"),
    ("/win ３", "usage: /win N"),
    ("/switch", "usage: /switch ROOM"),
    ("/query", "usage: /query NAME"),
])
def test_mistyped_commands_get_their_usage(typed: str, usage: str) -> None:
    assert c.parse(typed) == c.Bad(usage)


def test_unknown_command_says_how_to_send_a_slash() -> None:
    bad = c.parse("/frobnicate now")
    assert isinstance(bad, c.Bad)
    assert bad.message == ("/frobnicate is not a command; /help lists them, and //frobnicate "
                           "sends it as text")


def test_help_lists_exactly_the_commands_that_parse() -> None:
    """The operator commands too (PROTOCOL.txt 15), with their arguments filled in."""
    fill = {"NAME": "bob", "PASSWORD": "pw", "TEXT": "hi", "ROOM": "dev",
            "ADDRESS": "192.0.2.1", "[TIME]": "2h", "[REASON]": "spam", "[N]": "5",
            "[all]": "all"}
    for usage, _ in c.HELP + c.OPER_HELP:
        if usage == "//text":
            continue
        example = " ".join(fill.get(word, word) for word in usage.split())
        assert not isinstance(c.parse(example), c.Bad), usage


def test_oper_takes_the_rest_of_the_line_as_the_password() -> None:
    """PROTOCOL.txt 6.2, 15.1: as at nc, a passphrase with spaces (CHATD_OPERS='alice:long
    secret') is typed as it is."""
    assert c.parse("/oper alice long secret") == c.Send(p.Oper("alice", "long secret"))
