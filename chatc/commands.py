"""What a typed line means: a chat line, a private line, a command for the server, or a
local action. Pure; used by the terminal and by line mode alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from chatc.words import words
from chatd import protocol as p

# The same list as nc's and the page's /help (chatd.protocol.spec); operators' commands
# are listed once the user is one (PROTOCOL.txt 15).
HELP: tuple[tuple[str, str], ...] = tuple(p.TEXT_COMMANDS.items())
OPER_HELP: tuple[tuple[str, str], ...] = tuple(p.OPER_COMMANDS.items())


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """A command the server answers (who, rooms, join, nick)."""

    event: p.Event


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Bad:
    """A mistyped command, answered locally."""

    message: str


Action: TypeAlias = Say | Send | Quit | Help | Bad


def parse(line: str) -> Action | None:
    """A line as typed (without its newline); None for a blank line.

    The codec's text-mode parser (the one nc users' lines go through) decides what a
    line means, so chatc and nc understand the same commands the same way.
    """
    try:
        event = p.parse_text_line(line.encode("utf-8", "surrogateescape"))
    except p.ProtocolError as exc:
        if exc.code == p.ErrorCode.UNKNOWN_COMMAND:
            command = line.split(" ", 1)[0].lower()[:40]
            return Bad(words(p.error_of(exc), command=command))
        return Bad(exc.message)  # a usage line says what to type already
    if event is None:
        return None
    if isinstance(event, p.Message):
        return Say(event.message, to=event.to)
    if isinstance(event, p.Disconnect):
        return Quit()
    if isinstance(event, p.Help):
        return Help()
    return Send(event)
