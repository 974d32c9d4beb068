"""Times: the server's time stamps on updates (PROTOCOL.txt 9.2), RFC 3339 UTC with
milliseconds as in IRCv3 server-time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_last_time: list[Any] = [-1, ""]  # [millisecond, its text]: many updates share one
_last_second: list[Any] = [-1, ""]  # [second, "YYYY-MM-DDTHH:MM:SS."]: strftime once a second


def format_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as IRCv3 server-time."""
    ms = int(epoch * 1000)
    if ms != _last_time[0]:
        second = ms // 1000
        if second != _last_second[0]:
            stamp = datetime.fromtimestamp(second, UTC)
            _last_second[:] = second, stamp.strftime("%Y-%m-%dT%H:%M:%S.")
        _last_time[:] = ms, f"{_last_second[1]}{ms % 1000:03d}Z"
    text: str = _last_time[1]
    return text


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
