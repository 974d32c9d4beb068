"""Times: the server's time stamps on updates (PROTOCOL.txt 9.2), RFC 3339 UTC with
milliseconds as in IRCv3 server-time."""

from __future__ import annotations

from datetime import UTC, datetime

_ms = -1  # the millisecond of the last time stamp: many updates share one
_text = ""  # its text
_second = -1  # the second of `_date`: strftime once a second
_date = ""  # "YYYY-MM-DDTHH:MM:SS."


def format_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as IRCv3 server-time."""
    global _ms, _text, _second, _date  # module state: one per process, on the hot path
    ms = int(epoch * 1000)
    if ms != _ms:
        second = ms // 1000
        if second != _second:
            _second, _date = second, datetime.fromtimestamp(second, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.")
        _ms, _text = ms, f"{_date}{ms % 1000:03d}Z"
    return _text


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
