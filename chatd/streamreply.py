"""Redis stream replies as chatd reads them: entries with their fields, ids as numbers.

redis-py hands back XRANGE and XREAD replies as nested lists of bytes; the log
(chatd.cluster) and the room streams (chatd.roomstreams) both read them through these.
"""

from __future__ import annotations

from typing import Any

Fields = dict[bytes, bytes]


def as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entries(response: Any) -> list[tuple[str, Fields]]:
    """Stream entries out of an XRANGE reply, or out of an XREAD reply for one stream."""
    if not response:
        return []
    if isinstance(response[0], list) and len(response[0]) == 2 and isinstance(
            response[0][1], list):  # XREAD: [[stream, entries]]
        response = response[0][1]
    return [(as_str(entry_id), fields) for entry_id, fields in response]


def split_id(entry_id: str) -> tuple[int, int]:
    """A stream id ("1764100800123-0") as (milliseconds, sequence), to compare ids."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)
