"""The lines a connection sends while its connect is being decided (PROTOCOL.txt 8.8).

Deciding a connect takes a moment in a cluster (the command goes round the log), and a
client that resumes sends its unacknowledged lines right behind its connect. They
wait here, in order, until the hub has settled the connect and chatd.link goes on
with them; bounded in bytes, each line's overhead counted, so that neither big lines
nor many empty ones pile up. The link drops its backlog once it is settled.
"""

from __future__ import annotations

from typing import Final

# What a held line costs beyond its bytes (a bytes object and its list slot), so that
# empty lines cannot pile up for free (8.8).
HELD_LINE_OVERHEAD: Final = 64


class Backlog:
    """Held lines, at most `limit` bytes of them (HELD_LINE_OVERHEAD each included)."""

    __slots__ = ("limit", "lines", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: list[bytes] = []
        self.size = 0  # bytes held, each line's overhead included

    def __len__(self) -> int:
        return len(self.lines)

    def hold(self, line: bytes) -> bool:
        """Keeps `line` for later; False: it is past the bound, and not kept."""
        cost = len(line) + HELD_LINE_OVERHEAD
        if self.size + cost > self.limit:
            return False
        self.lines.append(line)
        self.size += cost
        return True
