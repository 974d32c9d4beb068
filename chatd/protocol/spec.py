"""Every client line of PROTOCOL.txt, declared once (issue 24), and what is built from
the declarations.

A client line (`ClientLine`) is declared with its wire name, its event class, its fields
(type and bounds: fields.py), the commands people type for it in text mode (syntax,
help line, parse: textcommands.py) and what it costs in flood control (8.3). Server
lines are declared the same way in serverlines.py, error codes with their one meaning
in errors.py. What reads these tables:

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
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from chatd.protocol import events as ev
from chatd.protocol import textcommands as tc
from chatd.protocol.constants import (
    HISTORY_PAGE_MAX,
    MAX_REASON_CHARS,
    MAX_REF_CHARS,
    MAX_TOPIC_CHARS,
)
from chatd.protocol.errors import ERRORS, ErrorCode, ProtocolError
from chatd.protocol.events import check_seconds, one_line
from chatd.protocol.fields import Field
from chatd.protocol.textcommands import Command

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


def _json_account(obj: dict[str, Any]) -> ev.AccountAdmin:
    operator = obj.get("operator")
    if operator is not None and not isinstance(operator, bool):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'operator' must be true or false")
    return ev.AccountAdmin(ev._req_str(obj, "name"), operator, ev._opt_str(obj, "rename"),
                           _DROP.check(obj))


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
                   parse=tc._who),)),
    ClientLine("rooms", ev.Rooms, cost="answer", sample=ev.Rooms(), commands=(Command(
        "rooms", "", "rooms and their user counts (yours marked)",
        parse=lambda r: ev.Rooms()),)),
    ClientLine("join", ev.Join, (Field("room", required=True),),
               sample=ev.Join("dev"), commands=(Command(
                   "join", "ROOM", "join a room too, and talk there (it is created if new)",
                   parse=lambda r: ev.Join(r) if tc._one_word(r) else None),)),
    ClientLine("part", ev.Part, (_ROOM,), sample=ev.Part("dev"), commands=(Command(
        "part", "[ROOM]", "leave a room (this one if none is named)",
        parse=lambda r: ev.Part(r or None) if not r or tc._one_word(r) else None),)),
    ClientLine("switch", ev.Switch, (Field("room", required=True),),
               sample=ev.Switch("dev"), commands=(Command(
                   "switch", "ROOM", "talk in another of your rooms",
                   parse=lambda r: ev.Switch(r) if tc._one_word(r) else None),)),
    ClientLine("nick", ev.Nick, (_NAME,), sample=ev.Nick("alicia"), commands=(Command(
        "nick", "NAME", "change your name", parse=lambda r: ev.Nick(r) if tc._one_word(r)
        else None),)),
    ClientLine("whois", ev.Whois, (_NAME,), sample=ev.Whois("bob"), commands=(Command(
        "whois", "NAME", "which rooms a user is in", parse=lambda r: ev.Whois(r)
        if tc._one_word(r) else None),)),
    ClientLine("message", ev.Message,
               (Field("message", required=True), Field("to"),
                Field("ref", most=MAX_REF_CHARS, least=1), _ROOM),
               decode=ev.decode_message, sample=ev.Message("hi", to="bob", ref="r1"),
               commands=(Command("msg", "NAME TEXT", "a private line to one user", parse=tc._msg),
                         Command("/", "", "send a line that starts with /"))),
    ClientLine("history", ev.History, (_LIMIT, Field("before"), Field("after"), _ROOM),
               cost="answer", decode=_json_history, sample=ev.History(limit=5),
               commands=(Command("history", "[N]", "the last N lines of this room again",
                                 parse=tc._history),)),
    ClientLine("topic", ev.SetTopic, (Field("topic", "line", most=MAX_TOPIC_CHARS), _ROOM),
               sample=ev.SetTopic("be nice"),
               commands=(Command("topic", "", "the topic of this room", parse=tc._topic),
                         Command("topic", "TEXT", "set this room's topic (/topic - clears it)",
                                 oper=True, parse=tc._topic))),
    ClientLine("oper", ev.Oper, (_NAME, Field("password", required=True)),
               sample=ev.Oper("alice", "pw"), commands=(Command(
                   "oper", "NAME PASSWORD", "become an operator", parse=tc._oper),)),
    ClientLine("disconnect", ev.Disconnect, sample=ev.Disconnect(), commands=(Command(
        "quit", "", "leave the chat", parse=lambda r: ev.Disconnect()),)),
    ClientLine("kick", ev.Kick, (_NAME, _REASON, Field("from")), decode=_kick,
               encode=_kick_json,
               sample=ev.Kick("bob", "spam", room=True), commands=(
                   Command("kick", "NAME [REASON]", "remove a user from the server", oper=True,
                           parse=lambda r: ev.Kick(*tc._name_reason(r)) if r else None),
                   Command("roomkick", "NAME [REASON]",
                           "remove a user from this room", oper=True,
                           parse=lambda r: ev.Kick(*tc._name_reason(r), room=True) if r
                           else None))),
    ClientLine("ban", ev.Ban, (*_TARGET, Field("seconds", "seconds"), _REASON),
               decode=_json_ban, sample=ev.Ban(name="bob", seconds=60, reason="spam"),
               commands=(
                   Command("ban", "NAME [TIME] [REASON]",
                           "ban a name and its look-alikes; TIME like 30m, 2h, 7d", oper=True,
                           parse=lambda r: tc._ban(r, address=False)),
                   Command("banip", "ADDRESS [TIME] [REASON]",
                           "ban an address or prefix (IPv6: its /64)", oper=True,
                           parse=lambda r: tc._ban(r, address=True)))),
    ClientLine("unban", ev.Unban, _TARGET, decode=lambda obj: ev.Unban(*_target(obj)),
               sample=ev.Unban(address="192.0.2.0/24"), commands=(
                   Command("unban", "NAME", "lift a name's ban", oper=True,
                           parse=lambda r: ev.Unban(name=r) if tc._one_word(r) else None),
                   Command("unbanip", "ADDRESS", "lift an address's ban", oper=True,
                           parse=lambda r: ev.Unban(address=r) if tc._one_word(r) else None))),
    ClientLine("bans", ev.Bans, cost="answer", sample=ev.Bans(), commands=(Command(
        "bans", "", "the bans in force", oper=True,
        parse=lambda r: None if r else ev.Bans()),)),
    ClientLine("mute", ev.Mute, (_NAME, _REASON, Field("room")),
               sample=ev.Mute("bob", "spam", "dev"), commands=(Command(
                   "mute", "NAME [REASON]", "refuse a user's lines in this room", oper=True,
                   parse=lambda r: ev.Mute(*tc._name_reason(r)) if r else None),)),
    ClientLine("unmute", ev.Unmute, (_NAME, Field("room")),
               sample=ev.Unmute("bob"), commands=(Command(
                   "unmute", "NAME", "lift a user's mutes", oper=True,
                   parse=lambda r: ev.Unmute(r) if tc._one_word(r) else None),)),
    ClientLine("connect", ev.Connect,
               tuple(Field(k) for k in ("name", "password", "resume", "last_id", "room",
                                        "login", "login_token")),
               sample=ev.Connect(name="alice", room="dev")),
    ClientLine("register", ev.Register, (Field("password", required=True), Field("name")),
               sample=ev.Register("secret pw", name="alice"), commands=(Command(
                   "register", "PASSWORD", "register your name as an account",
                   parse=tc._register),)),
    ClientLine("password", ev.Password, (Field("password", required=True),
                                         Field("new", required=True)),
               sample=ev.Password("old pw", "new pw"), commands=(Command(
                   "password", "CURRENT NEW", "change your account's password",
                   parse=tc._password),)),
    ClientLine("account", ev.AccountAdmin, (_NAME, Field("operator", "bool"),
                                            Field("rename"), _DROP),
               decode=_json_account, sample=ev.AccountAdmin("bob", rename="robert"),
               commands=(
                   Command("account", "NAME", "an account's info", oper=True, parse=tc._account),
                   Command("account", "oper NAME", "make an account an operator", oper=True,
                           parse=tc._account),
                   Command("account", "deoper NAME", "take it back", oper=True,
                           parse=tc._account),
                   Command("account", "rename NAME NEW", "rename an account (and its user)",
                           oper=True, parse=tc._account),
                   Command("account", "drop NAME", "drop an account (its user stays)",
                           oper=True, parse=tc._account))),
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
    try:
        obj = ev._loads_first(line)
    except ValueError:  # orjson refused it: the standard library's verdict (ev._loads)
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

