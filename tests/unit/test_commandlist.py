"""Unit tests of the one list of typed commands (chatd.protocol.commandlist)."""

from __future__ import annotations

import json

from chatd import protocol as p

FILL = {"NAME": "bob", "PASSWORD": "pw", "TEXT": "hi", "ROOM": "dev", "ADDRESS": "192.0.2.1",
        "[TIME]": "2h", "[REASON]": "spam", "[N]": "5", "[all]": "all"}


def test_every_listed_command_parses_as_listed() -> None:
    for command in p.COMMANDS:
        example = " ".join(FILL.get(w, w) for w in command.usage.split())
        event = p.parse_text_line(example.encode())
        assert event is not None, command.usage


def test_nc_and_chatc_list_the_table() -> None:
    from chatc import commands

    everyone = [c.usage for c in p.COMMANDS if not c.oper]
    assert list(p.TEXT_COMMANDS) == everyone == [u for u, _ in commands.HELP]
    assert list(p.OPER_COMMANDS) == [u for u, _ in commands.OPER_HELP]


def test_the_page_gets_the_same_table_as_a_module() -> None:
    text = p.commands_js().decode()
    prefix, suffix = "export const COMMANDS = Object.freeze(", ");\n"
    assert text.startswith(prefix) and text.endswith(suffix)
    entries = json.loads(text[len(prefix):-len(suffix)])
    assert [(e["usage"], e["help"], e["oper"]) for e in entries] == [
        (c.usage, c.help, c.oper) for c in p.COMMANDS]
