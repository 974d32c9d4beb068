"""The terminal app: the conversation scrolls above a status bar and an input line.

`chatc.screen` owns the bottom of the terminal (own lines awaiting their ack, the
status bar, the input line); everything else is rendered by rich to ANSI text and
written above it, a loop turn's lines at a time. When stdin or stdout is not a
terminal, `run` hands over to line mode.

One window per room and per private partner (chatc.windows decides where each line
goes): the shown window's lines are written, the others' kept and counted in the
status bar; switching draws the chosen window's recent lines again.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterable

from prompt_toolkit.formatted_text import ANSI, AnyFormattedText
from prompt_toolkit.patch_stdout import patch_stdout
from rich.cells import cell_len
from rich.console import Console
from rich.prompt import Prompt
from rich.text import Text

from chatc import commands, linemode, render
from chatc.connection import Client, ConnectFailed, Refused
from chatc.events import (
    CaughtUp,
    Confirmed,
    Failed,
    Gone,
    Lost,
    Reconnected,
    SessionEvent,
    Throttled,
)
from chatc.options import Options
from chatc.readmarks import ReadMarks
from chatc.reconnect import refused_status
from chatc.screen import Screen
from chatc.session import NO_ANSWER, TooLong
from chatc.tokens import Saved
from chatc.windowlist import Window
from chatc.windows import Windows
from chatc.words import words
from chatd import protocol as p
from chatd.palette import NameColours

MAX_PENDING_SHOWN = 5
TOPIC_SHOWN = 40  # characters of the topic in the status bar
PREVIEW_CHARS = 30  # of an own line named in a notice


def preview(text: str) -> str:
    text = render.safe(text)
    return f"“{text[:PREVIEW_CHARS]}…”" if len(text) > PREVIEW_CHARS else f"“{text}”"


def lines_word(count: int) -> str:
    return f"{count} line{'s' if count != 1 else ''}"


async def run(options: Options) -> int:
    """The whole client; returns the exit status."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return await linemode.run(options)
    return await Terminal(options).run()


def fail(message: str) -> int:
    print(f"chatc: {message}", file=sys.stderr)
    return 1


class Terminal:
    screen: Screen  # made once joined

    def __init__(self, options: Options) -> None:
        self.options = options
        self.console = Console(file=io.StringIO(), force_terminal=True,
                               no_color=not options.color, highlight=False, markup=False,
                               emoji=False)
        self.ask = Console(no_color=not options.color, highlight=False)
        self.client: Client | None = None
        self.me = ""
        self.welcomed_as = ""  # the name of the last welcome: a new session may differ
        self.windows: Windows[render.Line] = Windows()
        self.colours = NameColours()  # of the shown room: no two share one while there are enough
        self.state = ""
        self.online = True  # False from a lost connection to the next welcome
        self.leaving = False  # asked to quit; waiting for own lines to be taken
        self.asked_name: str | None = None  # of the last /nick, for "try NAME_"
        self.in_history = False  # between the divider above a history batch and its end
        self.missed = False  # the next history batch is what a reconnect missed
        self._out: list[str] = []
        self._writing = False
        self.refused_code = 1  # the exit status if joining fails
        self.away = 0.0  # seconds the last reconnect took, until it is told
        self.account = ""  # logged in to (18.3): then read markers are sent (18.5)
        self.reads = ReadMarks()
        self.newest: dict[str, str] = {}  # room -> the id of its newest chat line
        self._read_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ start

    async def run(self) -> int:
        client = await self._join()
        if client is None:
            return self.refused_code
        self.client = client
        # Made only now: prompt_toolkit's output writes terminal modes when it starts.
        self.screen = Screen(self, color=self.options.color)
        # Start at the bottom of the screen, where the input line will stay.
        print("\n" * max(0, self.screen.height - 3), end="", flush=True)
        assert client.welcome is not None
        self._welcomed(client.welcome)
        self._print(render.welcome(client.welcome))
        # Anything printed by accident goes above the input area too, not through it.
        with patch_stdout(raw=True):
            receiving = asyncio.create_task(self._receive(client))
            await self.screen.run()
            if not receiving.done():
                await client.close()
            code = await receiving
        self._flush()
        unsent = client.pending
        if unsent:  # quit without waiting for them: say which, after the input area
            self._print_now([render.error(f"not sent: {preview(line.text)}")
                             for line in unsent])
            return code or 1
        return code

    async def _join(self) -> Client | None:
        name, password = self.options.name, self.options.password
        login = self.options.login
        if name is None:
            name = self._ask("Nickname [dim](blank: 익명)[/]")
        while name is not None:
            saved = Saved(self.options.tokens,
                          self.options.host, self.options.port, name)
            if saved.token is None and login is None and self.options.ask_login:
                login = self._ask(f"Password of {name}", password=True)
                if login is None:
                    return None
            client = Client(self.options.target, name, room=self.options.room,
                            password=password, login=login, login_token=saved.token,
                            on_token=saved.changed,
                            reconnect=self.options.reconnect is not False,
                            ack_timeout=self.options.ack_timeout)
            try:
                await client.open()
                return client
            except Refused as exc:
                code = exc.error.code
                if code == p.ErrorCode.AUTH_FAILED:
                    self.ask.print(f"chatc: {exc}", style="red", markup=False)
                    password = self._ask("Password", password=True)
                elif code == p.ErrorCode.BAD_NAME:
                    self.ask.print(f"chatc: {exc}", style="red", markup=False)
                    name = self._ask("Nickname [dim](blank: 익명)[/]")
                elif code == p.ErrorCode.LOGIN_FAILED:
                    if saved.token is not None:  # revoked: ask for the password instead
                        saved.changed(None)
                        self.ask.print("chatc: the saved login is no longer valid",
                                       style="red", markup=False)
                    else:
                        self.ask.print(f"chatc: {exc}", style="red", markup=False)
                    login = self._ask(f"Password of {name}", password=True)
                    if login is None:
                        return None
                else:
                    fail(str(exc))
                    self.refused_code = refused_status(exc.error)
                    return None
            except ConnectFailed as exc:
                fail(str(exc))
                return None
        return None

    def _ask(self, question: str, password: bool = False) -> str | None:
        """A question before the chat starts; None if the user gives up (Ctrl-D)."""
        try:
            return Prompt.ask(question, console=self.ask, password=password, default="",
                              show_default=False)
        except EOFError:
            return None

    # ------------------------------------------------------------------ chatc.screen.View

    @property
    def shown(self) -> Window[render.Line]:
        window = self.windows.current
        assert window is not None  # the welcome opened one
        return window

    def typed(self, text: str) -> bool:
        client = self.client
        assert client is not None
        action = commands.parse(text)
        if isinstance(action, commands.Quit):
            self.leave()
        elif isinstance(action, commands.Say):
            return self._say(client, action)
        elif isinstance(action, commands.Send):
            self._command(client, action.event)
        elif isinstance(action, commands.Window):
            self._window_command(client, action)
        elif isinstance(action, commands.Help):
            opers = self.shown.opers
            listed = commands.TERMINAL_HELP + (commands.OPER_HELP if self.me in opers else ())
            width = max(len(usage) for usage, _ in listed) + 1
            self._print([render.notice(f"{usage:<{width}} {what}", style="")
                         for usage, what in listed])
        elif isinstance(action, commands.Bad):
            self._print([render.error(action.message)])
        return False

    def _say(self, client: Client, action: commands.Say) -> bool:
        """A line for the shown window (a room's, or a partner's), or `/msg NAME`: the
        partner's window opens (not shown: the line is said here too, as irssi does)."""
        to, room = action.to, None
        if to is not None:
            self.windows.open_private(to)
        elif self.shown.private:
            to = self.shown.name
        elif self.windows.multi:
            room = self.shown.name or None  # in no room: the server says so
        try:
            client.say(action.text, to, room)
        except TooLong as exc:
            self._print([render.error(
                f"not sent: {exc.size:,} bytes is {exc.size - exc.limit:,} over the "
                f"server's limit ({exc.limit:,}); shorten it below")])
            return True
        return False

    def _command(self, client: Client, event: p.Event) -> None:
        # Answered here when the answer is known: the server would only say "bad_name".
        if isinstance(event, p.Nick) and event.name == self.me:
            self._print([render.notice(f"you are {self.me} already", style="")])
        elif isinstance(event, p.Join) and self.windows.is_open(event.room) is self.shown:
            self._print([render.notice(f"you are in {self.shown.name} already", style="")])
        elif isinstance(event, p.Join) and self.windows.is_open(event.room) is not None:
            self.select(self.windows.room(event.room))  # its window is open: show it
        else:
            if isinstance(event, p.Nick):
                self.asked_name = event.name
            if isinstance(event, p.Join):
                self.windows.joining(event.room)
            client.command(event)

    def _window_command(self, client: Client, action: commands.Window) -> None:
        windows = self.windows
        if action.part:
            self._part(client, action.room)
        elif action.number is not None:
            window = windows.select_number(action.number)
            if window is None:
                self._print([render.error(f"there is no window {action.number}; "
                                          f"there are {len(windows.windows)}")])
            else:
                self.select(window)
        elif action.query is not None:
            self.select(windows.open_private(action.query))
        elif action.room is not None:
            window = windows.room(action.room)
            if window is None:
                self._print([render.error(f"you are not in {action.room}; "
                                          f"/join {action.room} joins it")])
            else:
                self.select(window)

    def _part(self, client: Client, room: str | None) -> None:
        """/part closes a private window here; a room is left at the server, and its
        window closes when the server says so."""
        window = self.shown if room is None else self.windows.room(room)
        if window is not None and window.private:
            self.windows.close(window)
            self._draw_shown()
        elif not self.windows.multi:
            self._print([render.error("this server keeps you in one room at a time "
                                      "(/join ROOM moves you)")])
        elif window is None or window.roomless:
            self._print([render.error(f"you are not in {room}" if room else
                                      "you are in no room; /join ROOM joins one")])
        else:
            self.windows.parting(window.name)
            self.reads.forget(window.name)  # a read line after the part: not_in_room
            client.command(p.Part(window.name))

    def select(self, window: Window[render.Line] | None) -> None:
        """Show `window` (the server's current room follows a room window)."""
        if window is None or self.client is None:
            return
        if window is self.shown:
            return
        switch = self.windows.select(window)
        if switch is not None:
            self.client.command(switch)
            self.client.follow(switch.room)
        self._draw_shown()
        self._seen(self.shown)

    # ------------------------------------------------------------------ read markers

    def _mark(self, mark: p.ReadMark) -> None:
        """The server's count of what is unread in a room (18.5) replaces chatc's."""
        if self.windows.read(mark) and hasattr(self, "screen"):
            self.screen.app.invalidate()

    def _account(self, note: p.AccountNote) -> None:
        """/register logs the user in at once (PROTOCOL.txt 18.2): read markers from now
        on, as after a login; an account unregistered or dropped has none (18.7, 18.8:
        an operator who drops another's account is told too, and keeps theirs)."""
        if note.event == "registered" and not self.account:
            self.account = note.account
            self._seen(self.shown)
        elif note.event in ("unregistered", "dropped") and note.account == self.account:
            self.account = ""

    def _seen(self, window: Window[render.Line]) -> None:
        """The user has the lines of `window` in front of them."""
        newest = self.newest.get(window.name) if not window.private else None
        if self.account and newest is not None:
            self._send_reads(self.reads.seen(window.name, newest,
                                             asyncio.get_running_loop().time()))

    def _send_reads(self, reads: list[p.Read]) -> None:
        if self.client is not None and self.online:
            for read in reads:
                self.client.command(read)
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        due = self.reads.deadline
        if due is not None:
            loop = asyncio.get_running_loop()
            self._read_timer = loop.call_at(due, lambda: self._send_reads(
                self.reads.due(loop.time())))

    def window_number(self, number: int) -> None:
        self.select(self.windows.select_number(number))

    def window_step(self, step: int) -> None:
        self.select(self.windows.beside(step))

    def _draw_shown(self) -> None:
        """The shown window changed: its recent lines replace the conversation."""
        self._flush()
        self.colours.present(self.shown.users)
        self.screen.show_again()

    def leave(self) -> None:
        """Quit, unless own lines are still waiting: then say so and wait for them
        (asked a second time, quit anyway)."""
        client = self.client
        waiting = client.pending if client is not None else []
        if self.leaving or client is None or not waiting:
            self.screen.stop()
            return
        self.leaving = True
        them = "it" if len(waiting) == 1 else "them"
        self._print([render.notice(
            f"{lines_word(len(waiting))} not sent yet: waiting for the server to take {them} "
            f"(Ctrl-D again: quit without {them})", style="bold")])
        asyncio.get_running_loop().create_task(self._quit_when_sent(client))

    async def _quit_when_sent(self, client: Client) -> None:
        await client.drain()
        self.screen.stop()

    def has_above_input(self) -> bool:
        return bool(self.client and self.client.pending)

    def above_input(self) -> AnyFormattedText:
        """Own lines the server has not acknowledged yet, above the status bar."""
        pending = self.client.pending if self.client is not None else []
        lines = [render.pending(line.text, self.me, line.to, self.colours.colour)
                 for line in pending[-MAX_PENDING_SHOWN:]]
        if len(pending) > MAX_PENDING_SHOWN:
            lines.insert(0, render.Line(render.NO_TIME, Text("*"), Text(
                f"{len(pending) - MAX_PENDING_SHOWN} more lines waiting", style="dim")))
        return ANSI(self._ansi(lines, self.screen.width).rstrip("\n"))

    def status(self) -> AnyFormattedText:
        shown = self.shown
        # While disconnected, who is here is not known.
        here = (f"{len(shown.users) + shown.more} here" if shown.users and self.online
                and not shown.private else "")
        topic = shown.topic if len(shown.topic) <= TOPIC_SHOWN \
            else shown.topic[:TOPIC_SHOWN] + "…"
        me = f"@{self.me}" if self.me in shown.opers else self.me
        where = f"with {shown.name}" if shown.private else f"in {shown.name or 'no room'}"
        rest = (topic and f"topic: {topic}", str(self.options.target), self.state)
        # The list of windows once there are several: `[1:lobby] 2:dev(3) 3:*bob*(!1)`,
        # within what the row leaves it, so that nothing after it is cut off either.
        listed = ""
        if len(self.windows.windows) > 1:
            others = " " + " · ".join(part for part in (f"{me} {where}", here, *rest) if part)
            listed = self.windows.status(self.screen.width - cell_len(others) - 3)
        parts = (f"{me} {where}", here, listed, *rest)
        return " " + render.safe(" · ".join(part for part in parts if part))

    def prompt(self) -> AnyFormattedText:
        return f"{render.safe(self.shown.label)}> "

    # ------------------------------------------------------------------ output

    def _ansi(self, lines: Iterable[render.Line], width: int) -> str:
        self.console.width = max(20, width)
        with self.console.capture() as cap:
            for line in lines:
                self.console.print(line)
        return cap.get()

    def recent(self, width: int, count: int) -> str:
        return self._ansi(self.shown.recent()[-count:], width)

    def _print(self, lines: list[render.Line]) -> None:
        """chatc's own lines: in the shown window."""
        self._show_in([self.shown], lines)

    def _show_in(self, windows: list[Window[render.Line]], lines: list[render.Line],
                 unread: bool = False, mention: bool = False) -> None:
        shown = False
        for window in windows:
            for line in lines:
                size = len(line.head.plain) + len(line.body.plain.encode("utf-8", "replace"))
                shown = self.windows.keep(window, line, size, unread=unread,
                                          mention=mention) or shown
        if shown and lines:
            self._out.append(self._ansi(lines, self.screen.width))
            if not self._writing:
                self._writing = True
                asyncio.get_running_loop().call_soon(self._flush)

    def _print_now(self, lines: list[render.Line]) -> None:
        self._print(lines)
        self._flush()

    def _flush(self) -> None:
        # Once per loop turn: a burst of lines costs one redraw of the input area.
        self._writing = False
        if self._out:
            self.screen.write("".join(self._out))
            self._out.clear()

    # ------------------------------------------------------------------ events

    async def _receive(self, client: Client) -> int:
        async for event in client.events():
            self.me = client.name or self.me
            if isinstance(event, Gone):
                if event.reason is not None:
                    self.state = "disconnected"
                    # An operator's removal is in the server's own words, said this once.
                    said = event.reason if event.removed else f"chatc: {event.reason}"
                    self._print([render.error(said)])
                self.screen.stop()
                return event.status
            self._show(event)
            self.screen.refresh()
        return 0

    def _show(self, event: SessionEvent) -> None:
        if isinstance(event, Confirmed):
            self.in_history = False
            shown = [render.chat(self.me, event.line.text, self.me, event.time,
                                 to=event.line.to, colours=self.colours.colour)]
            if event.late:
                shown.append(render.notice(f"the server took {preview(event.line.text)} "
                                           "after all"))
            where = self.windows.own(event.line)
            # A /msg from another window is said there too, so that its sender sees it.
            also = event.line.to is not None and where is not self.shown
            self._show_in([where, self.shown] if also else [where], shown)
        elif isinstance(event, Failed):
            self._failed(event)
        elif isinstance(event, Throttled):
            self._print([render.notice(f"flood control: sending your line again in "
                                       f"{event.retry_in:g}s")])
        elif isinstance(event, Lost):
            self._lost(event)
        elif isinstance(event, Reconnected):
            self._reconnected(event)
        elif isinstance(event, CaughtUp):
            self.in_history = self.missed = False
            self._print([render.notice(render.back(self.away, False, event.count,
                                                   event.known), style="bold")])
        elif not isinstance(event, Gone):
            self._update(event)

    def _failed(self, event: Failed) -> None:
        err, line = event.error, event.line
        assert self.client is not None
        said = words(err, to=line.to, name=self.asked_name,
                     limit=self.client.max_line_bytes)
        if err.code == NO_ANSWER:
            self._print([render.error(f"{preview(line.text)}: {said}", err.code)])
        else:
            self._print([render.error(f"{preview(line.text)} not sent: {said}", err.code)])

    def _update(self, update: p.Update) -> None:
        if isinstance(update, p.ReadMark):  # read here or on another device
            self._mark(update)
            return
        if isinstance(update, p.AccountNote):
            self._account(update)
        if isinstance(update, p.Error):
            self.in_history = False
            self.windows.place(update)
            self._print([render.error(words(update, name=self.asked_name), update.code)])
            return
        before = self.shown
        where = self.windows.place(update)
        if self.client is not None:
            self.client.follow(self.windows.server_room)
        if self.shown is not before:
            self._draw_shown()  # a join's answer opened its window, or a part closed one
        if isinstance(update, p.Chat) and update.history:
            if not self.in_history:
                self.in_history = True
                title = ("missed while disconnected" if self.missed
                         else f"earlier in {update.room or self.shown.name}")
                self._show_in(where, [render.divider(title)])
        elif isinstance(update, p.HistoryEnd):
            self.in_history = self.missed = False
        else:
            self.in_history = False
        self.colours.present(self.shown.users)
        # A line of the user's own, sent from another device (PROTOCOL.txt 18.4), is
        # never unread and rings nothing.
        chat = isinstance(update, p.Chat) and not update.history and not update.own
        shown = render.render(self.windows.marked(update), self.me, colours=self.colours.colour)
        mention = self.windows.is_mention(update)
        self._show_in(where, shown, unread=chat, mention=mention)
        if isinstance(update, p.Chat) and update.to is None and update.id:
            for window in where:
                if not window.private and window.name:
                    self.newest[window.name] = update.id
                    if window is self.shown:
                        self._seen(window)
        if chat and (mention or (isinstance(update, p.Chat) and update.mention
                                 and update.name != self.me)):
            self._ring()

    def _ring(self) -> None:
        # Once a line: with is_mention and the server's mark agreeing, still one bell.
        if self.options.bell and hasattr(self, "screen"):
            self.screen.bell()

    def _welcomed(self, welcome: p.Welcome) -> None:
        before = {w.name for w in self.windows.windows if not w.private}
        shown = self.windows.current
        again = self.windows.welcome(welcome)
        if self.client is not None:
            for event in again:  # a new session: into every room of a window again
                self.client.command(event)
        self.me = self.welcomed_as = welcome.name
        self.account = welcome.account
        for mark in welcome.read:
            self._mark(mark)
        gone = sorted(before - {w.name for w in self.windows.windows if not w.private})
        if gone:
            self._print([render.notice(f"you are no longer in {', '.join(gone)}; "
                                       "/join ROOM to go back", style="bold")])
        if shown is not None and self.windows.current is not shown:
            self._draw_shown()
        self.colours.present(self.shown.users)
        self.state = ""
        self.online = True

    def _lost(self, event: Lost) -> None:
        self.online = False
        # Later attempts only change the status bar: one line per attempt said nothing new.
        self.state = ("reconnecting" if event.attempt == 1
                      else f"reconnecting (attempt {event.attempt})")
        self.in_history = False
        if event.attempt == 1:
            text = f"connection lost: {event.reason}; reconnecting in {event.retry_in:.1f}s..."
            self._print([render.notice(text, style="bold red")])

    def _reconnected(self, event: Reconnected) -> None:
        """One line says it all: now if the session resumed, else once the missed lines
        are fetched (CaughtUp), with how many. The server's notice why it could not
        resume is in that line's words ("as a new session"); a new session under another
        name (the name taken meanwhile, or an account's with no login, PROTOCOL.txt 10.4,
        18.3) is said at once, with the server's reason."""
        before = self.welcomed_as
        was_oper = any(before in w.opers for w in self.windows.windows)
        welcome = event.welcome
        self._welcomed(welcome)
        self.away = event.away
        if welcome.resumed:
            self._print([render.notice(render.back(event.away, True), style="bold")])
            return
        self.missed = True
        if before and welcome.name != before:
            why = f" ({welcome.notice})" if welcome.notice else ""
            self._print([render.notice(f"you are {welcome.name} now, not {before}{why}",
                                       style="bold")])
        # Operator status is the session's (15.1); an --oper account's comes back by
        # itself. A crowd's welcome may not list us: then it cannot tell.
        if was_oper and welcome.name in welcome.users and welcome.name not in welcome.opers:
            self._print([render.notice("you are no longer an operator: the server "
                                       "restarted; /oper NAME PASSWORD makes you one again",
                                       style="bold")])
