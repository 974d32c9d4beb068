"""The wire codec of PROTOCOL.txt: pure functions and frozen dataclasses, no I/O.

Both chatd and chatc import this module. Client lines are parsed into events
(`parse_json_line`, `parse_text_line`); server updates are dataclasses encoded
once per broadcast (`encode_json`, `encode_text`) and decoded by clients with
`decode_update`. Every failure is a `ProtocolError` carrying a stable code.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - the standard library does the same, slower
    _fast_loads = None

VERSION: Final = 1
DEFAULT_NAME: Final = "익명"
DEFAULT_ROOM: Final = "lobby"
MAX_NAME_CHARS: Final = 32
MAX_REF_CHARS: Final = 64
DEFAULT_MAX_LINE_BYTES: Final = 64 * 1024
HISTORY_PAGE_MAX: Final = 100


class ErrorCode:
    """Stable error codes (PROTOCOL.txt section 7)."""

    BAD_UTF8: Final = "bad_utf8"
    BAD_JSON: Final = "bad_json"
    LINE_TOO_LONG: Final = "line_too_long"
    UNKNOWN_TYPE: Final = "unknown_type"
    UNKNOWN_COMMAND: Final = "unknown_command"
    BAD_FIELD: Final = "bad_field"
    BAD_NAME: Final = "bad_name"
    BAD_ROOM: Final = "bad_room"
    NOT_JOINED: Final = "not_joined"
    ALREADY_JOINED: Final = "already_joined"
    NAME_TAKEN: Final = "name_taken"
    NO_SUCH_USER: Final = "no_such_user"
    BAD_ID: Final = "bad_id"
    RATE_LIMITED: Final = "rate_limited"
    EXCESS_FLOOD: Final = "excess_flood"
    AUTH_FAILED: Final = "auth_failed"
    SERVER_FULL: Final = "server_full"
    TOO_MANY_CONNECTIONS: Final = "too_many_connections"
    REGISTRATION_TIMEOUT: Final = "registration_timeout"
    PING_TIMEOUT: Final = "ping_timeout"
    UNAVAILABLE: Final = "unavailable"
    INTERNAL: Final = "internal_error"


class ProtocolError(Exception):
    """A client line the server cannot accept; answered with an error update."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ProtocolError)
            and (self.code, self.message, self.ref) == (other.code, other.message, other.ref)
        )

    def __hash__(self) -> int:
        return hash((self.code, self.message, self.ref))


# --------------------------------------------------------------------------- framing


class LineTooLong:
    """Marker yielded by `LineSplitter` in place of a line over the limit."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LINE_TOO_LONG"


LINE_TOO_LONG: Final = LineTooLong()


class LineSplitter:
    """Splits a byte stream into lines of at most `max_bytes` (without `\\n` / `\\r\\n`).

    A longer line yields `LINE_TOO_LONG` once, as soon as it passes the limit, and the
    rest of it is discarded up to its newline: the splitter never holds more than
    `max_bytes` of an unfinished line.
    """

    __slots__ = ("_buf", "_skipping", "max_bytes")

    def __init__(self, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = b""
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held now."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        parts = data.split(b"\n")
        tail = parts.pop()
        out: list[bytes | LineTooLong] = []
        limit = self.max_bytes
        if parts:
            first = parts[0]
            if self._skipping:
                self._skipping = False
                parts = parts[1:]
            elif self._buf:
                parts[0] = self._buf + first
            self._buf = b""
            for part in parts:
                line = part[:-1] if part.endswith(b"\r") else part
                out.append(LINE_TOO_LONG if len(line) > limit else line)
        if tail and not self._skipping:
            held = len(self._buf) + len(tail)
            # One byte of slack only for a "\r" that may yet be followed by its "\n".
            if held > limit + 1 or (held == limit + 1 and not tail.endswith(b"\r")):
                out.append(LINE_TOO_LONG)
                self._buf = b""
                self._skipping = True
            else:
                self._buf += tail
        return out


# --------------------------------------------------------------------------- text rules

_C0_C1 = "".join(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)])
# Lone surrogates (from JSON escapes like "\\ud800") cannot be encoded back to UTF-8.
_SURROGATES = "\ud800-\udfff"
_MESSAGE_DROP = re.compile(
    "[" + re.escape(_C0_C1.replace("\n", "").replace("\t", "")) + _SURROGATES + "]"
)
# Bidirectional overrides/isolates can make a name render as someone else's.
_NAME_FORBIDDEN = re.compile(
    "[" + re.escape(_C0_C1) + "\u202a-\u202e\u2066-\u2069\u200e\u200f" + _SURROGATES + "]"
)


def clean_message(text: str) -> str:
    """Message text as delivered: C0/C1 controls other than newline and tab removed."""
    if text.isprintable():
        return text
    return _MESSAGE_DROP.sub("", text)


def _check_label(value: str, what: str, code: str) -> str:
    if len(value) > MAX_NAME_CHARS:
        raise ProtocolError(code, f"{what} is longer than {MAX_NAME_CHARS} characters")
    if _NAME_FORBIDDEN.search(value):
        raise ProtocolError(code, f"{what} contains control characters")
    if any(ch.isspace() for ch in value):
        raise ProtocolError(code, f"{what} cannot contain spaces")
    return value


def normalize_name(raw: str | None) -> str:
    """A requested nickname as the server uses it; blank becomes DEFAULT_NAME."""
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        return DEFAULT_NAME
    return _check_label(name, "name", ErrorCode.BAD_NAME)


def normalize_room(raw: str) -> str:
    """A room name as the server uses it (same rules as names, but not blank)."""
    room = unicodedata.normalize("NFC", raw.strip())
    if not room:
        raise ProtocolError(ErrorCode.BAD_ROOM, "room name is blank")
    return _check_label(room, "room name", ErrorCode.BAD_ROOM)


def name_key(name: str) -> str:
    """Names and rooms are unique without regard to case."""
    return name.casefold()


def name_variant(name: str, n: int) -> str:
    """The n-th free variant of a taken name ("alice" -> "alice2"), within the length limit."""
    suffix = str(n)
    return name[: MAX_NAME_CHARS - len(suffix)] + suffix


# --------------------------------------------------------------------------- client events


@dataclass(frozen=True, slots=True)
class Connect:
    name: str | None = None
    password: str | None = None
    resume: str | None = None
    last_id: str | None = None
    room: str | None = None
    text: bool = False  # joined through plain-text mode


@dataclass(frozen=True, slots=True)
class Message:
    message: str
    to: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


@dataclass(frozen=True, slots=True)
class Join:
    room: str


@dataclass(frozen=True, slots=True)
class Who:
    all: bool = False


@dataclass(frozen=True, slots=True)
class Rooms:
    pass


@dataclass(frozen=True, slots=True)
class Nick:
    name: str


@dataclass(frozen=True, slots=True)
class History:
    before: str | None = None
    after: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    """Text mode only: `/help`."""


Event: TypeAlias = (
    Connect | Message | Disconnect | Join | Who | Rooms | Nick | History | Ping | Pong | Help
)


def decode_utf8(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            ErrorCode.BAD_UTF8, f"line is not valid UTF-8 (byte {exc.start})"
        ) from None


def looks_like_json(line: bytes) -> bool:
    """Decides a connection's mode from its first line (PROTOCOL.txt section 6)."""
    return line.lstrip(b" \t").startswith(b"{")


_LONE_SURROGATE = re.compile("[" + _SURROGATES + "]")


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


def _history(obj: dict[str, Any]) -> History:
    before, after = _opt_str(obj, "before"), _opt_str(obj, "after")
    if before is not None and after is not None:
        raise ProtocolError(ErrorCode.BAD_FIELD, "give 'before' or 'after', not both")
    limit = obj.get("limit", 50)
    if type(limit) is not int or not 1 <= limit <= HISTORY_PAGE_MAX:
        raise ProtocolError(
            ErrorCode.BAD_FIELD, f"field 'limit' must be an integer 1-{HISTORY_PAGE_MAX}"
        )
    return History(before=before, after=after, limit=limit)


def _message(obj: dict[str, Any]) -> Message:
    text, ref = obj.get("message"), obj.get("ref")
    # Most lines are plain printable text, maybe with a short ASCII ref: no checks left.
    if (type(text) is str and text.isprintable() and not text.isspace() and text
            and "to" not in obj and (ref is None or (type(ref) is str and ref.isascii()
                                                     and 0 < len(ref) <= MAX_REF_CHARS))):
        return Message(text, None, ref)
    ref = _ref(obj)
    try:
        text = clean_message(_req_str(obj, "message"))
        if not text.strip():
            raise ProtocolError(ErrorCode.BAD_FIELD, "message is empty")
        return Message(text, to=_opt_str(obj, "to"), ref=ref)
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, ref) from None


def _connect(obj: dict[str, Any]) -> Connect:
    return Connect(
        name=_opt_str(obj, "name"),
        password=_opt_str(obj, "password"),
        resume=_opt_str(obj, "resume"),
        last_id=_opt_str(obj, "last_id"),
        room=_opt_str(obj, "room"),
    )


def _who(obj: dict[str, Any]) -> Who:
    everywhere = obj.get("all", False)
    if not isinstance(everywhere, bool):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'all' must be true or false")
    return Who(all=everywhere)


_PARSERS: Final[dict[str, Callable[[dict[str, Any]], Event]]] = {
    "message": _message,
    "connect": _connect,
    "disconnect": lambda obj: Disconnect(),
    "join": lambda obj: Join(_req_str(obj, "room")),
    "who": _who,
    "rooms": lambda obj: Rooms(),
    "nick": lambda obj: Nick(_req_str(obj, "name")),
    "history": _history,
    "ping": lambda obj: Ping(),
    "pong": lambda obj: Pong(),
}


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


def parse_json_line(line: bytes) -> Event:
    """One client line of JSON mode -> an event, or ProtocolError."""
    obj = _loads(line)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "line is not a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'type' must be a string")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown type {kind[:40]!r}")
    return parser(obj)


TEXT_COMMANDS: Final = {
    "/help": "this list",
    "/who [all]": "who is in this room (or everywhere)",
    "/rooms": "rooms and their user counts",
    "/join ROOM": "move to another room",
    "/nick NAME": "change your name",
    "/msg NAME TEXT": "a private line to one user",
    "/history [N]": "the last N lines of this room again",
    "/quit": "leave",
}


def parse_text_line(line: bytes) -> Event | None:
    """One line of text mode (after the name line) -> an event; None for a blank line."""
    text = decode_utf8(line)
    if not text.strip():
        return None
    if not text.startswith("/") or text.startswith("//"):
        body = clean_message(text[1:] if text.startswith("//") else text)
        return Message(body) if body.strip() else None
    command, _, rest = text.partition(" ")
    command, rest = command.lower(), rest.strip()
    if command == "/quit":
        return Disconnect()
    if command == "/help":
        return Help()
    if command == "/who" and rest.lower() in {"", "all", "*"}:
        return Who(all=bool(rest))
    if command == "/rooms":
        return Rooms()
    if command == "/join" and rest and " " not in rest:
        return Join(rest)
    if command == "/nick" and rest and " " not in rest:
        return Nick(rest)
    if command == "/msg":
        to, _, body = rest.partition(" ")
        body = clean_message(body)
        if to and body.strip():
            return Message(body, to=to)
    if command == "/history":
        if not rest:
            return History()
        if rest.isdigit() and 1 <= int(rest) <= HISTORY_PAGE_MAX:
            return History(limit=int(rest))
    if command in {c.split()[0] for c in TEXT_COMMANDS}:
        usage = next(c for c in TEXT_COMMANDS if c.split()[0] == command)
        raise ProtocolError(ErrorCode.BAD_FIELD, f"usage: {usage}")
    raise ProtocolError(
        ErrorCode.UNKNOWN_COMMAND, f"unknown command {command[:40]} (try /help; // sends a /)"
    )


# --------------------------------------------------------------------------- server updates


_last_time: list[Any] = [-1, ""]  # [millisecond, its text]: many updates share one


def format_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as IRCv3 server-time."""
    ms = int(epoch * 1000)
    if ms != _last_time[0]:
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
        _last_time[:] = ms, stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    text: str = _last_time[1]
    return text


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Welcome:
    name: str
    room: str
    users: tuple[str, ...]
    resume: str = ""
    resumed: bool = False
    notice: str | None = None
    version: int = VERSION
    server: str = "chatd"


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat line; `to` set means private (then `room` is None)."""

    name: str
    message: str
    id: str = ""
    time: str = ""
    room: str | None = None
    to: str | None = None
    history: bool = False


@dataclass(frozen=True, slots=True)
class Joined:
    name: str
    room: str
    message: str
    id: str = ""
    time: str = ""


@dataclass(frozen=True, slots=True)
class Left:
    name: str
    room: str
    message: str
    id: str = ""
    time: str = ""
    reason: str | None = None  # set when the leave was not polite (timeout, lost connection)


@dataclass(frozen=True, slots=True)
class Renamed:
    name: str
    old: str
    room: str
    message: str
    id: str = ""
    time: str = ""


@dataclass(frozen=True, slots=True)
class Ack:
    ref: str
    id: str
    time: str


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class WhoList:
    """`/who`: one room's users; with `all`, `rooms` maps every room to its users."""

    room: str | None
    users: tuple[str, ...] = ()
    rooms: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class RoomList:
    rooms: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class HistoryEnd:
    room: str
    count: int
    more: bool


@dataclass(frozen=True, slots=True)
class Shutdown:
    message: str = "server shutting down"


@dataclass(frozen=True, slots=True)
class ServerPing:
    pass


@dataclass(frozen=True, slots=True)
class ServerPong:
    pass


@dataclass(frozen=True, slots=True)
class Info:
    """Text mode only: lines of help or status meant for a human."""

    lines: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
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
    | Unknown
)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def chat_json(name: str, message: str, room: str, id: str, time: str) -> bytes:
    """A room chat line as JSON, without building an update first: the broadcast path.

    Equal to `encode_json(Chat(name, message, id, time, room=room))`; `id` and `time`
    are made by the server and need no escaping.
    """
    return ('{"type":"message","name":' + _dumps(name) + ',"message":' + _dumps(message)
            + ',"room":' + _dumps(room) + ',"id":"' + id + '","time":"' + time
            + '"}\n').encode()


def to_wire(update: Update) -> dict[str, Any]:
    """The JSON object of an update (fields that are empty/None/False are left out)."""
    if isinstance(update, Chat):
        obj: dict[str, Any] = {"type": "message", "name": update.name, "message": update.message}
        if update.to is not None:
            obj["to"] = update.to
            obj["private"] = True
        else:
            obj["room"] = update.room
        obj["id"], obj["time"] = update.id, update.time
        if update.history:
            obj["history"] = True
        return obj
    if isinstance(update, Joined):
        return {"type": "connect", "name": update.name, "message": update.message,
                "room": update.room, "id": update.id, "time": update.time}
    if isinstance(update, Left):
        obj = {"type": "disconnect", "name": update.name, "message": update.message,
               "room": update.room, "id": update.id, "time": update.time}
        if update.reason is not None:
            obj["reason"] = update.reason
        return obj
    if isinstance(update, Renamed):
        return {"type": "nick", "name": update.name, "old": update.old, "message": update.message,
                "room": update.room, "id": update.id, "time": update.time}
    if isinstance(update, Welcome):
        obj = {"type": "welcome", "version": update.version, "server": update.server,
               "name": update.name, "room": update.room, "users": list(update.users),
               "resume": update.resume, "resumed": update.resumed}
        if update.notice is not None:
            obj["notice"] = update.notice
        return obj
    if isinstance(update, Ack):
        return {"type": "ack", "ref": update.ref, "id": update.id, "time": update.time}
    if isinstance(update, Error):
        obj = {"type": "error", "code": update.code, "message": update.message}
        if update.ref is not None:
            obj["ref"] = update.ref
        return obj
    if isinstance(update, WhoList):
        if update.room is None:
            return {"type": "who", "all": True, "rooms": [
                {"room": room, "users": list(users)} for room, users in update.rooms]}
        return {"type": "who", "room": update.room, "users": list(update.users)}
    if isinstance(update, RoomList):
        return {"type": "rooms",
                "rooms": [{"room": room, "users": count} for room, count in update.rooms]}
    if isinstance(update, HistoryEnd):
        return {"type": "history_end", "room": update.room, "count": update.count,
                "more": update.more}
    if isinstance(update, Shutdown):
        return {"type": "shutdown", "message": update.message}
    if isinstance(update, ServerPing):
        return {"type": "ping"}
    if isinstance(update, ServerPong):
        return {"type": "pong"}
    if isinstance(update, Info):
        return {"type": "info", "lines": list(update.lines)}
    return {"type": update.type, **update.fields}


def encode_json(update: Update) -> bytes:
    """One JSON line, ready for the wire."""
    if type(update) is Chat and update.room is not None and not update.history:
        return chat_json(update.name, update.message, update.room, update.id, update.time)
    return (_dumps(to_wire(update)) + "\n").encode()


# Text mode shows controls in caret notation (ESC -> ^[) and C1 as <U+0085>, so nothing
# from the network can drive the reader's terminal.
_VISIBLE = {c: ("^" + chr(c + 0x40) if c < 0x20 else "^?") for c in range(0x20)}
_VISIBLE[0x7F] = "^?"
_VISIBLE[0x09] = " "
_VISIBLE.update({c: f"<U+{c:04X}>" for c in range(0x80, 0xA0)})
# Bidirectional controls are not C0/C1 controls, yet they can make a line display as
# something else (a name reversed), so they are shown as code points too.
_VISIBLE.update({c: f"<U+{c:04X}>" for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                              *range(0x2066, 0x206A))})
_VISIBLE_TABLE: Final = str.maketrans({chr(c): v for c, v in _VISIBLE.items()})


def visible(text: str) -> str:
    """Text safe for a terminal: no control character survives (newlines included), and
    no bidirectional control that could make it display as something else."""
    return text if text.isprintable() else text.translate(_VISIBLE_TABLE)


def text_lines(update: Update) -> list[str]:
    """The human-readable rendering of an update for a text-mode connection."""
    if isinstance(update, Chat):
        if update.to is not None:
            head = f"*{update.name}* "
        elif update.history:
            head = f"[{update.time[11:19]}] <{update.name}> "
        else:
            head = f"<{update.name}> "
        return [head + visible(part) for part in update.message.split("\n")]
    if isinstance(update, Left) and update.reason:
        return ["* " + visible(f"{update.message} ({update.reason})")]
    if isinstance(update, (Joined, Left, Renamed)):
        return ["* " + visible(update.message)]
    if isinstance(update, Welcome):
        lines = [f"* welcome, {update.name}: you are in {update.room} "
                 f"with {', '.join(update.users)} (/help for commands)"]
        if update.notice:
            lines.append("* " + update.notice)
        return [visible(line) for line in lines]
    if isinstance(update, Error):
        return [f"! {update.code}: {visible(update.message)}"]
    if isinstance(update, WhoList):
        if update.room is None:
            return [f"* {room}: {', '.join(users)}" for room, users in update.rooms]
        return [f"* {update.room}: {', '.join(update.users)}"]
    if isinstance(update, RoomList):
        return [f"* {room} ({count})" for room, count in update.rooms] or ["* no rooms"]
    if isinstance(update, HistoryEnd):
        if not update.count:
            return []
        return [f"* -- {update.count} earlier line{'s' if update.count != 1 else ''} above --"]
    if isinstance(update, Shutdown):
        return ["* " + update.message]
    if isinstance(update, Info):
        return ["* " + visible(line) for line in update.lines]
    return []  # acks, pings and unknowns mean nothing to a person at nc


def encode_text(update: Update) -> bytes:
    lines = text_lines(update)
    return ("".join(line + "\n" for line in lines)).encode() if lines else b""


# --------------------------------------------------------------------------- client side


def _str(obj: dict[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key, default)
    return value if isinstance(value, str) else default


def _names(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def decode_update(line: bytes) -> Update:
    """A server line -> an update, as a client reads it. Lenient: unknown -> Unknown."""
    obj = json.loads(decode_utf8(line))
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "server line is not a JSON object")
    kind = _str(obj, "type")
    common = {"id": _str(obj, "id"), "time": _str(obj, "time")}
    if kind == "message":
        to = obj.get("to") if isinstance(obj.get("to"), str) else None
        room = obj.get("room") if isinstance(obj.get("room"), str) else None
        return Chat(_str(obj, "name"), _str(obj, "message"), room=room, to=to,
                    history=obj.get("history") is True, **common)
    if kind == "connect":
        return Joined(_str(obj, "name"), _str(obj, "room"), _str(obj, "message"), **common)
    if kind == "disconnect":
        reason = obj.get("reason") if isinstance(obj.get("reason"), str) else None
        return Left(_str(obj, "name"), _str(obj, "room"), _str(obj, "message"), reason=reason,
                    **common)
    if kind == "nick":
        return Renamed(_str(obj, "name"), _str(obj, "old"), _str(obj, "room"),
                       _str(obj, "message"), **common)
    if kind == "welcome":
        version = obj.get("version")
        return Welcome(
            _str(obj, "name"), _str(obj, "room"), _names(obj.get("users")),
            resume=_str(obj, "resume"), resumed=obj.get("resumed") is True,
            notice=obj.get("notice") if isinstance(obj.get("notice"), str) else None,
            version=version if type(version) is int else 0, server=_str(obj, "server"))
    if kind == "ack":
        return Ack(_str(obj, "ref"), _str(obj, "id"), _str(obj, "time"))
    if kind == "error":
        ref = obj.get("ref") if isinstance(obj.get("ref"), str) else None
        return Error(_str(obj, "code"), _str(obj, "message"), ref)
    if kind == "who":
        if obj.get("all") is True:
            rooms: list[Any] = obj["rooms"] if isinstance(obj.get("rooms"), list) else []
            return WhoList(None, rooms=tuple(
                (_str(r, "room"), _names(r.get("users"))) for r in rooms if isinstance(r, dict)))
        return WhoList(_str(obj, "room"), _names(obj.get("users")))
    if kind == "rooms":
        rooms = obj["rooms"] if isinstance(obj.get("rooms"), list) else []
        return RoomList(tuple(
            (_str(r, "room"), r["users"] if type(r.get("users")) is int else 0)
            for r in rooms if isinstance(r, dict)))
    if kind == "history_end":
        count = obj.get("count")
        return HistoryEnd(_str(obj, "room"), count if type(count) is int else 0,
                          obj.get("more") is True)
    if kind == "shutdown":
        return Shutdown(_str(obj, "message"))
    if kind == "ping":
        return ServerPing()
    if kind == "pong":
        return ServerPong()
    if kind == "info":
        return Info(_names(obj.get("lines")))
    return Unknown(kind, {k: v for k, v in obj.items() if k != "type"})


def encode_event(event: Event) -> bytes:
    """A client event as a JSON line (what chatc sends)."""
    obj: dict[str, Any]
    if isinstance(event, Message):
        obj = {"type": "message", "message": event.message}
        if event.to is not None:
            obj["to"] = event.to
        if event.ref is not None:
            obj["ref"] = event.ref
    elif isinstance(event, Connect):
        obj = {"type": "connect"}
        for key in ("name", "password", "resume", "last_id", "room"):
            if getattr(event, key) is not None:
                obj[key] = getattr(event, key)
    elif isinstance(event, Join):
        obj = {"type": "join", "room": event.room}
    elif isinstance(event, Who):
        obj = {"type": "who", "all": True} if event.all else {"type": "who"}
    elif isinstance(event, Nick):
        obj = {"type": "nick", "name": event.name}
    elif isinstance(event, History):
        obj = {"type": "history", "limit": event.limit}
        if event.before is not None:
            obj["before"] = event.before
        if event.after is not None:
            obj["after"] = event.after
    else:
        obj = {"type": {Disconnect: "disconnect", Rooms: "rooms", Ping: "ping",
                        Pong: "pong"}[type(event)]}
    return (_dumps(obj) + "\n").encode()
