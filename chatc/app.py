"""The terminal app: the conversation scrolls above a status bar and an input line.

`chatc.screen` owns the bottom of the terminal (own lines awaiting their ack, the
status bar, the input line); everything else is rendered by rich to ANSI text and
written above it, a loop turn's lines at a time (chatc.conversation). When stdin or
stdout is not a terminal, `run` hands over to line mode.

One window per room and per private partner (chatc.windows decides where each line
goes): the shown window's lines are written, the others' kept and counted in the
status bar; switching draws the chosen window's recent lines again. This module is
the user's side (what they type, which window they choose, the status bar);
chatc.incoming shows what the session reports, chatc.signin asks what joining needs.
"""

from __future__ import annotations

import asyncio
import sys

from prompt_toolkit.formatted_text import ANSI, AnyFormattedText
from prompt_toolkit.patch_stdout import patch_stdout
from rich.cells import cell_len
from rich.text import Text

from chatc import commands, linemode, render
from chatc.connection import Client
from chatc.conversation import Conversation
from chatc.incoming import Incoming, preview
from chatc.options import Options
from chatc.screen import Screen
from chatc.session import TooLong
from chatc.signin import sign_in
from chatc.windowlist import Window
from chatc.windows import Windows
from chatd import protocol as p

MAX_PENDING_SHOWN = 5
TOPIC_SHOWN = 40  # characters of the topic in the status bar


def lines_word(count: int) -> str:
    return f"{count} line{'s' if count != 1 else ''}"


async def run(options: Options) -> int:
    """The whole client; returns the exit status."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return await linemode.run(options)
    return await Terminal(options).run()


class Terminal:
    """The screen's view (chatc.screen.View): what the user types and chooses, and the
    status bar and prompt that say where they are."""

    # Made once joined:
    client: Client
    screen: Screen
    incoming: Incoming

    def __init__(self, options: Options) -> None:
        self.options = options
        self.windows: Windows[render.Line] = Windows()
        self.out = Conversation(self.windows, options.color)
        self.leaving = False  # asked to quit; waiting for own lines to be taken

    # ------------------------------------------------------------------ start

    async def run(self) -> int:
        client = await sign_in(self.options)
        if isinstance(client, int):
            return client
        self.client = client
        # Made only now: prompt_toolkit's output writes terminal modes when it starts.
        self.screen = self.out.screen = Screen(self, color=self.options.color)
        self.incoming = Incoming(client, self.windows, self.out, self.screen,
                                 bell=self.options.bell)
        # Start at the bottom of the screen, where the input line will stay.
        print("\n" * max(0, self.screen.height - 3), end="", flush=True)
        assert client.welcome is not None
        self.incoming.welcomed(client.welcome)
        self.out.print(render.welcome(client.welcome))
        # Anything printed by accident goes above the input area too, not through it.
        with patch_stdout(raw=True):
            receiving = asyncio.create_task(self.incoming.receive())
            await self.screen.run()
            if not receiving.done():
                await client.close()
            code = await receiving
        self.out.flush()
        unsent = client.pending
        if unsent:  # quit without waiting for them: say which, after the input area
            self.out.print_now([render.error(f"not sent: {preview(line.text)}")
                                for line in unsent])
            return code or 1
        return code

    # ------------------------------------------------------------------ what the user types

    @property
    def shown(self) -> Window[render.Line]:
        return self.incoming.shown

    def typed(self, text: str) -> bool:
        action = commands.parse(text)
        if isinstance(action, commands.Quit):
            self.leave()
        elif isinstance(action, commands.Say):
            return self._say(action)
        elif isinstance(action, commands.Send):
            self._command(action.event)
        elif isinstance(action, commands.Window):
            self._window_command(action)
        elif isinstance(action, commands.Help):
            opers = self.shown.opers
            listed = commands.TERMINAL_HELP + (commands.OPER_HELP
                                               if self.incoming.me in opers else ())
            width = max(len(usage) for usage, _ in listed) + 1
            self.out.print([render.notice(f"{usage:<{width}} {what}", style="")
                            for usage, what in listed])
        elif isinstance(action, commands.Bad):
            self.out.print([render.error(action.message)])
        return False

    def _say(self, action: commands.Say) -> bool:
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
            self.client.say(action.text, to, room)
        except TooLong as exc:
            self.out.print([render.error(
                f"not sent: {exc.size:,} bytes is {exc.size - exc.limit:,} over the "
                f"server's limit ({exc.limit:,}); shorten it below")])
            return True
        return False

    def _command(self, event: p.Event) -> None:
        # Answered here when the answer is known: the server would only say "bad_name".
        me = self.incoming.me
        if isinstance(event, p.Nick) and event.name == me:
            self.out.print([render.notice(f"you are {me} already", style="")])
        elif isinstance(event, p.Join) and self.windows.is_open(event.room) is self.shown:
            self.out.print([render.notice(f"you are in {self.shown.name} already",
                                          style="")])
        elif isinstance(event, p.Join) and self.windows.is_open(event.room) is not None:
            self.select(self.windows.room(event.room))  # its window is open: show it
        else:
            if isinstance(event, p.Nick):
                self.incoming.asked_name = event.name
            if isinstance(event, p.Join):
                self.windows.joining(event.room)
            self.client.command(event)

    def _window_command(self, action: commands.Window) -> None:
        windows = self.windows
        if action.part:
            self._part(action.room)
        elif action.number is not None:
            window = windows.select_number(action.number)
            if window is None:
                self.out.print([render.error(f"there is no window {action.number}; "
                                             f"there are {len(windows.windows)}")])
            else:
                self.select(window)
        elif action.query is not None:
            self.select(windows.open_private(action.query))
        elif action.room is not None:
            window = windows.room(action.room)
            if window is None:
                self.out.print([render.error(f"you are not in {action.room}; "
                                             f"/join {action.room} joins it")])
            else:
                self.select(window)

    def _part(self, room: str | None) -> None:
        """/part closes a private window here; a room is left at the server, and its
        window closes when the server says so."""
        window = self.shown if room is None else self.windows.room(room)
        if window is not None and window.private:
            self.windows.close(window)
            self.out.draw_shown()
        elif not self.windows.multi:
            self.out.print([render.error("this server keeps you in one room at a time "
                                         "(/join ROOM moves you)")])
        elif window is None or window.roomless:
            self.out.print([render.error(f"you are not in {room}" if room else
                                         "you are in no room; /join ROOM joins one")])
        else:
            self.windows.parting(window.name)
            self.incoming.reads.forget(window.name)
            self.client.command(p.Part(window.name))

    def select(self, window: Window[render.Line] | None) -> None:
        """Show `window` (the server's current room follows a room window)."""
        if window is None or window is self.shown:
            return
        switch = self.windows.select(window)
        if switch is not None:
            self.client.command(switch)
            self.client.follow(switch.room)
        self.out.draw_shown()
        self.incoming.reads.seen(self.shown)

    def window_number(self, number: int) -> None:
        self.select(self.windows.select_number(number))

    def window_step(self, step: int) -> None:
        self.select(self.windows.beside(step))

    def leave(self) -> None:
        """Quit, unless own lines are still waiting: then say so and wait for them
        (asked a second time, quit anyway)."""
        waiting = self.client.pending
        if self.leaving or not waiting:
            self.screen.stop()
            return
        self.leaving = True
        them = "it" if len(waiting) == 1 else "them"
        self.out.print([render.notice(
            f"{lines_word(len(waiting))} not sent yet: waiting for the server to take {them} "
            f"(Ctrl-D again: quit without {them})", style="bold")])
        asyncio.get_running_loop().create_task(self._quit_when_sent())

    async def _quit_when_sent(self) -> None:
        await self.client.drain()
        self.screen.stop()

    # ------------------------------------------------------------------ what the screen shows

    def has_above_input(self) -> bool:
        return bool(self.client.pending)

    def above_input(self) -> AnyFormattedText:
        """Own lines the server has not acknowledged yet, above the status bar."""
        pending = self.client.pending
        lines = [render.pending(line.text, self.incoming.me, line.to,
                                self.out.colours.colour)
                 for line in pending[-MAX_PENDING_SHOWN:]]
        if len(pending) > MAX_PENDING_SHOWN:
            lines.insert(0, render.Line(render.NO_TIME, Text("*"), Text(
                f"{len(pending) - MAX_PENDING_SHOWN} more lines waiting", style="dim")))
        return ANSI(self.out.ansi(lines, self.screen.width).rstrip("\n"))

    def status(self) -> AnyFormattedText:
        shown, incoming = self.shown, self.incoming
        # While disconnected, who is here is not known.
        here = (f"{len(shown.users) + shown.more} here" if shown.users and incoming.online
                and not shown.private else "")
        topic = shown.topic if len(shown.topic) <= TOPIC_SHOWN \
            else shown.topic[:TOPIC_SHOWN] + "…"
        me = f"@{incoming.me}" if incoming.me in shown.opers else incoming.me
        where = f"with {shown.name}" if shown.private else f"in {shown.name or 'no room'}"
        rest = (topic and f"topic: {topic}", str(self.options.target), incoming.state)
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

    def recent(self, width: int, count: int) -> str:
        return self.out.recent(width, count)
