"""Client events: what a client line means (PROTOCOL.txt section 3).

An *event* is a `value` (Connect, Message, Join, ...), one per client line type, each
declared with its fields in spec.py, whose `parse_json_line` makes one from a JSON line
(with the field checks here) and `encode_event` the way back (what chatc sends). Text
mode makes the same events from typed lines (textmode.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any, Final, TypeAlias

from chatd.protocol.constants import (
    MAX_BAN_SECONDS,
    MAX_REF_CHARS,
)
from chatd.protocol.errors import ErrorCode, ProtocolError
from chatd.protocol.framing import decode_utf8
from chatd.protocol.labels import clean_message
from chatd.protocol.values import value

_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - the standard library does the same, slower
    _fast_loads = None

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@value
class Connect:
    name: str | None = None
    password: str | None = None
    resume: str | None = None
    last_id: str | None = None
    room: str | None = None
    text: bool = False  # joined through plain-text mode
    # An account's password (PROTOCOL.txt 18.3); never in a log line or a traceback.
    login: str | None = field(default=None, repr=False)
    decline: bool = False  # text mode: a blank line at the account's password prompt
    login_token: str | None = field(default=None, repr=False)  # instead of `login` (18.3)


@value
class Message:
    message: str
    to: str | None = None
    ref: str | None = None
    room: str | None = None  # one of the sender's rooms; None: its current room (17.5)


@value
class Disconnect:
    pass


@value
class Join:
    """Add a room to one's rooms, and talk in it (17.2)."""

    room: str


@value
class Part:
    """Leave one room (17.3): `room`, or the current room when None."""

    room: str | None = None


@value
class Switch:
    """Talk in another of one's rooms (17.4)."""

    room: str


@value
class Who:
    all: bool = False
    room: str | None = None  # a room's users; None: the current room (17.6)


@value
class Rooms:
    pass


@value
class Nick:
    name: str


@value
class Whois:
    """Where one user is, and whether an operator (3.10)."""

    name: str


@value
class History:
    before: str | None = None
    after: str | None = None
    limit: int = 50
    room: str | None = None  # one of the asker's rooms; None: the current room (17.6)


@value
class Ping:
    pass


@value
class Pong:
    pass


@value
class Help:
    """Text mode only: `/help`."""


@value
class Oper:
    """Become an operator (PROTOCOL.txt 15.1)."""

    name: str
    password: str = field(repr=False)  # never in a log line or a traceback


@value
class Kick:
    """Remove a user from the server, or (`room`) from one room only (15.2, 17.12):
    `where`, or the operator's current room when None."""

    name: str
    reason: str = ""
    room: bool = False
    where: str | None = None


@value
class Ban:
    """Ban a name (and its look-alikes) or an address or prefix (15.3); `seconds` None:
    permanent."""

    name: str | None = None
    address: str | None = None
    seconds: int | None = None
    reason: str = ""


@value
class Unban:
    name: str | None = None
    address: str | None = None


@value
class Bans:
    pass


@value
class Mute:
    """Refuse a user's lines in a room (their current room unless `room` is given)."""

    name: str
    reason: str = ""
    room: str | None = None


@value
class Unmute:
    """Lift a mute: in `room`, or in every room when None."""

    name: str
    room: str | None = None


@value
class SetTopic:
    """Set the topic of one's room ("" clears it); `topic` None asks for it (15.5)."""

    topic: str | None = None
    room: str | None = None  # that room's topic; None: the current room's (17.6)


@value
class Register:
    """Register one's name as an account (18.2); `name`: before joining."""

    password: str = field(repr=False)
    name: str | None = None


@value
class Password:
    """Change one's account's password (18.7)."""

    password: str = field(repr=False)
    new: str = field(repr=False)


@value
class Logout:
    """Leave as a disconnect does, and revoke this device's login token (18.3)."""


@value
class Unregister:
    """Drop one's own account (18.7)."""

    password: str = field(repr=False)


@value
class AccountAdmin:
    """An operator's look at, or change of, an account (18.8): with no change, its info;
    `operator` sets the flag, `rename` renames it, `drop` drops it."""

    name: str
    operator: bool | None = None
    rename: str | None = None
    drop: bool = False


@value
class Read:
    """The account has read `room` (None: the current room) up to line `id` (18.5)."""

    id: str
    room: str | None = None


ACCOUNT_EVENTS: Final = (Register, Password, Unregister, AccountAdmin, Read, Logout)

Event: TypeAlias = (
    Connect | Message | Disconnect | Join | Part | Switch | Who | Rooms | Nick | History | Ping
    | Pong | Help | Oper | Kick | Ban | Unban | Bans | Mute | Unmute | SetTopic | Whois
    | Register | Password | Unregister | AccountAdmin | Read | Logout
)

MODERATION_EVENTS: Final = (Oper, Kick, Ban, Unban, Bans, Mute, Unmute, SetTopic)


def one_line(text: str, what: str, limit: int) -> str:
    """A reason or a topic: one line of visible text, trimmed, at most `limit` characters."""
    value = " ".join(clean_message(text).split())
    if len(value) > limit:
        raise ProtocolError(ErrorCode.BAD_FIELD, f"{what} is longer than {limit} characters")
    return value


def check_seconds(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 1 <= value <= MAX_BAN_SECONDS:
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'seconds' must be an integer "
                            f"1-{MAX_BAN_SECONDS} (leave it out for a permanent ban)")
    return value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _checked(key: str, value: str) -> str:
    # JSON escapes can smuggle in halves of UTF-16 pairs, which no UTF-8 line can carry
    # back out; the message text drops them (5.3), every other field is refused.
    if key != "message" and not value.isascii() and _LONE_SURROGATE.search(value):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field {key!r} is not valid Unicode")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return _checked(key, value)
    raise ProtocolError(ErrorCode.BAD_FIELD, f"field {key!r} must be a string")


def _req_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, str):
        return _checked(key, value)
    what = "is missing" if value is None else "must be a string"
    raise ProtocolError(ErrorCode.BAD_FIELD, f"field {key!r} {what}")


def _ref(obj: dict[str, Any]) -> str | None:
    ref = obj.get("ref")
    if ref is None:
        return None
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REF_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_FIELD, f"field 'ref' must be a string of 1-{MAX_REF_CHARS} characters"
        )
    return _checked("ref", ref)


def decode_message(obj: dict[str, Any]) -> Message:
    """A JSON chat line (3.2) -> its event: the hot path, so no field table between."""
    text, ref, room = obj.get("message"), obj.get("ref"), obj.get("room")
    # Most lines are plain printable text, maybe with a short ASCII ref and an ASCII room
    # (which the hub normalizes): no checks left.
    if (type(text) is str and text.isprintable() and not text.isspace() and text
            and "to" not in obj and (room is None or (type(room) is str and room.isascii()))
            and (ref is None or (type(ref) is str and ref.isascii()
                                 and 0 < len(ref) <= MAX_REF_CHARS))):
        return Message(text, None, ref, room)
    ref = _ref(obj)
    try:
        text = clean_message(_req_str(obj, "message"))
        if not text.strip():
            raise ProtocolError(ErrorCode.BAD_FIELD, "message is empty")
        return Message(text, to=_opt_str(obj, "to"), ref=ref, room=_opt_str(obj, "room"))
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, ref) from None


def _loads(line: bytes) -> Any:
    """JSON from a client line. orjson takes the common case about 6x faster (measured in
    the benchmark issue); anything it refuses goes through the standard library, so every
    line gets exactly the standard library's verdict (UTF-8, lone surrogates, NaN)."""
    if _fast_loads is not None:
        try:
            return _fast_loads(line)
        except ValueError:
            pass
    text = decode_utf8(line)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON, "line is not valid JSON") from None


# What the JSON codec calls first (spec.parse_json_line): orjson itself, no helper
# between it and the common line; a ValueError from it means `_loads` decides.
_loads_first: Callable[[bytes], Any] = _fast_loads or _loads
