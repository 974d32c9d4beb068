"""chatc's windows in their order, pure: which one is shown, each one's recent lines
within a byte budget, unread counts, and the status bar's list of them.

It knows nothing of the server: chatc.windows, a `WindowList` that follows the server's
lines, decides which windows to open, show and close, and what a window's members are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rich.cells import cell_len

from chatd import protocol as p

WINDOW_BYTES = 256 * 1024  # of recent lines kept per window (its oldest go first)
MAX_WINDOWS = 60  # past it, opening a private window closes the longest-idle other one
# Bytes counted per kept line besides its text: a rendered line's objects take about
# 1 KB (tracemalloc over 2,000 rendered chat lines of 40 characters), so a window keeps
# some 200 short lines, several screens, and all windows together at most ~15 MB.
LINE_OVERHEAD = 1024

NO_ROOM = "(no room)"
L = TypeVar("L")  # what a window keeps of a line (chatc.conversation: a rendered line)


def key(name: str) -> str:
    """A room's or a name's key: two that differ only in case or look-alikes are one."""
    return p.name_key(name)


@dataclass(eq=False)
class Window(Generic[L]):
    """A room (`private` False) or a private conversation with `name`."""

    name: str
    private: bool = False
    users: list[str] = field(default_factory=list)  # a room's members, in arrival order
    more: int = 0  # members the server counted but did not list (a crowd, PROTOCOL.txt 4.1)
    opers: set[str] = field(default_factory=set)
    topic: str = ""
    unread: int = 0  # chat lines arrived while another window was shown
    mentions: int = 0  # of those, lines that name the user (or private lines)
    lines: deque[tuple[L, int]] = field(default_factory=deque)  # (line, bytes), newest last
    size: int = 0  # bytes of `lines`
    used: int = 0  # when a line last came (a counter): the longest idle closes first

    @property
    def label(self) -> str:
        """As the status bar and prompt name it."""
        return f"*{self.name}*" if self.private else self.name or NO_ROOM

    @property
    def roomless(self) -> bool:
        """The window left when the user parted every room: the next room joined
        takes it over (its number and lines), as irssi's window 1."""
        return not self.private and not self.name

    def keep(self, line: L, size: int, budget: int) -> None:
        self.lines.append((line, size))
        self.size += size
        while self.size > budget and len(self.lines) > 1:
            self.size -= self.lines.popleft()[1]

    def recent(self) -> list[L]:
        return [line for line, _ in self.lines]


class WindowList(Generic[L]):
    """The windows, in opening order (window 1 is the first room), and the shown one."""

    def __init__(self, *, budget: int = WINDOW_BYTES, max_windows: int = MAX_WINDOWS
                 ) -> None:
        self.budget = budget
        self.max_windows = max_windows
        self.windows: list[Window[L]] = []
        self.current: Window[L] | None = None
        self._clock = 0

    # ------------------------------------------------------------------ queries

    def room(self, name: str) -> Window[L] | None:
        k = key(name)
        return next((w for w in self.windows if not w.private and key(w.name) == k), None)

    def partner(self, name: str) -> Window[L] | None:
        k = key(name)
        return next((w for w in self.windows if w.private and key(w.name) == k), None)

    def number(self, window: Window[L]) -> int:
        return self.windows.index(window) + 1

    def select_number(self, number: int) -> Window[L] | None:
        """Window `number` (1-based), if there is one."""
        return self.windows[number - 1] if 1 <= number <= len(self.windows) else None

    def beside(self, step: int) -> Window[L] | None:
        """The window `step` places right (left when negative) of the shown one, round."""
        if not self.windows or self.current is None:
            return None
        at = self.windows.index(self.current)
        return self.windows[(at + step) % len(self.windows)]

    def status(self, width: int | None = None) -> str:
        """The windows as the status bar lists them: `[1:lobby] 2:dev(3) 3:*bob*(!1)`:
        the shown one in brackets; unread lines counted, `!` when one names the user.
        Past `width` terminal cells the quiet windows keep only their numbers, then go,
        and last the names go too: what is unread never falls off the row's edge."""
        # (quiet windows: named, numbered or left out; the others named)
        forms = ((True, True, True), (False, True, True), (False, False, True),
                 (False, False, False))
        tries = [self._listed(*form) for form in forms]
        return next((t for t in tries if width is None or cell_len(t) <= width), tries[-1])

    def _listed(self, quiet_named: bool, quiet_kept: bool, named: bool) -> str:
        parts = []
        for n, window in enumerate(self.windows, 1):
            loud = window is self.current or window.unread > 0
            if not (loud or quiet_kept):
                continue
            text = f"{n}:{window.label}" if (named if loud else quiet_named) else str(n)
            if window.unread:
                text += f"({'!' if window.mentions else ''}{window.unread})"
            parts.append(f"[{text}]" if window is self.current else text)
        return " ".join(parts)

    def here(self) -> list[Window[L]]:
        """The shown window, as a list of where a line goes."""
        return [self.current] if self.current is not None else []

    # ------------------------------------------------------------------ lines

    def keep(self, window: Window[L], line: L, size: int, *, unread: bool = False,
             mention: bool = False) -> bool:
        """Keep a line of `window` (`size`: its bytes); True if it is the one shown.
        `unread`: a chat line, counted while another window is shown."""
        self._clock += 1
        window.used = self._clock
        window.keep(line, size + LINE_OVERHEAD, self.budget)
        if window is self.current:
            return True
        if unread:
            window.unread += 1
            window.mentions += mention
        return False

    # ------------------------------------------------------------------ opening, closing

    def show(self, window: Window[L]) -> None:
        self.current = window
        window.unread = window.mentions = 0

    def add(self, window: Window[L]) -> Window[L]:
        """Add `window` (a room's takes over the roomless window, if there is one);
        past `max_windows`, the longest-idle private window not shown closes."""
        empty = next((w for w in self.windows if w.roomless), None)
        if empty is not None and not window.private:
            empty.name = window.name
            return empty
        if self.current is None:
            self.current = window
        self._clock += 1
        window.used = self._clock
        self.windows.append(window)
        idle = [w for w in self.windows if w.private and w is not self.current
                and w is not window]
        while len(self.windows) > self.max_windows and idle:
            oldest = min(idle, key=lambda w: w.used)
            idle.remove(oldest)
            self.windows.remove(oldest)
        return window

    def open_private(self, name: str) -> Window[L]:
        window = self.partner(name)
        if window is None:
            window = self.add(Window(name, private=True))
        return window

    def remove(self, window: Window[L], then: Window[L] | None) -> None:
        """Close `window`; if it is the shown one, `then` (if still open) is shown
        instead, else its left neighbour, else a new roomless window."""
        if window not in self.windows:
            return
        at = self.windows.index(window)
        self.windows.remove(window)
        if window is not self.current:
            return
        nxt = then if then in self.windows else None
        if nxt is None and self.windows:
            nxt = self.windows[max(0, at - 1)]
        if nxt is None:
            nxt = Window("")  # every room left, no private window: an empty one
            self.windows.append(nxt)
        self.show(nxt)
