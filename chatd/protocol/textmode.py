"""Text mode: the protocol for people at nc (PROTOCOL.txt section 6).

Typed lines become the same events as JSON lines (`parse_text_line`: "/join dev" is a
Join, any other line a Message), and updates are rendered as plain lines for a terminal
(`text_lines`, `encode_text`). `visible` is the rule for every piece of network text put
on a screen: no control character or bidirectional control survives. chatc parses what
its user types with the same `parse_text_line`, so both understand commands alike.
"""

from __future__ import annotations

from typing import Final, assert_never

from chatd.protocol import errors
from chatd.protocol.errors import ErrorCode, ProtocolError
from chatd.protocol.events import Event, Message
from chatd.protocol.framing import decode_utf8
from chatd.protocol.labels import clean_message
from chatd.protocol.spec import TEXT_DISPATCH, help_table
from chatd.protocol.updates import (
    AccountNote,
    Ack,
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
)

# One list for nc, chatc and the page (spec.py). Operator commands are listed by /help
# for operators only (PROTOCOL.txt 15); anyone may type them and gets not_operator.
TEXT_COMMANDS: Final = help_table(oper=False)
OPER_COMMANDS: Final = help_table(oper=True)


def help_info(oper: bool) -> Info:
    """The answer to /help, in nc's layout: a column of usages padded to one width, then
    what each does (JSON clients get the same lines). Operators' commands are listed
    for operators only (PROTOCOL.txt 15)."""
    listed = dict(TEXT_COMMANDS)
    if oper:
        listed.update(OPER_COMMANDS)
    width = max(len(usage) for usage in listed) + 1
    return Info(tuple(f"{usage:<{width}} {what}" for usage, what in listed.items()))


def farewell(name: str) -> Info:
    """The last word to a person at nc who typed /quit: nc waits for their input, and
    they may not know how to end it."""
    return Info((f"bye, {name}: you left the chat (Ctrl-C closes nc)",))


def parse_text_line(line: bytes) -> Event | None:
    """One line of text mode (after the name line) -> an event; None for a blank line.
    A "/word" is one of the commands declared in spec.py (textcommands.py); one that
    does not parse gets its declared usage."""
    text = decode_utf8(line)
    if not text.strip():
        return None
    if not text.startswith("/") or text.startswith("//"):
        body = clean_message(text[1:] if text.startswith("//") else text)
        return Message(body) if body.strip() else None
    command, _, rest = text.partition(" ")
    command, rest = command.lower(), rest.strip()
    declared = TEXT_DISPATCH.get(command)
    if declared is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_COMMAND, f"unknown command {command[:40]} (try /help; // sends a /)"
        )
    for each in declared:
        assert each.parse is not None
        if (event := each.parse(rest)) is not None:
            return event
    raise ProtocolError(ErrorCode.BAD_FIELD, f"usage: {declared[0].usage}")


# Controls are shown in caret notation (ESC -> ^[, DEL -> ^?), so nothing from the
# network can drive a terminal or split a log line. C1 controls, bidirectional controls
# (they can make a line display as something else: a name reversed) and the Unicode
# line and paragraph separators become U+FFFD: 3 bytes for the 2 or 3 they took, so
# what shows network text (the log above all) grows at most 1.5 times as fast as what
# it shows; "<U+061C>" took 8 bytes for 2.
_VISIBLE = {c: ("^" + chr(c + 0x40) if c < 0x20 else "^?") for c in range(0x20)}
_VISIBLE[0x7F] = "^?"
_VISIBLE[0x09] = " "
_VISIBLE.update({c: "\ufffd" for c in (*range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028,
                                       0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})
_VISIBLE_TABLE: Final = str.maketrans({chr(c): v for c, v in _VISIBLE.items()})


def visible(text: str) -> str:
    """Text safe for a terminal: no control character survives (newlines included), and
    no bidirectional control that could make it display as something else."""
    return text if text.isprintable() else text.translate(_VISIBLE_TABLE)


def _marked(users: tuple[str, ...], opers: tuple[str, ...]) -> list[str]:
    """Operators get an @ before their name, as on IRC."""
    return [f"@{user}" if user in opers else user for user in users]


_CONTINUED: Final = "  "  # before each further line of a message (PROTOCOL.txt 6.1)


def _message_lines(head: str, message: str) -> list[str]:
    """A message's lines: the first after `head`, each further one after _CONTINUED, a
    run of blank lines as one, none at the end. So a message renders to at most 7/3 of
    its size (a blank line between two others: "\n\na" as "\n  \n  a"): one sent as
    32,700 "\n" under a 32-character name was 3.3 MB, one name per line, past every
    reader's send queue (issue 22)."""
    first, *more = message.split("\n")
    lines = [head + visible(first)]
    blank = not first.strip()
    for part in more:
        if not part.strip():
            if not blank:
                lines.append(_CONTINUED)
            blank = True
        else:
            lines.append(_CONTINUED + visible(part))
            blank = False
    if blank and len(lines) > 1:
        lines.pop()
    return lines


def text_lines(update: Update) -> list[str]:
    """The human-readable rendering of an update for a text-mode connection."""
    match update:
        case Chat():
            if update.to is not None and update.own:  # sent from another device (18.4)
                head = f"-> *{update.to}* "
            elif update.to is not None:
                head = f"*{update.name}* "
            elif update.history:
                head = f"[{update.time[11:19]}] <{update.name}> "
            else:
                head = f"<{update.name}> "
            return _message_lines(head, update.message)
        case Left() if update.reason:
            return ["* " + visible(f"{update.message} ({update.reason})")]
        case Joined() | Left() | Renamed():
            return ["* " + visible(update.message)]
        case Welcome():
            others = [user for user in update.users if user != update.name]
            if update.more:
                others.append(f"{update.more} more")
            company = f"with {', '.join(others)}" if others else "alone for now"
            lines = [f"* welcome, {update.name}: you are in {update.room} {company} "
                     "(/help for commands)"]
            if update.topic:
                lines.append(f"* topic: {update.topic}")
            if update.account:
                lines.append(f"* logged in to your account {update.account}")
            if update.notice:
                lines.append("* " + update.notice)
            return [visible(line) for line in lines]
        case Error():
            errors.ERRORS_SENT[update.code] += 1
            return [f"! {update.code}: {visible(update.message)}"]
        case WhoList():
            if update.room is None:
                return [f"* {room}: {', '.join(_marked(users, update.opers))}"
                        for room, users in update.rooms] + (
                    [f"* ... and {update.more} more users"] if update.more else [])
            return [f"* {update.room}: {', '.join(_marked(update.users, update.opers))}"
                    + (f" and {update.more} more" if update.more else "")]
        case RoomList():
            return ([f"* {room}: {_users(count)}{_mark(room, update)}"
                     for room, count in update.rooms] or ["* no rooms"]) + (
                [f"* ... and {update.more} more rooms"] if update.more else [])
        case HistoryEnd():
            if not update.count:
                return []
            return [f"* -- {update.count} earlier line{'s' if update.count != 1 else ''} above --"]
        case Shutdown():
            return ["* " + update.message]
        case Info():
            return ["* " + visible(line) for line in update.lines]
        case Topic() if update.name:
            return ["* " + visible(update.message)]
        case Topic():
            return ["* " + visible(f"topic of {update.room}: {update.topic}" if update.topic
                                   else f"{update.room} has no topic")]
        case WhoisReply():
            where = ", ".join(update.rooms) or update.room or "no room"
            return ["* " + visible(f"{update.name} is in {where}"
                                   + (" (operator)" if update.oper else ""))]
        case Switched():
            return ["* " + visible(f"you now talk in {update.room}")]
        case Opered() | Notice() | AccountNote():
            return ["* " + visible(update.message)]
        case BanList():
            return ["* " + visible(
                f"{b.kind} {b.target}: " + (f"until {b.until}" if b.until else "permanent")
                + f", by {b.by}" + (f" ({b.reason})" if b.reason else ""))
                for b in update.bans] or ["* no bans"]
        case ReadMark():
            return []  # a person at nc sends no read lines, and an id tells them nothing
        case Ack() | ServerPing() | ServerPong() | Unknown():
            return []  # they mean nothing to a person at nc
        case _:
            assert_never(update)


def _users(count: int) -> str:
    return f"{count} user" if count == 1 else f"{count} users"


def _mark(room: str, update: RoomList) -> str:
    """The reader's rooms in /rooms (17.10)."""
    if room == update.current:
        return " (current)"
    return " (you are here)" if room in update.yours else ""


def room_prefix(room: str) -> str:
    """Before each line of a room other than the reader's current room (17.10)."""
    return f"[{visible(room)}] "


def encode_text(update: Update, prefix: str = "") -> bytes:
    """The update as text-mode lines; `prefix` (`room_prefix`) goes before each line."""
    lines = text_lines(update)
    if not lines:
        return b""
    return "".join(prefix + line + "\n" for line in lines).encode()
