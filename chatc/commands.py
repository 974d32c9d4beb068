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
# chatc's windows (one per room and per private partner): /part and /switch mean them
# in a terminal (line mode sends them as they are), /win and /query are chatc's own.
WINDOW_HELP: tuple[tuple[str, str], ...] = (
    ("/part [ROOM]", "leave a room (this window's); in a private window: close it"),
    ("/switch ROOM", "show the window of a room you are in"),
    ("/win N", "show window N (also Alt-1..9, Alt-0 for 10, Alt-Left/Right)"),
    ("/query NAME", "open a private window with NAME"),
)
# The terminal's /help: the server's commands with chatc's meaning where it has one.
TERMINAL_HELP: tuple[tuple[str, str], ...] = tuple({**dict(HELP), **dict(WINDOW_HELP)}.items())


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """A command the server answers (who, rooms, join, nick)."""

    event: p.Event


@dataclass(frozen=True, slots=True)
class Window:
    """A choice of window: number N, a room's (`room`), a partner's (`query`), or
    leaving a room (`part`: `room`, None for the shown window's)."""

    number: int | None = None
    room: str | None = None
    query: str | None = None
    part: bool = False


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


Action: TypeAlias = Say | Send | Window | Quit | Help | Bad


def _windows(command: str, rest: str) -> Action | None:
    """chatc's own commands (WINDOW_HELP); None: not one of them."""
    words_ = rest.split()
    if command == "/part":
        return Window(room=words_[0], part=True) if len(words_) == 1 else (
            Window(part=True) if not words_ else Bad("usage: /part [ROOM]"))
    if command == "/win":
        if len(words_) == 1 and words_[0].isdigit() and words_[0].isascii():
            return Window(number=int(words_[0]))
        return Bad("usage: /win N")
    if command == "/switch":
        return Window(room=words_[0]) if len(words_) == 1 else Bad("usage: /switch ROOM")
    if command == "/query":
        return Window(query=words_[0]) if len(words_) == 1 else Bad("usage: /query NAME")
    return None


def parse(line: str) -> Action | None:
    """A line as typed (without its newline); None for a blank line.

    The codec's text-mode parser (the one nc users' lines go through) decides what a
    line means, so chatc and nc understand the same commands the same way.
    """
    command, _, rest = line.partition(" ")
    if (mine := _windows(command.lower(), rest)) is not None:
        return mine
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
