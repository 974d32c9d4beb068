"""The commands a person types (PROTOCOL.txt 6.2, 15), declared once.

nc's /help (the hub, through textmode), chatc's /help and the page's /help
(`/commands.js`, served by chatd --web) all list this table, so the three clients name
the same commands in the same words. One entry per command as typed; it is the seed of
one declaration per line type (issue 24): the wire type, its fields and the text-mode
parse can join each entry later, and every consumer keeps reading the same table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # as typed after the "/", e.g. "join"; "/" for "//text"
    args: str  # the arguments' usage, e.g. "NAME [REASON]"; "" for none
    help: str  # one line for /help
    oper: bool = False  # listed only for operators (anyone may type it: not_operator)

    @property
    def usage(self) -> str:
        if self.name == "/":
            return "//text"
        return f"/{self.name} {self.args}" if self.args else f"/{self.name}"


COMMANDS: Final = (
    Command("help", "", "this list"),
    Command("who", "[all]", "who is in this room (or everywhere)"),
    Command("rooms", "", "rooms and their user counts"),
    Command("join", "ROOM", "move to another room (it is created if new)"),
    Command("nick", "NAME", "change your name"),
    Command("msg", "NAME TEXT", "a private line to one user"),
    Command("history", "[N]", "the last N lines of this room again"),
    Command("topic", "", "the topic of this room"),
    Command("oper", "NAME PASSWORD", "become an operator"),
    Command("/", "", "send a line that starts with /"),
    Command("quit", "", "leave the chat"),
    Command("kick", "NAME [REASON]", "remove a user from the server", oper=True),
    Command("roomkick", "NAME [REASON]", "remove a user from their room (to lobby)", oper=True),
    Command("ban", "NAME [TIME] [REASON]",
            "ban a name and its look-alikes; TIME like 30m, 2h, 7d", oper=True),
    Command("banip", "ADDRESS [TIME] [REASON]", "ban an address or prefix (IPv6: its /64)",
            oper=True),
    Command("unban", "NAME", "lift a name's ban", oper=True),
    Command("unbanip", "ADDRESS", "lift an address's ban", oper=True),
    Command("bans", "", "the bans in force", oper=True),
    Command("mute", "NAME [REASON]", "refuse a user's lines in their room", oper=True),
    Command("unmute", "NAME", "lift a user's mutes", oper=True),
    Command("topic", "TEXT", "set this room's topic (/topic - clears it)", oper=True),
)


def help_table(*, oper: bool) -> dict[str, str]:
    """Usage -> help line, in /help's order: everyone's commands, or only operators'."""
    return {c.usage: c.help for c in COMMANDS if c.oper == oper}


def commands_js() -> bytes:
    """The table as a JS module for the page (served as /commands.js)."""
    entries = [{**asdict(c), "usage": c.usage} for c in COMMANDS]
    return f"export const COMMANDS = Object.freeze({json.dumps(entries)});\n".encode()
