"""Every line type of PROTOCOL.txt, declared once (issue 24).

A client line (`ClientLine`) is declared with its wire name, its event class, its fields
(type and bounds), the commands people type for it in text mode (syntax, help line,
parse) and what it costs in flood control (8.3). A server line (`ServerLine`) with its
wire name, update class and fields; an error code (`ErrorSpec`) with its one meaning and
the fields its line carries. What reads these tables:

- `parse_json_line`: a client JSON line -> an event: the declared fields are checked
  (type, bounds) and handed to the event class, unless a line needs its own decoder;
- `parse_text_line` (textmode.py): "/word ..." dispatches on the declared commands, and
  a command that does not parse gets "usage: " + its declared syntax;
- /help in nc (the hub), chatc (chatc/commands.py) and the page (`/commands.js`,
  served by chatd --web, built by `commands_js`);
- tests/unit/test_protocol_spec.py: every event and update class is declared, every
  declared line round-trips through the JSON codec and the text renderer, the hub
  handles every client line, and PROTOCOL.txt documents every type and code.

The chat line keeps its own decoder (`events.decode_message`): it is the hot path.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from chatd.protocol import events as ev
from chatd.protocol import updates as up
from chatd.protocol.constants import (
    HISTORY_PAGE_MAX,
    MAX_REASON_CHARS,
    MAX_REF_CHARS,
    MAX_TOPIC_CHARS,
)
from chatd.protocol.errors import ErrorCode, ProtocolError
from chatd.protocol.events import check_seconds, one_line
from chatd.protocol.labels import clean_message

_FieldKind = Literal["str", "line", "int", "bool", "seconds", "list", "object"]


@dataclass(frozen=True, slots=True)
class Field:
    """A JSON field: its name on the wire, its type, whether it must be there, and its
    bounds (`most`: characters of a line or a ref, the top of an int range). Names and
    rooms are bounded where they are normalised (labels.py, PROTOCOL.txt 5.1, 5.2)."""

    name: str
    kind: _FieldKind = "str"
    required: bool = False
    most: int = 0
    least: int = 0
    default: Any = None
    attr: str = ""  # the event's (update's) attribute when it is not `name`
    # Server lines (chatd.protocol.wire): `required` there means "on the wire unless None"
    # (otherwise an empty value is left out too); `out` turns the value into JSON, `back`
    # JSON into the value (NO_VALUE: not accepted, as if absent).
    out: Callable[[Any], Any] | None = None
    back: Callable[[Any], Any] | None = None

    def check(self, obj: dict[str, Any]) -> Any:
        value = obj.get(self.name)
        if self.kind == "str":
            return ev._req_str(obj, self.name) if self.required else ev._opt_str(obj, self.name)
        if self.kind == "line":  # one line of visible text: a reason, a topic
            text = ev._opt_str(obj, self.name)
            if text is None:
                return self.default
            return one_line(text, self.name, self.most)
        if self.kind == "bool":  # null is no boolean: only a missing field takes the default
            if self.name not in obj:
                return bool(self.default)
            if not isinstance(value, bool):
                raise ProtocolError(ErrorCode.BAD_FIELD,
                                    f"field {self.name!r} must be true or false")
            return value
        if self.kind == "int":
            if self.name not in obj:
                return self.default
            if type(value) is not int or not self.least <= value <= self.most:
                raise ProtocolError(ErrorCode.BAD_FIELD, f"field {self.name!r} must be an "
                                    f"integer {self.least}-{self.most}")
            return value
        if self.kind == "seconds":
            return check_seconds(value)
        raise AssertionError(f"{self.kind} is a server field")  # pragma: no cover


# ----------------------------------------------------------------- text-mode commands

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


def _json_account(obj: dict[str, Any]) -> ev.AccountAdmin:
    operator = obj.get("operator")
    if operator is not None and not isinstance(operator, bool):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'operator' must be true or false")
    return ev.AccountAdmin(ev._req_str(obj, "name"), operator, ev._opt_str(obj, "rename"),
                           _DROP.check(obj))


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


# ------------------------------------------------------------------------ client lines

_Cost = Literal["line", "answer"]  # 8.3: one token; or one more per 16 KiB of answer


@dataclass(frozen=True, slots=True)
class ClientLine:
    wire: str
    event: type[Any]
    fields: tuple[Field, ...] = ()
    commands: tuple[Command, ...] = ()
    cost: _Cost = "line"
    json: bool = True  # False: text mode only (help)
    decode: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)
    encode: Callable[[Any], dict[str, Any]] | None = field(default=None, compare=False)
    sample: Any = None  # an event of this line, for the consumers' tests

    def from_json(self, obj: dict[str, Any]) -> Any:
        if self.decode is not None:
            return self.decode(obj)
        return self.event(**{f.attr or f.name: f.check(obj) for f in self.fields})

    def to_json(self, event: Any) -> dict[str, Any]:
        """The line's JSON object: its declared fields, but for those not given (None,
        false, or an empty reason: what a server takes as left out)."""
        if self.encode is not None:
            return self.encode(event)
        obj: dict[str, Any] = {"type": self.wire}
        for f in self.fields:
            value = getattr(event, f.attr or f.name)
            if value is None or value is False or (value == "" and f.default == ""):
                continue
            obj[f.name] = value
        return obj


def _kick(obj: dict[str, Any]) -> ev.Kick:
    where = obj.get("from", "server")
    if where not in ("server", "room"):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'from' must be \"server\" or \"room\"")
    return ev.Kick(ev._req_str(obj, "name"),
                   one_line(ev._opt_str(obj, "reason") or "", "reason", MAX_REASON_CHARS),
                   room=where == "room",
                   where=ev._opt_str(obj, "room") if where == "room" else None)


def _target(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    name, address = ev._opt_str(obj, "name"), ev._opt_str(obj, "address")
    if (name is None) == (address is None):
        raise ProtocolError(ErrorCode.BAD_FIELD, "give 'name' or 'address', one of them")
    return name, address


def _kick_json(event: ev.Kick) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "kick", "name": event.name,
                           "from": "room" if event.room else "server"}
    if event.reason:
        obj["reason"] = event.reason
    if event.room and event.where is not None:
        obj["room"] = event.where
    return obj


def _json_history(obj: dict[str, Any]) -> ev.History:
    before, after = ev._opt_str(obj, "before"), ev._opt_str(obj, "after")
    if before is not None and after is not None:
        raise ProtocolError(ErrorCode.BAD_FIELD, "give 'before' or 'after', not both")
    return ev.History(before, after, _LIMIT.check(obj), ev._opt_str(obj, "room"))


def _json_ban(obj: dict[str, Any]) -> ev.Ban:
    name, address = _target(obj)
    return ev.Ban(name, address, check_seconds(obj.get("seconds")), _REASON.check(obj))


_NAME = Field("name", required=True)
_DROP = Field("drop", "bool", default=False)
_REASON = Field("reason", "line", most=MAX_REASON_CHARS, default="")
_LIMIT = Field("limit", "int", least=1, most=HISTORY_PAGE_MAX, default=50)
_TARGET = (Field("name"), Field("address"))
_ROOM = Field("room")  # one of the user's rooms; absent: the current room (17)

CLIENT_LINES: Final[tuple[ClientLine, ...]] = (
    ClientLine("help", ev.Help, json=False, sample=ev.Help(),
               commands=(Command("help", "", "this list", parse=lambda r: ev.Help()),)),
    ClientLine("who", ev.Who, (Field("all", "bool", default=False), _ROOM), cost="answer",
               sample=ev.Who(all=True), commands=(Command(
                   "who", "[ROOM|all]", "who is in this room (or that one, or everywhere)",
                   parse=_who),)),
    ClientLine("rooms", ev.Rooms, cost="answer", sample=ev.Rooms(), commands=(Command(
        "rooms", "", "rooms and their user counts (yours marked)",
        parse=lambda r: ev.Rooms()),)),
    ClientLine("join", ev.Join, (Field("room", required=True),),
               sample=ev.Join("dev"), commands=(Command(
                   "join", "ROOM", "join a room too, and talk there (it is created if new)",
                   parse=lambda r: ev.Join(r) if _one_word(r) else None),)),
    ClientLine("part", ev.Part, (_ROOM,), sample=ev.Part("dev"), commands=(Command(
        "part", "[ROOM]", "leave a room (this one if none is named)",
        parse=lambda r: ev.Part(r or None) if not r or _one_word(r) else None),)),
    ClientLine("switch", ev.Switch, (Field("room", required=True),),
               sample=ev.Switch("dev"), commands=(Command(
                   "switch", "ROOM", "talk in another of your rooms",
                   parse=lambda r: ev.Switch(r) if _one_word(r) else None),)),
    ClientLine("nick", ev.Nick, (_NAME,), sample=ev.Nick("alicia"), commands=(Command(
        "nick", "NAME", "change your name", parse=lambda r: ev.Nick(r) if _one_word(r)
        else None),)),
    ClientLine("whois", ev.Whois, (_NAME,), sample=ev.Whois("bob"), commands=(Command(
        "whois", "NAME", "which rooms a user is in", parse=lambda r: ev.Whois(r)
        if _one_word(r) else None),)),
    ClientLine("message", ev.Message,
               (Field("message", required=True), Field("to"),
                Field("ref", most=MAX_REF_CHARS, least=1), _ROOM),
               decode=ev.decode_message, sample=ev.Message("hi", to="bob", ref="r1"),
               commands=(Command("msg", "NAME TEXT", "a private line to one user", parse=_msg),
                         Command("/", "", "send a line that starts with /"))),
    ClientLine("history", ev.History, (_LIMIT, Field("before"), Field("after"), _ROOM),
               cost="answer", decode=_json_history, sample=ev.History(limit=5),
               commands=(Command("history", "[N]", "the last N lines of this room again",
                                 parse=_history),)),
    ClientLine("topic", ev.SetTopic, (Field("topic", "line", most=MAX_TOPIC_CHARS), _ROOM),
               sample=ev.SetTopic("be nice"),
               commands=(Command("topic", "", "the topic of this room", parse=_topic),
                         Command("topic", "TEXT", "set this room's topic (/topic - clears it)",
                                 oper=True, parse=_topic))),
    ClientLine("oper", ev.Oper, (_NAME, Field("password", required=True)),
               sample=ev.Oper("alice", "pw"), commands=(Command(
                   "oper", "NAME PASSWORD", "become an operator", parse=_oper),)),
    ClientLine("disconnect", ev.Disconnect, sample=ev.Disconnect(), commands=(Command(
        "quit", "", "leave the chat", parse=lambda r: ev.Disconnect()),)),
    ClientLine("kick", ev.Kick, (_NAME, _REASON, Field("from")), decode=_kick,
               encode=_kick_json,
               sample=ev.Kick("bob", "spam", room=True), commands=(
                   Command("kick", "NAME [REASON]", "remove a user from the server", oper=True,
                           parse=lambda r: ev.Kick(*_name_reason(r)) if r else None),
                   Command("roomkick", "NAME [REASON]",
                           "remove a user from this room", oper=True,
                           parse=lambda r: ev.Kick(*_name_reason(r), room=True) if r
                           else None))),
    ClientLine("ban", ev.Ban, (*_TARGET, Field("seconds", "seconds"), _REASON),
               decode=_json_ban, sample=ev.Ban(name="bob", seconds=60, reason="spam"),
               commands=(
                   Command("ban", "NAME [TIME] [REASON]",
                           "ban a name and its look-alikes; TIME like 30m, 2h, 7d", oper=True,
                           parse=lambda r: _ban(r, address=False)),
                   Command("banip", "ADDRESS [TIME] [REASON]",
                           "ban an address or prefix (IPv6: its /64)", oper=True,
                           parse=lambda r: _ban(r, address=True)))),
    ClientLine("unban", ev.Unban, _TARGET, decode=lambda obj: ev.Unban(*_target(obj)),
               sample=ev.Unban(address="192.0.2.0/24"), commands=(
                   Command("unban", "NAME", "lift a name's ban", oper=True,
                           parse=lambda r: ev.Unban(name=r) if _one_word(r) else None),
                   Command("unbanip", "ADDRESS", "lift an address's ban", oper=True,
                           parse=lambda r: ev.Unban(address=r) if _one_word(r) else None))),
    ClientLine("bans", ev.Bans, cost="answer", sample=ev.Bans(), commands=(Command(
        "bans", "", "the bans in force", oper=True,
        parse=lambda r: None if r else ev.Bans()),)),
    ClientLine("mute", ev.Mute, (_NAME, _REASON, Field("room")),
               sample=ev.Mute("bob", "spam", "dev"), commands=(Command(
                   "mute", "NAME [REASON]", "refuse a user's lines in this room", oper=True,
                   parse=lambda r: ev.Mute(*_name_reason(r)) if r else None),)),
    ClientLine("unmute", ev.Unmute, (_NAME, Field("room")),
               sample=ev.Unmute("bob"), commands=(Command(
                   "unmute", "NAME", "lift a user's mutes", oper=True,
                   parse=lambda r: ev.Unmute(r) if _one_word(r) else None),)),
    ClientLine("connect", ev.Connect,
               tuple(Field(k) for k in ("name", "password", "resume", "last_id", "room",
                                        "login", "login_token")),
               sample=ev.Connect(name="alice", room="dev")),
    ClientLine("register", ev.Register, (Field("password", required=True), Field("name")),
               sample=ev.Register("secret pw", name="alice"), commands=(Command(
                   "register", "PASSWORD", "register your name as an account",
                   parse=_register),)),
    ClientLine("password", ev.Password, (Field("password", required=True),
                                         Field("new", required=True)),
               sample=ev.Password("old pw", "new pw"), commands=(Command(
                   "password", "CURRENT NEW", "change your account's password",
                   parse=_password),)),
    ClientLine("account", ev.AccountAdmin, (_NAME, Field("operator", "bool"),
                                            Field("rename"), _DROP),
               decode=_json_account, sample=ev.AccountAdmin("bob", rename="robert"),
               commands=(
                   Command("account", "NAME", "an account's info", oper=True, parse=_account),
                   Command("account", "oper NAME", "make an account an operator", oper=True,
                           parse=_account),
                   Command("account", "deoper NAME", "take it back", oper=True,
                           parse=_account),
                   Command("account", "rename NAME NEW", "rename an account (and its user)",
                           oper=True, parse=_account),
                   Command("account", "drop NAME", "drop an account (its user stays)",
                           oper=True, parse=_account))),
    ClientLine("logout", ev.Logout, sample=ev.Logout(), commands=(Command(
        "logout", "", "leave, and forget this device's login", parse=lambda r: ev.Logout()),)),
    ClientLine("read", ev.Read, (Field("id", required=True), Field("room")),
               sample=ev.Read("120", "dev")),
    ClientLine("unregister", ev.Unregister, (Field("password", required=True),),
               sample=ev.Unregister("secret pw"), commands=(Command(
                   "unregister", "PASSWORD", "drop your account (you stay, as a guest)",
                   parse=lambda r: ev.Unregister(r) if r else None),)),
    ClientLine("ping", ev.Ping, sample=ev.Ping()),
    ClientLine("pong", ev.Pong, sample=ev.Pong()),
)

CLIENT_BY_WIRE: Final = {line.wire: line for line in CLIENT_LINES if line.json}
CLIENT_BY_EVENT: Final = {line.event: line for line in CLIENT_LINES}
# The order /help lists the commands in (nc's /help is on the wire: it stays as it was).
# A command missing here fails at import.
_HELP_ORDER: Final = (
    "/help", "/who [ROOM|all]", "/whois NAME", "/rooms", "/join ROOM", "/part [ROOM]",
    "/switch ROOM", "/nick NAME",
    "/msg NAME TEXT",
    "/history [N]", "/topic", "/oper NAME PASSWORD", "/register PASSWORD",
    "/password CURRENT NEW", "/unregister PASSWORD", "/logout", "//text", "/quit",
    "/kick NAME [REASON]", "/roomkick NAME [REASON]", "/ban NAME [TIME] [REASON]",
    "/banip ADDRESS [TIME] [REASON]", "/unban NAME", "/unbanip ADDRESS", "/bans",
    "/mute NAME [REASON]", "/unmute NAME", "/topic TEXT",
    "/account NAME", "/account oper NAME", "/account deoper NAME",
    "/account rename NAME NEW", "/account drop NAME",
)
COMMANDS: Final = tuple(sorted((c for line in CLIENT_LINES for c in line.commands),
                               key=lambda c: _HELP_ORDER.index(c.usage)))
# "/word" -> its commands (/topic has two: one for everyone, one for operators).
TEXT_DISPATCH: Final[dict[str, tuple[Command, ...]]] = {}
for _command in COMMANDS:
    if _command.parse is not None:
        TEXT_DISPATCH.setdefault("/" + _command.name, ())
        TEXT_DISPATCH["/" + _command.name] += (_command,)


def parse_json_line(line: bytes) -> ev.Event:
    """One client line of JSON mode -> an event, or ProtocolError."""
    obj = ev._loads(line)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "line is not a JSON object")
    kind = obj.get("type")
    if kind == "message":  # the hot path: no table between the line and its decoder
        return ev.decode_message(obj)
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'type' must be a string")
    spec = CLIENT_BY_WIRE.get(kind)
    if spec is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown type {kind[:40]!r}")
    event: ev.Event = spec.from_json(obj)
    return event


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_event(event: ev.Event) -> bytes:
    """A client event as a JSON line (what chatc sends), from its declaration."""
    line = CLIENT_BY_EVENT[type(event)]
    if not line.json:
        raise ValueError(f"{line.wire} is a text-mode command with no JSON line; answer it "
                         "locally")
    return (_dumps(line.to_json(event)) + "\n").encode()


def help_table(*, oper: bool) -> dict[str, str]:
    """Usage -> help line, in /help's order: everyone's commands, or only operators'."""
    return {c.usage: c.help for c in COMMANDS if c.oper == oper}


# ------------------------------------------------------------------------ server lines


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

# ------------------------------------------------------------------------------ errors


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """An error code with its one meaning (PROTOCOL.txt 7); `closes`: the server closes
    the connection after it; `fields`: what its line carries besides code and message."""

    code: str
    meaning: str
    closes: bool = False
    fields: tuple[str, ...] = ()


ERRORS: Final[tuple[ErrorSpec, ...]] = (
    ErrorSpec(ErrorCode.BAD_UTF8, "the line is not valid UTF-8"),
    ErrorSpec(ErrorCode.BAD_JSON, "the line is not a JSON object"),
    ErrorSpec(ErrorCode.LINE_TOO_LONG, "the line is longer than the limit",
              fields=("max_line_bytes",)),
    ErrorSpec(ErrorCode.UNKNOWN_TYPE, "the type is not a client line"),
    ErrorSpec(ErrorCode.UNKNOWN_COMMAND, "text mode: an unknown /command"),
    ErrorSpec(ErrorCode.BAD_FIELD, "a field is missing, of the wrong type or out of range"),
    ErrorSpec(ErrorCode.BAD_NAME, "the name is not a valid name"),
    ErrorSpec(ErrorCode.SAME_NAME, "nick to the name one has already"),
    ErrorSpec(ErrorCode.BAD_ROOM, "the room is not a valid room name"),
    ErrorSpec(ErrorCode.ALREADY_IN_ROOM, "the user is in that room already"),
    ErrorSpec(ErrorCode.NOT_IN_ROOM, "the user is not in that room (or in none)"),
    ErrorSpec(ErrorCode.TOO_MANY_ROOMS, "a join past the server's rooms per user"),
    ErrorSpec(ErrorCode.BAD_ID, "not a message id"),
    ErrorSpec(ErrorCode.NOT_JOINED, "a line before connect"),
    ErrorSpec(ErrorCode.ALREADY_JOINED, "connect on a connection that has joined"),
    ErrorSpec(ErrorCode.NAME_TAKEN, "the name is in use"),
    ErrorSpec(ErrorCode.NO_SUCH_USER, "nobody has that name"),
    ErrorSpec(ErrorCode.RATE_LIMITED, "over flood control; the line was dropped"),
    ErrorSpec(ErrorCode.EXCESS_FLOOD, "kept flooding", closes=True),
    ErrorSpec(ErrorCode.AUTH_FAILED, "wrong or missing password", closes=True),
    ErrorSpec(ErrorCode.AUTH_THROTTLED, "too many wrong passwords from this address: wait",
              closes=True, fields=("retry_after",)),
    ErrorSpec(ErrorCode.SERVER_FULL, "the server has its maximum of connections",
              closes=True),
    ErrorSpec(ErrorCode.TOO_MANY_CONNECTIONS, "the address has its maximum of connections",
              closes=True),
    ErrorSpec(ErrorCode.REGISTRATION_TIMEOUT, "no connect in time", closes=True),
    ErrorSpec(ErrorCode.PING_TIMEOUT, "no answer to a keepalive ping", closes=True),
    ErrorSpec(ErrorCode.UNAVAILABLE, "the server cannot take the line now; try again"),
    ErrorSpec(ErrorCode.INTERNAL, "the server failed on this line"),
    ErrorSpec(ErrorCode.NOT_OPERATOR, "a moderation line from someone not an operator"),
    ErrorSpec(ErrorCode.OPER_FAILED, "wrong operator name or password"),
    ErrorSpec(ErrorCode.OPER_THROTTLED, "too many wrong operator passwords: wait",
              fields=("retry_after",)),
    ErrorSpec(ErrorCode.KICKED, "an operator removed you from the server", closes=True),
    ErrorSpec(ErrorCode.BANNED, "the name or address is banned", closes=True,
              fields=("until",)),
    ErrorSpec(ErrorCode.NAME_BANNED, "nick to a banned name", fields=("until",)),
    ErrorSpec(ErrorCode.MUTED, "muted in this room; the line was not sent"),
    ErrorSpec(ErrorCode.NO_SUCH_BAN, "unban of a ban not in force"),
    ErrorSpec(ErrorCode.NOT_MUTED, "unmute of someone not muted"),
    ErrorSpec(ErrorCode.LOGIN_FAILED, "wrong password, or no such account"),
    ErrorSpec(ErrorCode.LOGIN_THROTTLED, "too many wrong account passwords: wait",
              fields=("retry_after",)),
    ErrorSpec(ErrorCode.ACCOUNT_REQUIRED, "only logged-in accounts may join"),
    ErrorSpec(ErrorCode.NAME_REGISTERED, "the name is an account's"),
    ErrorSpec(ErrorCode.ALREADY_REGISTERED, "register while logged in"),
    ErrorSpec(ErrorCode.NOT_LOGGED_IN, "an account line without an account"),
    ErrorSpec(ErrorCode.ACCOUNT_NAME, "nick while logged in"),
    ErrorSpec(ErrorCode.REGISTRATION_CLOSED, "registration is closed here"),
    ErrorSpec(ErrorCode.REGISTRATION_THROTTLED, "too many registrations from this address",
              fields=("retry_after",)),
    ErrorSpec(ErrorCode.TOO_MANY_ACCOUNTS, "the server has its most accounts"),
    ErrorSpec(ErrorCode.TOO_MANY_DEVICES, "the account has its most devices"),
    ErrorSpec(ErrorCode.LOGGED_OUT, "the account was dropped: this device is closed",
              closes=True),
    ErrorSpec(ErrorCode.ACCOUNTS_OFF, "the server has no accounts"),
    ErrorSpec(ErrorCode.NO_SUCH_ACCOUNT, "an operator's account line for no account"),
    ErrorSpec(ErrorCode.ACCOUNTS_BUSY, "too many password hashes at once: wait",
              fields=("retry_after",)),
)

ERROR_BY_CODE: Final = {e.code: e for e in ERRORS}


def commands_js() -> bytes:
    """The tables the page needs as a JS module (served as /commands.js): the commands
    people type, and each error code's meaning, whether it closes, and its fields."""
    commands = [{"name": c.name, "args": c.args, "help": c.help, "oper": c.oper,
                 "usage": c.usage} for c in COMMANDS]
    errors = {e.code: {"meaning": e.meaning, "closes": e.closes, "fields": list(e.fields)}
              for e in ERRORS}
    return (f"export const COMMANDS = Object.freeze({json.dumps(commands)});\n"
            f"export const ERRORS = Object.freeze({json.dumps(errors)});\n").encode()


def declared_events() -> set[type[Any]]:
    return set(typing.get_args(ev.Event))


def declared_updates() -> set[type[Any]]:
    return set(typing.get_args(up.Update)) - {up.Unknown}
