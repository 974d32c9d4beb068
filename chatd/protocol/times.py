"""Times: the server's time stamps on updates (PROTOCOL.txt 9.2), RFC 3339 UTC with
milliseconds as in IRCv3 server-time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_last_time: list[Any] = [-1, ""]  # [millisecond, its text]: many updates share one


def format_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as IRCv3 server-time."""
    ms = int(epoch * 1000)
    if ms != _last_time[0]:
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
        _last_time[:] = ms, stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    text: str = _last_time[1]
    return text


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
