"""Framing: bytes -> lines (PROTOCOL.txt 1.2, 1.4, 2.1, 8.1).

A *line* is the bytes between two "\\n" (one "\\r" before it dropped), at most
`max_bytes` long. This module splits a byte stream into lines under that bound, decodes
a line as UTF-8, and tells a connection's mode from its first line. It knows nothing of
JSON or of what a line means (events.py and textmode.py do).
"""

from __future__ import annotations

from typing import Final

from chatd.protocol.constants import DEFAULT_MAX_LINE_BYTES
from chatd.protocol.errors import ErrorCode, ProtocolError


class LineTooLong:
    """Marker yielded by `LineSplitter` in place of a line over the limit."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LINE_TOO_LONG"


LINE_TOO_LONG: Final = LineTooLong()


class LineSplitter:
    """Splits a byte stream into lines of at most `max_bytes` (without `\\n` / `\\r\\n`).

    A longer line yields `LINE_TOO_LONG` once, as soon as it passes the limit, and the
    rest of it is discarded up to its newline: the splitter never holds more than
    `max_bytes` of an unfinished line.
    """

    __slots__ = ("_buf", "_skipping", "max_bytes")

    def __init__(self, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = b""
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held now."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        parts = data.split(b"\n")
        tail = parts.pop()
        out: list[bytes | LineTooLong] = []
        limit = self.max_bytes
        if parts:
            first = parts[0]
            if self._skipping:
                self._skipping = False
                parts = parts[1:]
            elif self._buf:
                parts[0] = self._buf + first
            self._buf = b""
            for part in parts:
                line = part[:-1] if part.endswith(b"\r") else part
                out.append(LINE_TOO_LONG if len(line) > limit else line)
        if tail and not self._skipping:
            held = len(self._buf) + len(tail)
            # One byte of slack only for a "\r" that may yet be followed by its "\n".
            if held > limit + 1 or (held == limit + 1 and not tail.endswith(b"\r")):
                out.append(LINE_TOO_LONG)
                self._buf = b""
                self._skipping = True
            else:
                self._buf += tail
        return out


def decode_utf8(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            ErrorCode.BAD_UTF8, f"line is not valid UTF-8 (byte {exc.start})"
        ) from None


def looks_like_json(line: bytes) -> bool:
    """Decides a connection's mode from its first line (PROTOCOL.txt section 6)."""
    return line.lstrip(b" \t").startswith(b"{")
