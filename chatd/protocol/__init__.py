"""The wire codec of PROTOCOL.txt: pure functions and values (values.py), no I/O.

Both chatd and chatc import this package, usually as `p` (`from chatd import protocol as
p`); every name below is re-exported here, so callers never import a module of it. The
words, and the module each belongs to:

- framing.py    a *line*: bytes up to "\n", at most max_line_bytes (`LineSplitter`),
                decoded as UTF-8; the first line decides the *mode* (JSON or text).
- events.py     an *event*: what a client line means (Connect, Message, Join, ...),
                and the field checks of JSON decoding.
- updates.py    an *update*: what the server sends (Welcome, Chat, Joined, ...).
- wire.py       the JSON codec of updates, driven by their declarations in
                serverlines.py: `encode_json` for the wire, `decode_update` for
                clients.
- textmode.py   *text mode* for people at nc: typed lines -> events, updates -> lines,
                and `visible`, the rule for network text on a screen.
- spec.py       every client line type declared once: wire name, fields and bounds,
                the commands people type for it, its flood-control cost. The JSON
                codec of client lines (`parse_json_line`, `encode_event`), the
                text-mode dispatch, the /help lists of nc, chatc and the page
                (/commands.js) read it.
- serverlines.py  every server line type declared once: wire name, update class,
                fields and their JSON converters (what wire.py is built from).
- fields.py     `Field`: a declared line's JSON field (name, type, bounds), for both.
- textcommands.py  `Command`: a command as typed in text mode (syntax, /help line),
                and the parsers of its arguments.
- labels.py     a *label*: a name or a room as shown; its *key* (`name_key`, case and
                look-alikes folded) is what uniqueness compares.
- values.py     `value`: the decorator of events, updates and commands (frozen for
                mypy, a plain slotted dataclass at run time: cheaper to make).
- errors.py     `ProtocolError` and the stable codes a client sees, each declared
                with its one meaning and fields (`ERRORS`); constants.py the
                numbers both ends agree on; times.py the server's time stamps.

Every failure is a `ProtocolError` carrying a stable code. Updates are handled with
`match` ending in `assert_never`, so an update type not handled everywhere fails mypy;
tests/unit/test_protocol_spec.py fails for an event or update class not declared in
spec.py or serverlines.py, or declared but not handled by a consumer (codec, text renderer, hub).
"""

from __future__ import annotations

from chatd.protocol.constants import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_ROOMS,
    DEFAULT_NAME,
    DEFAULT_ROOM,
    HISTORY_PAGE_MAX,
    MAX_BAN_SECONDS,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_REF_CHARS,
    MAX_TOPIC_CHARS,
    VERSION,
)
from chatd.protocol.errors import (
    ERROR_BY_CODE,
    ERRORS,
    ERRORS_SENT,
    ErrorCode,
    ErrorSpec,
    ProtocolError,
)
from chatd.protocol.events import (
    ACCOUNT_EVENTS,
    MODERATION_EVENTS,
    AccountAdmin,
    Ban,
    Bans,
    Connect,
    Disconnect,
    Event,
    Help,
    History,
    Join,
    Kick,
    Logout,
    Message,
    Mute,
    Nick,
    Oper,
    Part,
    Password,
    Ping,
    Pong,
    Read,
    Register,
    Rooms,
    SetTopic,
    Switch,
    Unban,
    Unmute,
    Unregister,
    Who,
    Whois,
    check_seconds,
    decode_message,
    one_line,
)
from chatd.protocol.fields import Field
from chatd.protocol.framing import (
    LINE_TOO_LONG,
    LineSplitter,
    LineTooLong,
    decode_utf8,
    looks_like_json,
)
from chatd.protocol.labels import (
    clean_message,
    name_key,
    name_variant,
    normalize_name,
    normalize_room,
)
from chatd.protocol.serverlines import (
    NO_VALUE,
    SERVER_BY_UPDATE,
    SERVER_LINES,
    ServerLine,
    declared_updates,
)
from chatd.protocol.spec import (
    CLIENT_BY_EVENT,
    CLIENT_BY_WIRE,
    CLIENT_LINES,
    COMMANDS,
    TEXT_DISPATCH,
    ClientLine,
    commands_js,
    declared_events,
    encode_event,
    help_table,
    parse_json_line,
)
from chatd.protocol.textcommands import Command
from chatd.protocol.textmode import (
    OPER_COMMANDS,
    TEXT_COMMANDS,
    encode_text,
    farewell,
    help_info,
    parse_text_line,
    room_prefix,
    text_lines,
    visible,
)
from chatd.protocol.times import (
    format_time,
    parse_time,
)
from chatd.protocol.updates import (
    AccountNote,
    Ack,
    BanEntry,
    BanList,
    Chat,
    Error,
    HistoryEnd,
    Info,
    Joined,
    Left,
    Notice,
    Opered,
    ReadMark,
    Renamed,
    RoomList,
    ServerPing,
    ServerPong,
    Shutdown,
    Switched,
    Topic,
    Unknown,
    Update,
    Welcome,
    WhoisReply,
    WhoList,
    error_of,
)
from chatd.protocol.values import value
from chatd.protocol.wire import decode_update, encode_json, to_wire

__all__ = [
    "ACCOUNT_EVENTS",
    "CLIENT_BY_EVENT",
    "CLIENT_BY_WIRE",
    "CLIENT_LINES",
    "COMMANDS",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_ROOMS",
    "DEFAULT_NAME",
    "DEFAULT_ROOM",
    "ERRORS",
    "ERRORS_SENT",
    "ERROR_BY_CODE",
    "HISTORY_PAGE_MAX",
    "LINE_TOO_LONG",
    "MAX_BAN_SECONDS",
    "MAX_NAME_CHARS",
    "MAX_REASON_CHARS",
    "MAX_REF_CHARS",
    "MAX_TOPIC_CHARS",
    "MODERATION_EVENTS",
    "NO_VALUE",
    "OPER_COMMANDS",
    "SERVER_BY_UPDATE",
    "SERVER_LINES",
    "TEXT_COMMANDS",
    "TEXT_DISPATCH",
    "VERSION",
    "AccountAdmin",
    "AccountNote",
    "Ack",
    "Ban",
    "BanEntry",
    "BanList",
    "Bans",
    "Chat",
    "ClientLine",
    "Command",
    "Connect",
    "Disconnect",
    "Error",
    "ErrorCode",
    "ErrorSpec",
    "Event",
    "Field",
    "Help",
    "History",
    "HistoryEnd",
    "Info",
    "Join",
    "Joined",
    "Kick",
    "Left",
    "LineSplitter",
    "LineTooLong",
    "Logout",
    "Message",
    "Mute",
    "Nick",
    "Notice",
    "Oper",
    "Opered",
    "Part",
    "Password",
    "Ping",
    "Pong",
    "ProtocolError",
    "Read",
    "ReadMark",
    "Register",
    "Renamed",
    "RoomList",
    "Rooms",
    "ServerLine",
    "ServerPing",
    "ServerPong",
    "SetTopic",
    "Shutdown",
    "Switch",
    "Switched",
    "Topic",
    "Unban",
    "Unknown",
    "Unmute",
    "Unregister",
    "Update",
    "Welcome",
    "Who",
    "WhoList",
    "Whois",
    "WhoisReply",
    "check_seconds",
    "clean_message",
    "commands_js",
    "declared_events",
    "declared_updates",
    "decode_message",
    "decode_update",
    "decode_utf8",
    "encode_event",
    "encode_json",
    "encode_text",
    "error_of",
    "farewell",
    "format_time",
    "help_info",
    "help_table",
    "looks_like_json",
    "name_key",
    "name_variant",
    "normalize_name",
    "normalize_room",
    "one_line",
    "parse_json_line",
    "parse_text_line",
    "parse_time",
    "room_prefix",
    "text_lines",
    "to_wire",
    "value",
    "visible",
]
