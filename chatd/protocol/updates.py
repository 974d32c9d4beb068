"""Server updates: what the server sends (PROTOCOL.txt section 4), both ways.

An *update* is a value (Welcome, Chat, Joined, ...; `values.value`: frozen for mypy, a
plain slotted dataclass at run time), one per server line type; `Update` is their union.
The server encodes one with `encode_json` (once per broadcast; `chat_json` is the
shortcut for the commonest line, on the broadcast path), clients read one back with
`decode_update`, which is lenient: a line it does not know is `Unknown`.
Text mode renders the same updates for people (textmode.py).

A new update type joins the `Update` union; mypy then reports every `match` that does not
handle it (`to_wire` here, `text_lines` in textmode.py), through their `assert_never`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import field
from typing import Any, TypeAlias, assert_never

from chatd.protocol import errors
from chatd.protocol.constants import VERSION
from chatd.protocol.errors import ErrorCode, ProtocolError
from chatd.protocol.framing import decode_utf8
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
    more: int = 0  # with `all`: users not listed (the answer has a bound, PROTOCOL 4.7)
    opers: tuple[str, ...] = ()  # the operators among the users listed (15.1)


@value
class RoomList:
    rooms: tuple[tuple[str, int], ...]
    more: int = 0  # rooms not listed (the answer has a bound, PROTOCOL 4.8)


@value
class HistoryEnd:
    room: str
    count: int
    more: bool


@value
class WhoisReply:
    """The answer to whois (4.14): the user's name as they spell it, their room."""

    name: str
    room: str
    oper: bool = False


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
    or after a move: `name` empty)."""

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
    | Unknown
)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _std_line(obj: dict[str, Any]) -> bytes:
    return (_dumps(obj) + "\n").encode()


_line: Callable[[dict[str, Any]], bytes]
try:
    # orjson writes the same bytes as the standard encoder above (compact, UTF-8 as is,
    # the same escapes; tests compare them) about 4x faster: one line per chat line.
    from orjson import OPT_APPEND_NEWLINE
    from orjson import dumps as _orjson_dumps

    def _line(obj: dict[str, Any]) -> bytes:
        try:
            return _orjson_dumps(obj, option=OPT_APPEND_NEWLINE)
        except TypeError:  # text orjson refuses (a lone surrogate): the same error path
            return _std_line(obj)
except ImportError:  # pragma: no cover - the standard library does the same, slower
    _line = _std_line


def chat_json(name: str, message: str, room: str, id: str, time: str) -> bytes:
    """A room chat line as JSON, without building an update first: the broadcast path.

    Equal to `encode_json(Chat(name, message, id, time, room=room))`.
    """
    return _line({"type": "message", "name": name, "message": message, "room": room,
                  "id": id, "time": time})


def to_wire(update: Update) -> dict[str, Any]:
    """The JSON object of an update (fields that are empty/None/False are left out)."""
    obj: dict[str, Any]
    match update:
        case Chat():
            obj = {"type": "message", "name": update.name, "message": update.message}
            if update.to is not None:
                obj["to"] = update.to
                obj["private"] = True
            else:
                obj["room"] = update.room
            obj["id"], obj["time"] = update.id, update.time
            if update.history:
                obj["history"] = True
            return obj
        case Joined():
            return {"type": "connect", "name": update.name, "message": update.message,
                    "room": update.room, "id": update.id, "time": update.time}
        case Left():
            obj = {"type": "disconnect", "name": update.name, "message": update.message,
                   "room": update.room, "id": update.id, "time": update.time}
            if update.reason is not None:
                obj["reason"] = update.reason
            return obj
        case Renamed():
            return {"type": "nick", "name": update.name, "old": update.old,
                    "message": update.message, "room": update.room, "id": update.id,
                    "time": update.time}
        case Welcome():
            obj = {"type": "welcome", "version": update.version, "server": update.server,
                   "name": update.name, "room": update.room, "users": list(update.users),
                   "resume": update.resume, "resumed": update.resumed}
            if update.notice is not None:
                obj["notice"] = update.notice
            if update.max_line_bytes > 0:
                obj["max_line_bytes"] = update.max_line_bytes
            if update.topic:
                obj["topic"] = update.topic
            if update.opers:
                obj["opers"] = list(update.opers)
            return obj
        case Ack():
            return {"type": "ack", "ref": update.ref, "id": update.id, "time": update.time}
        case Error():
            errors.ERRORS_SENT[update.code] += 1
            obj = {"type": "error", "code": update.code, "message": update.message}
            if update.ref is not None:
                obj["ref"] = update.ref
            if update.until is not None:
                obj["until"] = update.until or None  # null: permanent
            if update.retry_after is not None:
                obj["retry_after"] = update.retry_after
            if update.max_line_bytes is not None:
                obj["max_line_bytes"] = update.max_line_bytes
            return obj
        case WhoList():
            if update.room is None:
                who: dict[str, Any] = {"type": "who", "all": True, "rooms": [
                    {"room": room, "users": list(users)} for room, users in update.rooms]}
                if update.more:
                    who["more"] = update.more
            else:
                who = {"type": "who", "room": update.room, "users": list(update.users)}
            if update.opers:
                who["opers"] = list(update.opers)
            return who
        case RoomList():
            rooms: dict[str, Any] = {"type": "rooms", "rooms": [
                {"room": room, "users": count} for room, count in update.rooms]}
            if update.more:
                rooms["more"] = update.more
            return rooms
        case HistoryEnd():
            return {"type": "history_end", "room": update.room, "count": update.count,
                    "more": update.more}
        case Shutdown():
            return {"type": "shutdown", "message": update.message}
        case ServerPing():
            return {"type": "ping"}
        case ServerPong():
            return {"type": "pong"}
        case Info():
            return {"type": "info", "lines": list(update.lines)}
        case Topic():
            obj = {"type": "topic", "room": update.room, "topic": update.topic}
            if update.name:
                obj.update(name=update.name, message=update.message, id=update.id,
                           time=update.time)
            return obj
        case Opered():
            return {"type": "oper", "name": update.name, "room": update.room,
                    "message": update.message, "id": update.id, "time": update.time}
        case Notice():
            return {"type": "notice", "message": update.message}
        case WhoisReply():
            return {"type": "whois", "name": update.name, "room": update.room,
                    "oper": update.oper}
        case BanList():
            return {"type": "bans", "bans": [
                {"kind": b.kind, "target": b.target, "until": b.until or None, "by": b.by,
                 "reason": b.reason, "time": b.time} for b in update.bans]}
        case Unknown():
            return {"type": update.type, **update.fields}
        case _:
            assert_never(update)


def encode_json(update: Update) -> bytes:
    """One JSON line, ready for the wire."""
    if type(update) is Chat and update.room is not None and not update.history:
        return chat_json(update.name, update.message, update.room, update.id, update.time)
    return _line(to_wire(update))


# --------------------------------------------------------------------------- client side


def _str(obj: dict[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key, default)
    return value if isinstance(value, str) else default


def _opt(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if type(value) is int else 0


def _names(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def decode_update(line: bytes) -> Update:
    """A server line -> an update, as a client reads it. Lenient: unknown -> Unknown."""
    obj = json.loads(decode_utf8(line))
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "server line is not a JSON object")
    kind = _str(obj, "type")
    match kind:
        case "message":
            return Chat(_str(obj, "name"), _str(obj, "message"), _str(obj, "id"),
                        _str(obj, "time"), room=_opt(obj, "room"), to=_opt(obj, "to"),
                        history=obj.get("history") is True)
        case "connect":
            return Joined(_str(obj, "name"), _str(obj, "room"), _str(obj, "message"),
                          _str(obj, "id"), _str(obj, "time"))
        case "disconnect":
            return Left(_str(obj, "name"), _str(obj, "room"), _str(obj, "message"),
                        _str(obj, "id"), _str(obj, "time"), reason=_opt(obj, "reason"))
        case "nick":
            return Renamed(_str(obj, "name"), _str(obj, "old"), _str(obj, "room"),
                           _str(obj, "message"), _str(obj, "id"), _str(obj, "time"))
        case "welcome":
            return Welcome(
                _str(obj, "name"), _str(obj, "room"), _names(obj.get("users")),
                resume=_str(obj, "resume"), resumed=obj.get("resumed") is True,
                notice=_opt(obj, "notice"), version=_int(obj, "version"),
                server=_str(obj, "server"), max_line_bytes=max(_int(obj, "max_line_bytes"), 0),
                topic=_str(obj, "topic"), opers=_names(obj.get("opers")))
        case "ack":
            return Ack(_str(obj, "ref"), _str(obj, "id"), _str(obj, "time"))
        case "error":
            wait, most = obj.get("retry_after"), obj.get("max_line_bytes")
            return Error(_str(obj, "code"), _str(obj, "message"), _opt(obj, "ref"),
                         until=_str(obj, "until") if "until" in obj else None,
                         retry_after=max(wait, 0) if type(wait) is int else None,
                         max_line_bytes=most if type(most) is int and most > 0 else None)
        case "who" if obj.get("all") is True:
            return WhoList(None, rooms=tuple(
                (_str(r, "room"), _names(r.get("users"))) for r in _dicts(obj.get("rooms"))),
                more=max(_int(obj, "more"), 0), opers=_names(obj.get("opers")))
        case "who":
            return WhoList(_str(obj, "room"), _names(obj.get("users")),
                           opers=_names(obj.get("opers")))
        case "rooms":
            return RoomList(tuple(
                (_str(r, "room"), _int(r, "users")) for r in _dicts(obj.get("rooms"))),
                more=max(_int(obj, "more"), 0))
        case "history_end":
            return HistoryEnd(_str(obj, "room"), _int(obj, "count"), obj.get("more") is True)
        case "shutdown":
            return Shutdown(_str(obj, "message"))
        case "ping":
            return ServerPing()
        case "pong":
            return ServerPong()
        case "info":
            return Info(_names(obj.get("lines")))
        case "topic":
            return Topic(_str(obj, "room"), _str(obj, "topic"), _str(obj, "name"),
                         _str(obj, "message"), _str(obj, "id"), _str(obj, "time"))
        case "oper":
            return Opered(_str(obj, "name"), _str(obj, "room"), _str(obj, "message"),
                          _str(obj, "id"), _str(obj, "time"))
        case "notice":
            return Notice(_str(obj, "message"))
        case "whois":
            return WhoisReply(_str(obj, "name"), _str(obj, "room"), obj.get("oper") is True)
        case "bans":
            return BanList(tuple(
                BanEntry(_str(b, "kind"), _str(b, "target"), _str(b, "until"), _str(b, "by"),
                         _str(b, "reason"), _str(b, "time")) for b in _dicts(obj.get("bans"))))
        case _:
            return Unknown(kind, {k: v for k, v in obj.items() if k != "type"})
