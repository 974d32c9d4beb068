"""chatc.connection's own words without a network (the session's decisions are tested
in test_chatc_session.py)."""

from __future__ import annotations

import socket
import ssl

import pytest

from chatc import connection as c

TARGET = c.Target("127.0.0.1", 5000)


@pytest.mark.parametrize(("exc", "text"), [
    (ConnectionRefusedError(111, "Connection refused"),
     "connection to 127.0.0.1:5000 refused (is chatd running there?)"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
     "unknown host '127.0.0.1'"),
    (TimeoutError(), "127.0.0.1:5000 did not answer in time"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection reset"),
    (OSError(113, "No route to host"), "127.0.0.1:5000 is unreachable (no route to host)"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
     "TLS failed with 127.0.0.1:5000"),
])
def test_failures_read_as_one_line(exc: BaseException, text: str) -> None:
    described = c.describe(exc, TARGET)
    assert described.startswith(text) and "\n" not in described


def test_untrusted_certificate_says_what_to_do() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    assert c.describe(exc, TARGET) == (
        "TLS certificate of 127.0.0.1:5000 not trusted (self-signed certificate); "
        "use --cafile FILE or --insecure")


def test_ipv6_target_is_bracketed() -> None:
    assert str(c.Target("::1", 5000)) == "[::1]:5000"
