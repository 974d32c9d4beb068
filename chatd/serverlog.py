"""The server log: one timestamped line per event on stderr, written in batches.

The stdlib `logging` module costs several microseconds a record, which would make the
per-message line dominate fan-out; this writer formats a line in about one and writes
all lines of an event-loop turn with a single `write` (they share the turn's time stamp).
Network text is made visible (`protocol.visible`), so nothing a client sends can forge or
garble log lines, and a line's text is cut at LOG_TEXT_MAX characters, ending with the
size of the whole: every message still gets its line, and the log grows at most 1.5
bytes per byte a client sends (a 64 KiB chat line is logged as about 1 KB).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Final, TextIO

from chatd.protocol import visible

LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}
LOG_TEXT_MAX: Final = 1000  # characters of one log line's text (after its time and level)
_CUT_AT: Final = LOG_TEXT_MAX - 40  # room for the size note, paid for by what is cut


def loggable(text: str) -> str:
    """A log line's text: visible, and cut with its full size noted when it is long."""
    shown = visible(text)
    if len(shown) <= LOG_TEXT_MAX:
        return shown
    return f"{shown[:_CUT_AT]}… ({len(text.encode('utf-8', 'replace')):,} bytes)"


class ServerLog:
    def __init__(self, level: str = "info", stream: TextIO | None = None) -> None:
        self.threshold = LEVELS[level]
        self.stream = stream or sys.stderr
        self._lines: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._second = -1
        self._prefix = ""  # date and time to the second
        self._ms = -1
        self._stamp = ""  # the full time stamp of the current millisecond

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, lines are batched per loop turn instead of written at once."""
        self._loop = loop

    def debug(self, text: str) -> None:
        if self.threshold <= 10:
            self._add(" DEBUG ", text)

    def info(self, text: str) -> None:
        if self.threshold <= 20:
            self._add(" INFO  ", text)

    def warning(self, text: str) -> None:
        if self.threshold <= 30:
            self._add(" WARN  ", text)

    def error(self, text: str) -> None:
        self._add(" ERROR ", text)

    def always(self, text: str) -> None:
        """Lines every level shows: where the server listens, that it stops."""
        self._add(" INFO  ", text)

    def _add(self, level: str, text: str) -> None:
        if self._lines:  # one loop turn, one time stamp: a busy turn logs hundreds
            self._lines.append(f"{self._stamp}{level}{loggable(text)}\n")
            return
        ms = int(time.time() * 1000)
        if ms != self._ms:
            self._ms = ms
            second = ms // 1000
            if second != self._second:
                self._second = second
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamp = f"{self._prefix}.{ms % 1000:03d}Z"
        line = f"{self._stamp}{level}{loggable(text)}\n"
        if self._loop is None:
            self.stream.write(line)
            self.stream.flush()
            return
        if not self._lines:
            self._loop.call_soon(self.flush)
        self._lines.append(line)

    def flush(self) -> None:
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed under us: keep serving
                pass
