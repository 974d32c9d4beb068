"""What a client is told of a line the link drops without closing the connection.

Flood control (PROTOCOL.txt 8.3) and the backlog's bound (8.8) drop a line and go on;
the error says which limit it went over, and names the line: a JSON client by its ref,
so it knows which of its pending lines was lost (4.10); a person at nc by its start,
since they cannot tell otherwise. Pure wording, for chatd.link.
"""

from __future__ import annotations

from chatd import protocol as p
from chatd.limits import Verdict
from chatd.protocol import ErrorCode, ProtocolError

SHOWN_START = 60  # bytes of a dropped line shown to a person at nc


def ref_of(line: bytes) -> str | None:
    """The ref of a JSON chat line; None if it has none (or is no chat line)."""
    if b'"ref"' not in line:
        return None
    try:
        event = p.parse_json_line(line)
    except ProtocolError as exc:
        return exc.ref
    return event.ref if isinstance(event, p.Message) else None


def over_rate(verdict: Verdict, line: bytes, *, text: bool, rate: float, byte_rate: float,
              byte_burst: int) -> ProtocolError:
    """A line over flood control's lines a second (LIMITED) or bytes a second (8.3)."""
    limit = (f"more than {rate:g} lines a second" if verdict is Verdict.LIMITED
             else f"more than {byte_rate:,.0f} bytes a second (after {byte_burst:,} at once)")
    if text:
        start = line[:SHOWN_START].decode("utf-8", "replace").rstrip()
        return ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"{limit}; not sent: {start if len(line) <= SHOWN_START else start + '...'}")
    return ProtocolError(ErrorCode.RATE_LIMITED, f"{limit}; line dropped", ref_of(line))


def over_backlog(line: bytes, *, text: bool, limit: int) -> ProtocolError:
    """A line past the bytes held while a connect is being decided (8.8)."""
    return ProtocolError(
        ErrorCode.RATE_LIMITED,
        f"more than {limit:,} bytes of lines before the welcome; line dropped",
        None if text else ref_of(line))
