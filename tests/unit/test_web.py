"""The web gateway's adapter (PROTOCOL.txt 13), its pure parts; the same adapter on a
real socket is in tests/e2e/test_web_in_process.py.
"""

from __future__ import annotations

from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close, CloseCode

from chatd.web import lost_reason


def _closed(sent: Close | None, rcvd: Close | None) -> ConnectionClosedError:
    return ConnectionClosedError(rcvd, sent)


def test_lost_reasons_read_like_tcp_ones() -> None:
    assert isinstance(lost_reason(_closed(None, None)), ConnectionResetError)
    keepalive = lost_reason(_closed(Close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"),
                                    None))
    assert isinstance(keepalive, TimeoutError)
    big = lost_reason(_closed(Close(CloseCode.MESSAGE_TOO_BIG, "frame too big"), None))
    assert isinstance(big, OSError) and big.strerror == "websocket closed: message too big"
