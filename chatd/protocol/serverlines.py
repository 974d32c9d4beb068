"""Every server line of PROTOCOL.txt 4, declared once: its wire name, update class and
fields (`ServerLine`, `SERVER_LINES`).

wire.py builds the JSON codec of updates from these declarations; the converters here
(`out`, `back`, and the `encode`/`decode` of a line whose shape depends on its values)
are where a field's JSON differs from its update's attribute. tests/unit/
test_protocol_spec.py checks that every update class is declared and round-trips.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from chatd.protocol import updates as up
from chatd.protocol.errors import ErrorCode
from chatd.protocol.fields import Field


@dataclass(frozen=True, slots=True)
class ServerLine:
    """A server line: its wire name, update class and fields, which drive its JSON codec
    (chatd.protocol.wire); `encode`/`decode` replace the generic codec for a line whose
    shape depends on its values (a private line, who with "all")."""

    wire: str
    update: type[Any]
    fields: tuple[Field, ...] = ()
    sample: Any = None  # an update of this line, for the consumers' tests
    json: bool = True  # False: sent to text mode only (lines for a person at nc)
    encode: Callable[[Any], dict[str, Any]] | None = None
    decode: Callable[[dict[str, Any]], Any] | None = None


NO_VALUE: Final = object()  # a `back` converter's answer for a value it does not accept


def _str(raw: Any) -> Any:
    return raw if isinstance(raw, str) else NO_VALUE


def _names(raw: Any) -> Any:
    return tuple(v for v in raw if isinstance(v, str)) if isinstance(raw, list) else NO_VALUE


def _dicts(raw: Any) -> list[dict[str, Any]]:
    return [v for v in raw if isinstance(v, dict)] if isinstance(raw, list) else []


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    return max(value, 0) if type(value) is int else 0


def _positive(raw: Any) -> Any:
    return raw if type(raw) is int and raw > 0 else NO_VALUE


def _not_negative(raw: Any) -> Any:
    return max(raw, 0) if type(raw) is int else NO_VALUE


def _until_back(raw: Any) -> Any:
    """A ban's end: a time, or null for a ban without end ("" in the value)."""
    return "" if raw is None else _str(raw)


def _chat_json(update: up.Chat) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "message", "name": update.name, "message": update.message}
    if update.to is not None:
        obj["to"] = update.to
        obj["private"] = True
    else:
        obj["room"] = update.room
    obj["id"], obj["time"] = update.id, update.time
    if update.history:
        obj["history"] = True
    if update.mention:
        obj["mention"] = True
    if update.own:
        obj["own"] = True
    return obj


def _chat_back(obj: dict[str, Any]) -> up.Chat:
    room, to = obj.get("room"), obj.get("to")
    return up.Chat(_text(obj, "name"), _text(obj, "message"), _text(obj, "id"),
                   _text(obj, "time"), room=room if isinstance(room, str) else None,
                   to=to if isinstance(to, str) else None, history=obj.get("history") is True,
                   mention=obj.get("mention") is True, own=obj.get("own") is True)


def _who_json(update: up.WhoList) -> dict[str, Any]:
    if update.room is None:
        who: dict[str, Any] = {"type": "who", "all": True, "rooms": [
            {"room": room, "users": list(users)} for room, users in update.rooms]}
        if update.more:
            who["more"] = update.more
    else:
        who = {"type": "who", "room": update.room, "users": list(update.users)}
        if update.more:
            who["more"] = update.more
    if update.opers:
        who["opers"] = list(update.opers)
    return who


def _who_back(obj: dict[str, Any]) -> up.WhoList:
    opers = _names(obj.get("opers"))
    opers = () if opers is NO_VALUE else opers
    if obj.get("all") is True:
        return up.WhoList(None, rooms=tuple(
            (_text(r, "room"), _names(r.get("users")) if isinstance(r.get("users"), list)
             else ()) for r in _dicts(obj.get("rooms"))),
            more=_count(obj, "more"), opers=opers)
    users = _names(obj.get("users"))
    return up.WhoList(_text(obj, "room"), () if users is NO_VALUE else users,
                      more=_count(obj, "more"), opers=opers)


_ROOMS = Field("rooms", "list", required=True,
               out=lambda rooms: [{"room": room, "users": n} for room, n in rooms],
               back=lambda raw: tuple((_text(r, "room"), _count(r, "users"))
                                      for r in _dicts(raw)))
_BANS = Field("bans", "list", required=True,
              out=lambda bans: [{"kind": b.kind, "target": b.target, "until": b.until or None,
                                 "by": b.by, "reason": b.reason, "time": b.time} for b in bans],
              back=lambda raw: tuple(
                  up.BanEntry(_text(b, "kind"), _text(b, "target"), _text(b, "until"),
                              _text(b, "by"), _text(b, "reason"), _text(b, "time"))
                  for b in _dicts(raw)))

_READ = Field("read", "list",
              out=lambda marks: [{"room": m.room, "id": m.id, "unread": m.unread,
                                  "mentions": m.mentions} for m in marks],
              back=lambda raw: tuple(up.ReadMark(_text(m, "room"), _text(m, "id"),
                                                 _count(m, "unread"), _count(m, "mentions"))
                                     for m in _dicts(raw)))

_CHAT_FIELDS = (Field("name", required=True), Field("message", required=True),
                Field("room", required=True), Field("id", required=True),
                Field("time", required=True))

SERVER_LINES: Final[tuple[ServerLine, ...]] = (
    ServerLine("welcome", up.Welcome, (
        Field("version", "int", required=True), Field("server", required=True),
        Field("name", required=True), Field("room", required=True),
        Field("users", "list", required=True), Field("resume", required=True),
        Field("resumed", "bool", required=True), Field("notice", required=True),
        Field("max_line_bytes", "int", back=_not_negative), Field("topic"),
        Field("opers", "list"), Field("rooms", "list"),
        Field("max_rooms", "int", back=_not_negative), Field("account"), _READ,
        Field("login_token"), Field("more", "int", back=_not_negative)),
        sample=up.Welcome("alice", "lobby", ("alice", "bob"), "tok", notice="hi",
                          max_line_bytes=65536, topic="t", opers=("bob",),
                          rooms=("lobby", "dev"), max_rooms=20, more=3)),
    ServerLine("message", up.Chat, (*_CHAT_FIELDS, Field("to"), Field("private", "bool"),
                                    Field("history", "bool"), Field("mention", "bool"),
                                    Field("own", "bool")),
               sample=up.Chat("bob", "hi", "7", "2026-01-01T00:00:00.000Z", room="lobby"),
               encode=_chat_json, decode=_chat_back),
    ServerLine("connect", up.Joined, _CHAT_FIELDS,
               sample=up.Joined("bob", "lobby", "bob joined", "8", "t")),
    ServerLine("disconnect", up.Left, (*_CHAT_FIELDS, Field("reason", required=True),
                                       Field("part", "bool")),
               sample=up.Left("bob", "lobby", "bob left", "9", "t", reason="timeout")),
    ServerLine("nick", up.Renamed, (*_CHAT_FIELDS, Field("old", required=True)),
               sample=up.Renamed("bo", "bob", "lobby", "bob is now bo", "10", "t")),
    ServerLine("ack", up.Ack, (Field("ref", required=True), Field("id", required=True),
                               Field("time", required=True)),
               sample=up.Ack("r1", "11", "t")),
    ServerLine("error", up.Error, (
        Field("code", required=True), Field("message", required=True),
        Field("ref", required=True),
        # "" (a ban without end) is sent as null; None (not a ban) not at all
        Field("until", required=True, out=lambda until: until or None, back=_until_back),
        Field("retry_after", "int", required=True, back=_not_negative),
        Field("max_line_bytes", "int", required=True, back=_positive)),
        sample=up.Error(ErrorCode.BANNED, "banned", until="2026-01-01T00:00:00.000Z")),
    ServerLine("who", up.WhoList, (Field("room"), Field("users", "list"),
                                   Field("all", "bool"), Field("rooms", "list"),
                                   Field("more", "int"), Field("opers", "list")),
               sample=up.WhoList("lobby", ("alice",), more=2, opers=("alice",)),
               encode=_who_json, decode=_who_back),
    ServerLine("rooms", up.RoomList, (_ROOMS, Field("more", "int", back=_not_negative)),
               sample=up.RoomList((("lobby", 2),), more=1)),
    ServerLine("history_end", up.HistoryEnd, (
        Field("room", required=True), Field("count", "int", required=True),
        Field("more", "bool", required=True)),
               sample=up.HistoryEnd("lobby", 3, True)),
    ServerLine("shutdown", up.Shutdown, (Field("message", required=True),),
               sample=up.Shutdown()),
    ServerLine("ping", up.ServerPing, sample=up.ServerPing()),
    ServerLine("pong", up.ServerPong, sample=up.ServerPong()),
    ServerLine("info", up.Info, (Field("lines", "list", required=True),),
               sample=up.Info(("a", "b")),
               json=False),
    ServerLine("topic", up.Topic, (Field("room", required=True),
                                   Field("topic", required=True), Field("name"),
                                   Field("message"), Field("id"), Field("time")),
               sample=up.Topic("lobby", "be nice", "alice", "alice set it", "12", "t")),
    ServerLine("oper", up.Opered, _CHAT_FIELDS,
               sample=up.Opered("alice", "lobby", "alice is now an operator", "13", "t")),
    ServerLine("notice", up.Notice, (Field("message", required=True),),
               sample=up.Notice("done")),
    ServerLine("whois", up.WhoisReply, (Field("name", required=True), Field("room"),
                                        Field("oper", "bool", required=True),
                                        Field("rooms", "list")),
               sample=up.WhoisReply("bob", "dev", oper=True, rooms=("dev", "lobby"))),
    ServerLine("switch", up.Switched, (Field("room", required=True),),
               sample=up.Switched("dev")),
    ServerLine("read", up.ReadMark, (Field("room", required=True), Field("id", required=True),
                                     Field("unread", "int", required=True),
                                     Field("mentions", "int", required=True)),
               sample=up.ReadMark("dev", "120", 3, 1)),
    ServerLine("account", up.AccountNote, (Field("event", required=True),
                                           Field("account", required=True),
                                           Field("message", required=True),
                                           Field("operator", "bool"), Field("created"),
                                           Field("used"), Field("devices", "int"),
                                           Field("login_token")),
               sample=up.AccountNote("registered", "alice", "alice is registered")),
    ServerLine("bans", up.BanList, (_BANS,),
               sample=up.BanList((up.BanEntry("name", "bob", "", "alice", "spam", "t"),))),
)

SERVER_BY_UPDATE: Final = {line.update: line for line in SERVER_LINES}


def declared_updates() -> set[type[Any]]:
    return set(typing.get_args(up.Update)) - {up.Unknown}
