"""The terminal app: the conversation scrolls above a status bar and an input line.

`chatc.screen` owns the bottom of the terminal (own lines awaiting their ack, the
status bar, the input line); everything else is rendered by rich to ANSI text and
written above it, a loop turn's lines at a time. When stdin or stdout is not a
terminal, `run` hands over to line mode.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections import deque
from collections.abc import Iterable

from prompt_toolkit.formatted_text import ANSI, AnyFormattedText
from prompt_toolkit.patch_stdout import patch_stdout
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
from chatc.screen import Screen
from chatc.session import NO_ANSWER, TooLong, refused_status
from chatc.words import words
from chatd import protocol as p
from chatd.palette import NameColours

MAX_PENDING_SHOWN = 5
RECENT_CHARS = 200_000  # of the last lines shown, kept to draw them again after a resize
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
        self.room = ""
        self.users: list[str] = []
        self.colours = NameColours()  # of self.users: no two share one while there are enough
        self.opers: set[str] = set()  # operators in this room (PROTOCOL.txt 15.1)
        self.topic = ""  # of this room (15.5)
        self.state = ""
        self.online = True  # False from a lost connection to the next welcome
        self.leaving = False  # asked to quit; waiting for own lines to be taken
        self.asked_name: str | None = None  # of the last /nick, for "try NAME_"
        self.in_history = False  # between the divider above a history batch and its end
        self.missed = False  # the next history batch is what a reconnect missed
        self._out: list[str] = []
        self._writing = False
        self._recent: deque[render.Line] = deque()  # newest last, RECENT_CHARS at most
        self._recent_chars = 0
        self.refused_code = 1  # the exit status if joining fails
        self.away = 0.0  # seconds the last reconnect took, until it is told

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
        if name is None:
            name = self._ask("Nickname [dim](blank: 익명)[/]")
        while name is not None:
            client = Client(self.options.target, name, room=self.options.room,
                            password=password, reconnect=self.options.reconnect is not False,
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

    def typed(self, text: str) -> bool:
        client = self.client
        assert client is not None
        action = commands.parse(text)
        if isinstance(action, commands.Quit):
            self.leave()
        elif isinstance(action, commands.Say):
            try:
                client.say(action.text, action.to)
            except TooLong as exc:
                self._print([render.error(
                    f"not sent: {exc.size:,} bytes is {exc.size - exc.limit:,} over the "
                    f"server's limit ({exc.limit:,}); shorten it below")])
                return True
        elif isinstance(action, commands.Send):
            self._command(client, action.event)
        elif isinstance(action, commands.Help):
            listed = commands.HELP + (commands.OPER_HELP if self.me in self.opers else ())
            width = max(len(usage) for usage, _ in listed) + 1
            self._print([render.notice(f"{usage:<{width}} {what}", style="")
                         for usage, what in listed])
        elif isinstance(action, commands.Bad):
            self._print([render.error(action.message)])
        return False

    def _command(self, client: Client, event: p.Event) -> None:
        # Answered here when the answer is known: the server would only say "bad_name".
        if isinstance(event, p.Nick) and event.name == self.me:
            self._print([render.notice(f"you are {self.me} already", style="")])
        elif isinstance(event, p.Join) and event.room == self.room:
            self._print([render.notice(f"you are in {self.room} already", style="")])
        else:
            if isinstance(event, p.Nick):
                self.asked_name = event.name
            client.command(event)

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
        # While disconnected, who is here is not known.
        here = f"{len(self.users)} here" if self.users and self.online else ""
        topic = self.topic if len(self.topic) <= TOPIC_SHOWN else self.topic[:TOPIC_SHOWN] + "…"
        me = f"@{self.me}" if self.me in self.opers else self.me
        parts = (f"{me} in {self.room}", here, topic and f"topic: {topic}",
                 str(self.options.target), self.state)
        return " " + render.safe(" · ".join(part for part in parts if part))

    def prompt(self) -> AnyFormattedText:
        return f"{render.safe(self.room)}> "

    # ------------------------------------------------------------------ output

    def _ansi(self, lines: Iterable[render.Line], width: int) -> str:
        self.console.width = max(20, width)
        with self.console.capture() as cap:
            for line in lines:
                self.console.print(line)
        return cap.get()

    def recent(self, width: int, count: int) -> str:
        return self._ansi(list(self._recent)[-count:], width)

    def _keep(self, lines: list[render.Line]) -> None:
        for line in lines:
            self._recent.append(line)
            self._recent_chars += len(line.body)
        while self._recent_chars > RECENT_CHARS and len(self._recent) > 1:
            self._recent_chars -= len(self._recent.popleft().body)

    def _print(self, lines: list[render.Line]) -> None:
        if not lines:
            return
        self._keep(lines)
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
            self._print(shown)
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
        if isinstance(update, p.Error):
            self.in_history = False
            self._print([render.error(words(update, name=self.asked_name), update.code)])
            return
        if isinstance(update, p.Chat) and update.history:
            if not self.in_history:
                self.in_history = True
                title = ("missed while disconnected" if self.missed
                         else f"earlier in {update.room or self.room}")
                self._print([render.divider(title)])
        elif isinstance(update, p.HistoryEnd):
            self.in_history = self.missed = False
        else:
            self.in_history = False
        self._track(update)
        self.colours.present(self.users)
        self._print(render.render(update, self.me, colours=self.colours.colour))

    def _track(self, update: p.Update) -> None:
        """Keep the status bar's room and user list current."""
        if isinstance(update, p.WhoList) and update.room is not None:
            if update.room != self.room:
                self.topic = ""  # a move: the new room's topic comes next, if it has one
            self.room, self.users = update.room, list(update.users)
            self.opers = set(update.opers)
        elif isinstance(update, p.Topic) and update.room == self.room:
            self.topic = update.topic
        elif isinstance(update, p.Opered):
            self.opers.add(update.name)
        elif isinstance(update, p.Joined) and update.name not in self.users:
            self.users.append(update.name)
        elif isinstance(update, p.Left) and update.name in self.users:
            self.users.remove(update.name)
            self.opers.discard(update.name)
        elif isinstance(update, p.Renamed):
            self.users = [update.name if u == update.old else u for u in self.users]
            if update.old in self.opers:
                self.opers = (self.opers - {update.old}) | {update.name}

    def _welcomed(self, welcome: p.Welcome) -> None:
        self.me, self.room, self.users = welcome.name, welcome.room, list(welcome.users)
        self.colours.present(self.users)
        self.opers, self.topic = set(welcome.opers), welcome.topic
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
        resume is in that line's words ("as a new session")."""
        self._welcomed(event.welcome)
        self.away = event.away
        if event.welcome.resumed:
            self._print([render.notice(render.back(event.away, True), style="bold")])
        else:
            self.missed = True
