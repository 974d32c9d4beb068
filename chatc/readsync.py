"""Read markers in the terminal (PROTOCOL.txt 18.5): the asyncio side of chatc.readmarks.

While logged in to an account, the newest line of the room shown is seen by the user:
its read line goes to the server when chatc.readmarks says (at most one a second per
room), on the event loop's clock. Line mode sends none: nobody is known to read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chatc.readmarks import ReadMarks
from chatc.windowlist import Window
from chatd import protocol as p


class ReadSync:
    """The account logged in to, each room's newest line, and the timer for read lines
    held back; `send` sends one (if connected)."""

    def __init__(self, send: Callable[[p.Read], None]) -> None:
        self.account = ""  # logged in to (18.3): then read markers are sent
        self.marks = ReadMarks()
        self._send = send
        self._newest: dict[str, str] = {}  # room -> the id of its newest chat line
        self._timer: asyncio.TimerHandle | None = None

    def account_note(self, note: p.AccountNote, shown: Window[Any]) -> None:
        """/register logs the user in at once (PROTOCOL.txt 18.2): read markers from now
        on, as after a login; an account unregistered or dropped has none (18.7, 18.8:
        an operator who drops another's account is told too, and keeps theirs)."""
        if note.event == "registered" and not self.account:
            self.account = note.account
            self.seen(shown)
        elif note.event in ("unregistered", "dropped") and note.account == self.account:
            self.account = ""

    def arrived(self, chat: p.Chat, where: list[Window[Any]], shown: Window[Any]) -> None:
        """A room's line, shown in `where`: seen at once in the shown window."""
        if chat.to is not None or not chat.id:
            return
        for window in where:
            if not window.private and window.name:
                self._newest[window.name] = chat.id
                if window is shown:
                    self.seen(window)

    def seen(self, window: Window[Any]) -> None:
        """The user has the lines of `window` in front of them."""
        newest = self._newest.get(window.name) if not window.private else None
        if self.account and newest is not None:
            self._send_reads(self.marks.seen(window.name, newest,
                                             asyncio.get_running_loop().time()))

    def forget(self, room: str) -> None:
        """Parting `room`: a read line after the part would be refused (not_in_room)."""
        self.marks.forget(room)

    def _send_reads(self, reads: list[p.Read]) -> None:
        for read in reads:
            self._send(read)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.marks.deadline
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(due, lambda: self._send_reads(
                self.marks.due(loop.time())))
