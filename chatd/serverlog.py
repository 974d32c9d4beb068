"""The server log: one timestamped line per event on stderr (or a file), in batches.

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
import contextlib
import json
import sys
import time
from typing import Any, Final, TextIO, TypeAlias

from chatd.protocol import format_time, visible

# What a line is about, when known: connection id, its address, user, room.
About: TypeAlias = tuple[int | None, str | None, str | None, str | None]
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
    """`json`: one JSON object a line (time, level, event, conn, address, user, room,
    message; the fields not known left out), for log collectors. `path`: the log goes to
    this file, reopened by `reopen` (SIGHUP, after logrotate moved it)."""

    def __init__(self, level: str = "info", stream: TextIO | None = None, *,
                 path: str | None = None, json: bool = False) -> None:
        self.threshold = LEVELS[level]
        self.path = path
        self.stream = stream or (_open(path) if path else sys.stderr)
        self.json = json
        self._lines: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stamp = ""  # the time stamp of the current loop turn

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, lines are batched per loop turn instead of written at once."""
        self._loop = loop

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's exception handler (chatd.server sets it): an error no code of ours
        caught, as a log line."""
        exc = context.get("exception")
        what = context.get("message", "error")
        # Failed TLS handshakes and the like: one log line, not a traceback per client.
        if exc is None or isinstance(exc, (OSError, EOFError)):
            self.warning(f"{what}: {exc!r}" if exc else str(what))
            return
        # Anything else is a bug in a callback of ours (the writer's flush, a timer): it
        # may have cost other connections their output, so it is one, loudly.
        self.error(f"internal error in {what}: {exc!r}", "bug")

    def set_level(self, level: str) -> None:
        self.threshold = LEVELS[level]

    def reopen(self) -> None:
        """Write to a new file at `path` (the old one was moved away); keep the old
        stream if the new file cannot be opened."""
        if self.path is None:
            return
        self.flush()
        try:
            stream = _open(self.path)
        except OSError as exc:
            self.error(f"cannot reopen the log file {self.path}: {exc.strerror or exc}",
                       "log_reopen_failed")
            return
        old, self.stream = self.stream, stream
        old.close()

    def debug(self, text: str, event: str = "", *, cid: int | None = None,
              address: str | None = None, user: str | None = None,
              room: str | None = None) -> None:
        if self.threshold <= 10:
            if self.json or cid is not None:
                self._add(" DEBUG ", text, event, (cid, address, user, room))
            else:  # the common case, a chat line's note among them: no tuple
                self._add(" DEBUG ", text)

    def info(self, text: str, event: str = "", *, cid: int | None = None,
             address: str | None = None, user: str | None = None,
             room: str | None = None) -> None:
        if self.threshold <= 20:
            if self.json or cid is not None:
                self._add(" INFO  ", text, event, (cid, address, user, room))
            else:  # the common case, a chat line's note among them: no tuple
                self._add(" INFO  ", text)

    def chat(self, text: str) -> None:
        """A room line's note in text format (chatd.hub.apply.say). Its name and room are
        labels and its text went through clean_message, so of ASCII only a newline or a
        tab can need showing: an ASCII note passes with two searches, not a look at each
        character (about 1% of a line's cost in bench.hotpath)."""
        if self.threshold <= 20:
            self._add(" INFO  ", text, "", None,
                      text.isascii() and "\n" not in text and "\t" not in text)

    def warning(self, text: str, event: str = "", *, cid: int | None = None,
                address: str | None = None, user: str | None = None,
                room: str | None = None) -> None:
        if self.threshold <= 30:
            if self.json or cid is not None:
                self._add(" WARN  ", text, event, (cid, address, user, room))
            else:  # the common case, a chat line's note among them: no tuple
                self._add(" WARN  ", text)

    def error(self, text: str, event: str = "", *, cid: int | None = None,
              address: str | None = None, user: str | None = None,
              room: str | None = None) -> None:
        if self.json or cid is not None:
            self._add(" ERROR ", text, event, (cid, address, user, room))
        else:
            self._add(" ERROR ", text)

    def always(self, text: str, event: str = "") -> None:
        """Lines every level shows: where the server listens, a reload, that it stops.
        With a log file they go to stderr too, for whoever started chatd (or the
        journal) to see where it listens."""
        line = self._add(" INFO  ", text, event, (None, None, None, None) if self.json else None)
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line)
                sys.stderr.flush()

    def _add(self, level: str, text: str, event: str = "", about: About | None = None,
             printable: bool = False) -> str:
        if not self._lines:  # one loop turn, one time stamp: a busy turn logs hundreds
            self._stamp = format_time(time.time())  # as on updates (PROTOCOL.txt 9.2)
        if about is None:  # text without a connection (JSON lines always have `about`)
            # `loggable`, inline for the common line (every chat line is logged)
            shown = text if len(text) <= LOG_TEXT_MAX and (printable or text.isprintable()) \
                else loggable(text)
            line = f"{self._stamp}{level}{shown}\n"
        elif self.json:
            line = self._json(level, text, event, about)
        else:
            line = f"{self._stamp}{level}#{about[0]} {about[1]} {loggable(text)}\n"
        if self._loop is None:
            self.stream.write(line)
            self.stream.flush()
            return line
        if not self._lines:
            self._loop.call_soon(self.flush)
        self._lines.append(line)
        return line

    def _json(self, level: str, text: str, event: str, about: About | None) -> str:
        record: dict[str, object] = {"time": self._stamp, "level": _LEVEL_NAMES[level],
                                     "event": event or "log"}
        cid, address, user, room = about or (None, None, None, None)
        if cid is not None:
            record["conn"] = cid
        if address is not None:
            record["address"] = address
        if user is not None:
            record["user"] = user
        if room is not None:
            record["room"] = room
        record["message"] = loggable(text)
        return json.dumps(record, ensure_ascii=False) + "\n"

    def flush(self) -> None:
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed under us: keep serving
                pass


_LEVEL_NAMES: Final = {" DEBUG ": "debug", " INFO  ": "info", " WARN  ": "warning",
                       " ERROR ": "error"}


def _open(path: str) -> TextIO:
    return open(path, "a", encoding="utf-8")  # open as long as the log
