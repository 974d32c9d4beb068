"""What a typed line means: a chat line, a private line, a command for the server, or a
local action. Pure; used by the terminal and by line mode alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from chatd import protocol as p

# Only commands that work against chatd; /help prints exactly this list.
HELP: tuple[tuple[str, str], ...] = (
    ("/who [all]", "who is in this room (or in every room)"),
    ("/rooms", "rooms and how many are in each"),
    ("/join ROOM", "move to another room (it is created if new)"),
    ("/nick NAME", "change your name"),
    ("/msg NAME TEXT", "a private line to one user"),
    ("/help", "this list"),
    ("/quit", "leave (Ctrl-D too)"),
    ("//text", "send a line that starts with /"),
)


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


def _usage(command: str) -> Bad:
    usage = next(u for u, _ in HELP if u.split()[0] == command)
    return Bad(f"usage: {usage}")


def parse(line: str) -> Action | None:
    """A line as typed (without its newline); None for a blank line."""
    if not line.strip():
        return None
    if not line.startswith("/"):
        return Say(line)
    if line.startswith("//"):
        return Say(line[1:])
    word, _, rest = line.partition(" ")
    word, rest = word.lower(), rest.strip()
    if word == "/quit":
        return Quit()
    if word == "/help":
        return Help()
    if word == "/who":
        if rest.lower() not in ("", "all", "*"):
            return _usage(word)
        return Send(p.Who(all=bool(rest)))
    if word == "/rooms":
        return Send(p.Rooms())
    if word in ("/join", "/nick"):
        if not rest or " " in rest:
            return _usage(word)
        return Send(p.Join(rest) if word == "/join" else p.Nick(rest))
    if word == "/msg":
        to, _, text = rest.partition(" ")
        if not to or not text.strip():
            return _usage(word)
        return Say(text, to=to)
    return Bad(f"unknown command {word[:40]} (try /help; // sends a line starting with /)")
