"""Server updates: what the server sends (PROTOCOL.txt section 4), both ways.

An *update* is a value (Welcome, Chat, Joined, ...; `values.value`: frozen for mypy, a
plain slotted dataclass at run time), one per server line type; `Update` is their union.
Their JSON codec (wire.py: `encode_json`, and `decode_update` for clients, lenient: a
line it does not know is `Unknown`) is driven by their declarations in serverlines.py.
Text mode renders the same updates for people (textmode.py).

A new update type joins the `Update` union and is declared in serverlines.SERVER_LINES (a unit
test fails otherwise); mypy reports the renderers' `match` statements that do not handle
it (`text_lines` in textmode.py, chatc), through their `assert_never`.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, TypeAlias

from chatd.protocol.constants import VERSION
from chatd.protocol.errors import ProtocolError
from chatd.protocol.values import value


@value
class Welcome:
    name: str
    room: str
    users: tuple[str, ...]
    resume: str = ""
    resumed: bool = False
    notice: str | None = None
    version: int = VERSION
    server: str = "chatd"
    max_line_bytes: int = 0  # the server's line limit (1.4); 0: not announced
    topic: str = ""  # the room's topic (15.5)
    opers: tuple[str, ...] = ()  # the operators among `users` (15.1)
    rooms: tuple[str, ...] = ()  # every room of the user, in joining order (17.9)
    max_rooms: int = 0  # rooms a user may be in at once (17.11); 0: not announced
    account: str = ""  # the account logged in to (18.3)
    read: tuple[ReadMark, ...] = ()  # the account's markers in the user's rooms (18.5)
    login_token: str = field(default="", repr=False)  # after a password login (18.3)
    more: int = 0  # users of the room not listed in `users` (4.1: a bound in bytes)


@value
class Chat:
    """A chat line; `to` set means private (then `room` is None)."""

    name: str
    message: str
    id: str = ""
    time: str = ""
    room: str | None = None
    to: str | None = None
    history: bool = False
    mention: bool = False  # the line names its reader (PROTOCOL.txt 18.6)
    own: bool = False  # sent by another device of its reader's account (18.4)


@value
class Joined:
    name: str
    room: str
    message: str
    id: str = ""
    time: str = ""


@value
class Left:
    name: str
    room: str
    message: str
    id: str = ""
    time: str = ""
    reason: str | None = None  # set when the leave was not polite (timeout, lost connection)
    part: bool = False  # left this room only (17.3); otherwise left the server


@value
class Renamed:
    name: str
    old: str
    room: str
    message: str
    id: str = ""
    time: str = ""


@value
class Ack:
    ref: str
    id: str
    time: str


@value
class Error:
    """`until`: when a ban ends ("": permanent; None: not a ban); `retry_after`: seconds
    to wait (the throttles); `max_line_bytes`: the limit a line_too_long went over. What
    a client decides on (PROTOCOL.txt 7)."""

    code: str
    message: str
    ref: str | None = None
    until: str | None = None
    retry_after: int | None = None
    max_line_bytes: int | None = None


def error_of(exc: ProtocolError) -> Error:
    """The error line that answers a refused line."""
    return Error(exc.code, exc.message, exc.ref, exc.until, exc.retry_after,
                 exc.max_line_bytes)


@value
class WhoList:
    """`/who`: one room's users; with `all`, `rooms` maps every room to its users."""

    room: str | None
    users: tuple[str, ...] = ()
    rooms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    more: int = 0  # users not listed (the answer has a bound in bytes, PROTOCOL 4.7)
    opers: tuple[str, ...] = ()  # the operators among the users listed (15.1)


@value
class RoomList:
    rooms: tuple[tuple[str, int], ...]
    more: int = 0  # rooms not listed (the answer has a bound, PROTOCOL 4.8)
    # Not on the wire (a JSON client knows its rooms): what text mode marks (17.10)
    yours: tuple[str, ...] = ()
    current: str = ""


@value
class HistoryEnd:
    room: str
    count: int
    more: bool


@value
class WhoisReply:
    """The answer to whois (4.14): the user's name as they spell it, the first of their
    rooms ("" when in none) and all of them (17.9)."""

    name: str
    room: str
    oper: bool = False
    rooms: tuple[str, ...] = ()  # all their rooms, sorted (17.9)


@value
class Switched:
    """The room one's lines now go to (17.4)."""

    room: str


@value
class Shutdown:
    message: str = "server shutting down"


@value
class ServerPing:
    pass


@value
class ServerPong:
    pass


@value
class Info:
    """Text mode only: lines of help or status meant for a human."""

    lines: tuple[str, ...] = field(default=())


@value
class Topic:
    """A room's topic: changed by `name` (broadcast, with a notice), or as it is (a reply,
    or after a join: `name` empty)."""

    room: str
    topic: str
    name: str = ""
    message: str = ""
    id: str = ""
    time: str = ""


@value
class Opered:
    """Someone in the room became an operator (15.1)."""

    name: str
    room: str
    message: str
    id: str = ""
    time: str = ""


@value
class Notice:
    """A line from the server for one user: an operator action's outcome, a mute (15)."""

    message: str


@value
class ReadMark:
    """How far the account has read a room, and what is unread there (18.5)."""

    room: str
    id: str
    unread: int = 0
    mentions: int = 0


@value
class AccountNote:
    """What became of one's account (18.2, 18.7): registered, password, unregistered."""

    event: str
    account: str
    message: str
    # "info" (18.8): the account's flag, times and devices online
    operator: bool = False
    created: str = ""
    used: str = ""
    devices: int = 0
    # To the device that registered (18.2): its login token, as a login's welcome has it
    login_token: str = field(default="", repr=False)


@value
class BanEntry:
    kind: str  # "name" or "address"
    target: str  # the name or the address / prefix
    until: str = ""  # "" : permanent
    by: str = ""
    reason: str = ""
    time: str = ""


@value
class BanList:
    bans: tuple[BanEntry, ...] = ()


@value
class Unknown:
    """A server line a client does not know; clients ignore it."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


Update: TypeAlias = (
    Welcome
    | Chat
    | Joined
    | Left
    | Renamed
    | Ack
    | Error
    | WhoList
    | RoomList
    | HistoryEnd
    | Shutdown
    | ServerPing
    | ServerPong
    | Info
    | Topic
    | Opered
    | Notice
    | BanList
    | WhoisReply
    | Switched
    | AccountNote
    | ReadMark
    | Unknown
)

