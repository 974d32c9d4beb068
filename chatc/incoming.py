"""What the session reports, shown in the terminal (chatc.app handles what the user
types): the server's lines in the windows they belong to (chatc.windows says which),
the session's own news (an own line taken or refused, the connection lost and back,
what was missed meanwhile) as chatc's lines, and the bell on a mention.
"""

from __future__ import annotations

from chatc import render
from chatc.connection import Client
from chatc.conversation import Conversation
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
from chatc.readsync import ReadSync
from chatc.screen import Screen
from chatc.session import NO_ANSWER
from chatc.windowlist import Window
from chatc.windows import Windows
from chatc.words import words
from chatd import protocol as p

PREVIEW_CHARS = 30  # of an own line named in a notice


def preview(text: str) -> str:
    text = render.safe(text)
    return f"“{text[:PREVIEW_CHARS]}…”" if len(text) > PREVIEW_CHARS else f"“{text}”"


class Incoming:
    """The session as the terminal knows it: the user's name, whether connected, and
    where a batch of history lines stands."""

    def __init__(self, client: Client, windows: Windows[render.Line], out: Conversation,
                 screen: Screen, bell: bool) -> None:
        self.client = client
        self.windows = windows
        self.out = out
        self.screen = screen
        self.bell = bell
        self.reads = ReadSync(self._send_read)
        self.me = ""
        self.welcomed_as = ""  # the name of the last welcome: a new session may differ
        self.asked_name: str | None = None  # of the last /nick, for "try NAME_"
        self.state = ""
        self.online = True  # False from a lost connection to the next welcome
        self.in_history = False  # between the divider above a history batch and its end
        self.missed = False  # the next history batch is what a reconnect missed
        self.away = 0.0  # seconds the last reconnect took, until it is told

    @property
    def shown(self) -> Window[render.Line]:
        window = self.windows.current
        assert window is not None  # the welcome opened one
        return window

    async def receive(self) -> int:
        """Show what comes until the session is gone; its exit status."""
        async for event in self.client.events():
            self.me = self.client.name or self.me
            if isinstance(event, Gone):
                if event.reason is not None:
                    self.state = "disconnected"
                    # An operator's removal is in the server's own words, said this once.
                    said = event.reason if event.removed else f"chatc: {event.reason}"
                    self.out.print([render.error(said)])
                self.screen.stop()
                return event.status
            self._show(event)
            self.screen.refresh()
        return 0

    def _show(self, event: SessionEvent) -> None:
        if isinstance(event, Confirmed):
            self.in_history = False
            shown = [render.chat(self.me, event.line.text, self.me, event.time,
                                 to=event.line.to, colours=self.out.colours.colour)]
            if event.late:
                shown.append(render.notice(f"the server took {preview(event.line.text)} "
                                           "after all"))
            where = self.windows.own(event.line)
            # A /msg from another window is said there too, so that its sender sees it.
            also = event.line.to is not None and where is not self.shown
            self.out.show_in([where, self.shown] if also else [where], shown)
        elif isinstance(event, Failed):
            self._failed(event)
        elif isinstance(event, Throttled):
            self.out.print([render.notice(f"flood control: sending your line again in "
                                          f"{event.retry_in:g}s")])
        elif isinstance(event, Lost):
            self._lost(event)
        elif isinstance(event, Reconnected):
            self._reconnected(event)
        elif isinstance(event, CaughtUp):
            self.in_history = self.missed = False
            self.out.print([render.notice(render.back(self.away, False, event.count,
                                                      event.known), style="bold")])
        elif not isinstance(event, Gone):
            self._update(event)

    def _failed(self, event: Failed) -> None:
        err, line = event.error, event.line
        said = words(err, to=line.to, name=self.asked_name,
                     limit=self.client.max_line_bytes)
        if err.code == NO_ANSWER:
            self.out.print([render.error(f"{preview(line.text)}: {said}", err.code)])
        else:
            self.out.print([render.error(f"{preview(line.text)} not sent: {said}",
                                         err.code)])

    def _update(self, update: p.Update) -> None:
        if isinstance(update, p.ReadMark):  # read here or on another device
            self._mark(update)
            return
        if isinstance(update, p.AccountNote):
            self.reads.account_note(update, self.shown)
        if isinstance(update, p.Error):
            self.in_history = False
            self.windows.place(update)
            self.out.print([render.error(words(update, name=self.asked_name), update.code)])
            return
        before = self.shown
        where = self.windows.place(update)
        self.client.follow(self.windows.server_room)
        if self.shown is not before:
            self.out.draw_shown()  # a join's answer opened its window, or a part closed one
        if isinstance(update, p.Chat) and update.history:
            if not self.in_history:
                self.in_history = True
                title = ("missed while disconnected" if self.missed
                         else f"earlier in {update.room or self.shown.name}")
                self.out.show_in(where, [render.divider(title)])
        elif isinstance(update, p.HistoryEnd):
            self.in_history = self.missed = False
        else:
            self.in_history = False
        colours = self.out.colours
        colours.present(self.shown.users)
        # A line of the user's own, sent from another device (PROTOCOL.txt 18.4), is
        # never unread and rings nothing.
        chat = isinstance(update, p.Chat) and not update.history and not update.own
        shown = render.render(self.windows.marked(update), self.me, colours=colours.colour)
        mention = self.windows.is_mention(update)
        self.out.show_in(where, shown, unread=chat, mention=mention)
        if isinstance(update, p.Chat):
            self.reads.arrived(update, where, self.shown)
        if chat and (mention or (isinstance(update, p.Chat) and update.mention
                                 and update.name != self.me)):
            self._ring()

    def _ring(self) -> None:
        # Once a line: with is_mention and the server's mark agreeing, still one bell.
        if self.bell:
            self.screen.bell()

    def _mark(self, mark: p.ReadMark) -> None:
        """The server's count of what is unread in a room (18.5) replaces chatc's."""
        if self.windows.read(mark):
            self.screen.app.invalidate()

    def _send_read(self, read: p.Read) -> None:
        if self.online:
            self.client.command(read)

    def welcomed(self, welcome: p.Welcome) -> None:
        """A welcome, the first or after a reconnect: its rooms' windows, and the
        lines that put a new session in every room of a window again."""
        before = {w.name for w in self.windows.windows if not w.private}
        shown = self.windows.current
        for event in self.windows.welcome(welcome):
            self.client.command(event)
        self.me = self.welcomed_as = welcome.name
        self.reads.account = welcome.account
        for mark in welcome.read:
            self._mark(mark)
        gone = sorted(before - {w.name for w in self.windows.windows if not w.private})
        if gone:
            self.out.print([render.notice(f"you are no longer in {', '.join(gone)}; "
                                          "/join ROOM to go back", style="bold")])
        if shown is not None and self.windows.current is not shown:
            self.out.draw_shown()
        self.out.colours.present(self.shown.users)
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
            self.out.print([render.notice(text, style="bold red")])

    def _reconnected(self, event: Reconnected) -> None:
        """One line says it all: now if the session resumed, else once the missed lines
        are fetched (CaughtUp), with how many. The server's notice why it could not
        resume is in that line's words ("as a new session"); a new session under another
        name (the name taken meanwhile, or an account's with no login, PROTOCOL.txt 10.4,
        18.3) is said at once, with the server's reason."""
        before = self.welcomed_as
        was_oper = any(before in w.opers for w in self.windows.windows)
        welcome = event.welcome
        self.welcomed(welcome)
        self.away = event.away
        if welcome.resumed:
            self.out.print([render.notice(render.back(event.away, True), style="bold")])
            return
        self.missed = True
        if before and welcome.name != before:
            why = f" ({welcome.notice})" if welcome.notice else ""
            self.out.print([render.notice(f"you are {welcome.name} now, not {before}{why}",
                                          style="bold")])
        # Operator status is the session's (15.1); an --oper account's comes back by
        # itself. A crowd's welcome may not list us: then it cannot tell.
        if was_oper and welcome.name in welcome.users and welcome.name not in welcome.opers:
            self.out.print([render.notice("you are no longer an operator: the server "
                                          "restarted; /oper NAME PASSWORD makes you one "
                                          "again", style="bold")])
