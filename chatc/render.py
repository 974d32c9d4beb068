"""Updates as lines a person reads: rich `Line`s for the terminal, plain strings for pipes.

Pure: no I/O. Network text never goes through rich markup; it is appended to `Text`
objects as plain strings after `safe()`, so `[bold]` stays literal and no control
character reaches the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from chatc.words import words
from chatd import protocol as p
from chatd.palette import PALETTE, name_colour

TIME_STYLE = "dim"
NOTICE_STYLE = "dim"
ERROR_STYLE = "bold red"
PRIVATE_STYLE = "italic"
NO_TIME = "··:··:··"  # an own line the server has not acknowledged yet
PENDING_CHARS = 160  # of a long own line waiting for its ack: the rest is counted
RULE = "──"

Clock = Callable[[], datetime]
__all__ = ["PALETTE", "Line", "name_colour", "safe"]


def safe(text: str) -> str:
    """One line of network text, safe for a terminal (no control or bidi characters)."""
    return p.visible(text)


def clock_text(stamp: str, now: Clock = datetime.now) -> str:
    """HH:MM:SS in local time of a protocol time stamp; the current time if it has none."""
    if stamp:
        try:
            return p.parse_time(stamp).astimezone().strftime("%H:%M:%S")
        except ValueError:
            pass
    return now().strftime("%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Line:
    """One entry of the conversation: time, a head (`<alice>`, `*`, `!`) and a body.

    A body of several lines (a message with newlines) is shown indented under its
    first line on a terminal, and with the time and head repeated in plain text.
    """

    time: str
    head: Text
    body: Text
    time_style: str = TIME_STYLE

    def text(self) -> Text:
        """The whole line as one `Text` (continuation lines indented to the body)."""
        indent = " " * (cell_len(self.time) + 1 + self.head.cell_len + 1)
        out = self._lead()
        for n, part in enumerate(self.body.split("\n", allow_blank=True)):
            if n:
                out.append("\n" + indent)
            out.append_text(part)
        return out

    def plain(self) -> list[str]:
        """Line mode: one plain line per body line, each with the time and head (an
        error's code, dim on a terminal, is part of the body here too)."""
        prefix = f"{self.time} {self.head.plain} "
        return [prefix + part for part in self.body.plain.split("\n")]

    def _lead(self) -> Text:
        lead = Text()
        lead.append(self.time, style=self.time_style)
        lead.append(" ")
        lead.append_text(self.head)
        lead.append(" ")
        return lead

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Wrapped and continued text stays aligned under the body, in terminal cells.
        indent = cell_len(self.time) + 1 + self.head.cell_len + 1
        width = max(8, options.max_width - indent)
        lead = self._lead()
        for part in self.body.wrap(console, width, overflow="fold"):
            part.rstrip()
            yield lead + part
            lead = Text(" " * indent)


def _body(message: str, style: str = "") -> Text:
    return Text("\n".join(safe(part) for part in message.split("\n")), style=style)


Colours = Callable[[str], str]  # a name's colour (chatd.palette.NameColours.colour)


def _name(name: str, own: bool, colours: Colours) -> Text:
    colour = colours(name)
    return Text(safe(name), style=f"bold {colour}" if own else colour)


def notice(text: str, time: str = "", style: str = NOTICE_STYLE, now: Clock = datetime.now
           ) -> Line:
    """A notice line (`* text`): joins, leaves, and chatc's own status lines."""
    return Line(clock_text(time, now), Text("*", style=style), _body(text, style))


def error(text: str, code: str = "", now: Clock = datetime.now) -> Line:
    """An error line (`! text`); `code`, if given, dim at the end."""
    body = _body(text, ERROR_STYLE)
    if code:
        body.append(f"  ({safe(code)})", style="dim")
    return Line(clock_text("", now), Text("!", style=ERROR_STYLE), body)


def chat(name: str, message: str, me: str, time: str = "", *, to: str | None = None,
         now: Clock = datetime.now, colours: Colours = name_colour) -> Line:
    """A chat line; `to` set means private (sent by `name` to `to`). `colours`: of the
    names present, so that they do not share one (chatd.palette.NameColours)."""
    own = name == me
    if to is None:
        head = Text("<").append_text(_name(name, own, colours)).append(">")  # no base style
        return Line(clock_text(time, now), head, _body(message))
    head = Text()
    # A private line of mine shows who it went to.
    head.append("-> *" if own else "*", style="bold")
    head.append_text(_name(to if own else name, False, colours)).append("*", style="bold")
    return Line(clock_text(time, now), head, _body(message, PRIVATE_STYLE))


def pending(message: str, me: str, to: str | None = None,
            colours: Colours = name_colour) -> Line:
    """An own line still waiting for its ack: no time yet, dimmed; a long one cut short."""
    if len(message) > PENDING_CHARS:
        message = (f"{message[:PENDING_CHARS]}… "
                   f"({len(message) - PENDING_CHARS:,} more characters)")
    line = chat(me, message, me, to=to, colours=colours)
    return Line(NO_TIME, line.head, line.body, time_style="dim")


@dataclass(frozen=True, slots=True)
class Divider(Line):
    """`── text ──`: the closing rule only where it fits, so that no row of a divider
    is a lone piece of rule, at any width."""

    def plain(self) -> list[str]:
        return [f"{self.time} {RULE} {self.body.plain} {RULE}"]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        indent = cell_len(self.time) + 1 + self.head.cell_len + 1
        width = max(8, options.max_width - indent)
        lead = self._lead()
        parts = self.body.wrap(console, width, overflow="fold")
        for n, part in enumerate(parts):
            part.rstrip()
            if n == len(parts) - 1 and part.cell_len + 1 + len(RULE) <= width:
                part.append(f" {RULE}", style="dim")
            yield lead + part
            lead = Text(" " * indent)


def back(away: float, resumed: bool, missed: int = 0, known: bool = True) -> str:
    """What a reconnect after `away` seconds came to, in one line: the session resumed
    (nothing lost), or a new one (the server restarted or forgot it) that fetched
    `missed` lines, or could not tell (`known` False)."""
    after = f"reconnected after {away:.0f}s" if away >= 1 else "reconnected"
    if resumed:
        return f"{after}; nothing was lost"
    if missed == 1:
        return f"{after} as a new session; the line you missed is above"
    if missed:
        return f"{after} as a new session; the {missed:,} lines you missed are above"
    if known:
        return f"{after} as a new session; no lines were missed"
    return f"{after} as a new session; lines sent while you were away may be lost"


def divider(text: str, now: Clock = datetime.now) -> Line:
    return Divider(clock_text("", now), Text(RULE, style="dim"), Text(safe(text), style="dim"))


def welcome(update: p.Welcome, now: Clock = datetime.now) -> list[Line]:
    others = [u for u in update.users if u != update.name]
    if update.more:  # the rest of a crowd is counted, not listed (PROTOCOL.txt 4.1)
        others.append(f"{update.more} more")
    with_whom = f"with {', '.join(others)}" if others else "alone for now"
    lines = [notice(f"you are {update.name} in {update.room}, {with_whom} "
                    f"({update.server or 'chatd'}; /help for commands)", style="bold", now=now)]
    if update.topic:
        lines.append(notice(f"topic: {update.topic}", style="bold", now=now))
    if update.notice:
        lines.append(notice(update.notice, style="bold", now=now))
    return lines


def marked(users: Iterable[str], opers: Iterable[str]) -> str:
    """Users by name, operators marked with @ (PROTOCOL.txt 15.1), as nc shows them."""
    chiefs = set(opers)
    return ", ".join(f"@{user}" if user in chiefs else user for user in users)


def _who(update: p.WhoList, now: Clock) -> list[Line]:
    if update.room is None:
        return [notice(f"{room}: {marked(users, update.opers)}", style="", now=now)
                for room, users in update.rooms] or [notice("nobody is here", style="", now=now)]
    more = f" and {update.more} more" if update.more else ""
    return [notice(f"in {update.room}: {marked(update.users, update.opers)}{more}", style="",
                   now=now)]


def _moderation(update: p.Update, now: Clock) -> list[Line]:
    """Topics, operators, notices and ban lists (PROTOCOL.txt 15)."""
    if isinstance(update, p.Topic):
        if update.name:
            return [notice(update.message, update.time, style="bold", now=now)]
        said = (f"topic of {update.room}: {update.topic}" if update.topic
                else f"{update.room} has no topic")
        return [notice(said, style="", now=now)]
    if isinstance(update, p.Opered):
        return [notice(update.message, update.time, now=now)]
    if isinstance(update, p.Notice):
        return [notice(update.message, style="bold", now=now)]
    if isinstance(update, p.BanList):
        return [notice(f"{b.kind} {b.target}: "
                       + (f"until {b.until}" if b.until else "permanent")
                       + f", by {b.by}" + (f" ({b.reason})" if b.reason else ""),
                       style="", now=now) for b in update.bans] or [
            notice("no bans", style="", now=now)]
    return []


def render(update: p.Update, me: str, now: Clock = datetime.now,
           colours: Colours = name_colour) -> list[Line]:
    """The lines an update shows as, for the user named `me`; [] for invisible ones."""
    if isinstance(update, p.Chat):
        return [chat(update.name, update.message, me, update.time, to=update.to, now=now,
                     colours=colours)]
    if isinstance(update, p.Left) and update.reason:
        return [notice(f"{update.message} ({update.reason})", update.time, now=now)]
    if isinstance(update, (p.Joined, p.Left, p.Renamed)):
        return [notice(update.message, update.time, now=now)]
    if isinstance(update, p.Welcome):
        return welcome(update, now)
    if isinstance(update, p.Error):
        return [error(words(update), update.code, now)]
    if isinstance(update, p.WhoList):
        return _who(update, now)
    if isinstance(update, p.RoomList):
        # `yours`: the reader's rooms, which the client knows (the wire does not say).
        mine = {p.name_key(room) for room in update.yours}
        rooms = ", ".join(f"{room} ({count}{', yours' if p.name_key(room) in mine else ''})"
                          for room, count in update.rooms)
        return [notice(f"rooms: {rooms or 'none'}", style="", now=now)]
    if isinstance(update, p.HistoryEnd):
        if not update.count:
            return []
        more = "; the server has older ones" if update.more else ""
        return [divider(f"{update.count} earlier line{'s' if update.count != 1 else ''} "
                        f"of {update.room} above{more}", now)]
    if isinstance(update, p.Shutdown):
        return [notice(update.message or "server shutting down", style=ERROR_STYLE, now=now)]
    if isinstance(update, p.Info):
        return [notice(line, style="", now=now) for line in update.lines]
    if isinstance(update, (p.Topic, p.Opered, p.Notice, p.BanList)):
        return _moderation(update, now)
    if isinstance(update, p.WhoisReply):
        operator = " (operator)" if update.oper else ""
        rooms = ", ".join(update.rooms) or update.room  # all of them (PROTOCOL.txt 17)
        where = f"is in {rooms}" if rooms else "is in no room"
        return [notice(f"{update.name} {where}{operator}", style="", now=now)]
    if isinstance(update, p.AccountNote):
        return [notice(update.message, style="bold", now=now)]
    return []  # acks, pings, read markers and line types this client does not know


def plain(lines: Iterable[Line]) -> list[str]:
    return [text for line in lines for text in line.plain()]
