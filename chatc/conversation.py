"""The conversation above the terminal's input area (chatc.screen owns the area).

Every line is kept in the windows it belongs to (chatc.windows counts it unread where
it is not shown); the shown window's lines are rendered to ANSI text by rich and
written a loop turn's worth at a time: a burst of lines costs one redraw of the input
area, not one each.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable

from rich.console import Console

from chatc import render
from chatc.screen import Screen
from chatc.windowlist import Window
from chatc.windows import Windows
from chatd.palette import NameColours


class Conversation:
    """The lines of every window, the writing of the shown one's, and its names'
    colours."""

    screen: Screen  # made once joined

    def __init__(self, windows: Windows[render.Line], color: bool) -> None:
        self.windows = windows
        self.console = Console(file=io.StringIO(), force_terminal=True, no_color=not color,
                               highlight=False, markup=False, emoji=False)
        # Of the shown room: no two share one while there are enough.
        self.colours = NameColours()
        self._out: list[str] = []
        self._writing = False

    def ansi(self, lines: Iterable[render.Line], width: int) -> str:
        """`lines` as ANSI text at `width` columns, each row ending in a newline."""
        self.console.width = max(20, width)
        with self.console.capture() as cap:
            for line in lines:
                self.console.print(line)
        return cap.get()

    def recent(self, width: int, count: int) -> str:
        """The shown window's last `count` lines (to draw them again)."""
        window = self.windows.current
        return self.ansi(window.recent()[-count:] if window is not None else [], width)

    def print(self, lines: list[render.Line]) -> None:
        """chatc's own lines: in the shown window."""
        self.show_in(self.windows.here(), lines)

    def print_now(self, lines: list[render.Line]) -> None:
        self.print(lines)
        self.flush()

    def show_in(self, windows: list[Window[render.Line]], lines: list[render.Line],
                unread: bool = False, mention: bool = False) -> None:
        """Keep `lines` in each of `windows`; write them if one is the shown one.
        `unread`: chat lines, counted where they are not shown."""
        shown = False
        for window in windows:
            for line in lines:
                size = len(line.head.plain) + len(line.body.plain.encode("utf-8", "replace"))
                shown = self.windows.keep(window, line, size, unread=unread,
                                          mention=mention) or shown
        if shown and lines:
            self._out.append(self.ansi(lines, self.screen.width))
            if not self._writing:
                self._writing = True
                asyncio.get_running_loop().call_soon(self.flush)

    def draw_shown(self) -> None:
        """The shown window changed: its recent lines replace the conversation."""
        self.flush()
        window = self.windows.current
        self.colours.present(window.users if window is not None else [])
        self.screen.show_again()

    def flush(self) -> None:
        """Write what waits now (a new window drawn, or quitting)."""
        self._writing = False
        if self._out:
            self.screen.write("".join(self._out))
            self._out.clear()
