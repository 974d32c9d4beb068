"""The commands people type in text mode (PROTOCOL.txt 6.2, 15): `Command`, and the
parsers of their arguments ("NAME [TIME] [REASON]" -> a Ban).

The client lines (spec.CLIENT_LINES) name their commands with these; textmode.py
dispatches a typed "/word" to them, and a command whose parser answers None gets
"usage: " + its declared syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from chatd.protocol import events as ev
from chatd.protocol.constants import HISTORY_PAGE_MAX, MAX_REASON_CHARS, MAX_TOPIC_CHARS
from chatd.protocol.events import check_seconds, one_line
from chatd.protocol.labels import clean_message

_DURATION = re.compile(r"(\d{1,9})([smhdw])", re.ASCII)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _ban_args(rest: str) -> tuple[str, int | None, str]:
    """"TARGET [TIME] [REASON]" -> (target, seconds or None, reason)."""
    target, _, more = rest.partition(" ")
    first, _, after = more.strip().partition(" ")
    seconds = None
    if (duration := _DURATION.fullmatch(first.lower())) is not None:
        seconds = check_seconds(int(duration[1]) * _UNIT[duration[2]])
        more = after
    return target, seconds, one_line(more, "reason", MAX_REASON_CHARS)


def _name_reason(rest: str) -> tuple[str, str]:
    name, _, reason = rest.partition(" ")
    return name, one_line(reason, "reason", MAX_REASON_CHARS)


def _one_word(rest: str) -> bool:
    return bool(rest) and " " not in rest


def _msg(rest: str) -> ev.Message | None:
    to, _, body = rest.partition(" ")
    body = clean_message(body)
    return ev.Message(body, to=to) if to and body.strip() else None


def _history(rest: str) -> ev.History | None:
    if not rest:
        return ev.History()
    if rest.isdigit() and 1 <= int(rest) <= HISTORY_PAGE_MAX:
        return ev.History(limit=int(rest))
    return None


def _oper(rest: str) -> ev.Oper | None:
    if " " not in rest:
        return None
    # The rest of the line is the password: a passphrase may hold spaces (15.1).
    name, _, password = rest.partition(" ")
    return ev.Oper(name, password.lstrip(" "))


def _register(rest: str) -> ev.Register | None:
    # The rest of the line is the password: a passphrase may hold spaces (18.2).
    return ev.Register(rest) if rest else None


def _password(rest: str) -> ev.Password | None:
    current, _, new = rest.partition(" ")
    return ev.Password(current, new.lstrip(" ")) if current and new.strip() else None


def _account(rest: str) -> ev.AccountAdmin | None:
    words = rest.split()
    match words:
        case [name]:
            return ev.AccountAdmin(name)
        case ["oper", name]:
            return ev.AccountAdmin(name, operator=True)
        case ["deoper", name]:
            return ev.AccountAdmin(name, operator=False)
        case ["rename", name, new]:
            return ev.AccountAdmin(name, rename=new)
        case ["drop", name]:
            return ev.AccountAdmin(name, drop=True)
    return None



def _ban(rest: str, *, address: bool) -> ev.Ban | None:
    if not rest:
        return None
    target, seconds, reason = _ban_args(rest)
    if address:
        return ev.Ban(address=target, seconds=seconds, reason=reason)
    return ev.Ban(name=target, seconds=seconds, reason=reason)


def _who(rest: str) -> ev.Who | None:
    if rest.lower() in {"", "all", "*"}:
        return ev.Who(all=bool(rest))
    return ev.Who(room=rest) if _one_word(rest) else None


def _topic(rest: str) -> ev.SetTopic:
    if not rest:
        return ev.SetTopic(None)
    return ev.SetTopic("" if rest == "-" else one_line(rest, "topic", MAX_TOPIC_CHARS))


_TextParse = Callable[[str], "ev.Event | None"]


@dataclass(frozen=True, slots=True)
class Command:
    """A command as typed in text mode (PROTOCOL.txt 6.2, 15): `parse` gets what follows
    the command word (stripped) and returns the event, or None: "usage: " + `usage`."""

    name: str  # as typed after the "/", e.g. "join"; "/" for "//text"
    args: str  # the arguments' usage, e.g. "NAME [REASON]"; "" for none
    help: str  # one line for /help
    oper: bool = False  # listed only for operators (anyone may type it: not_operator)
    parse: _TextParse | None = field(default=None, compare=False)

    @property
    def usage(self) -> str:
        if self.name == "/":
            return "//text"
        return f"/{self.name} {self.args}" if self.args else f"/{self.name}"

