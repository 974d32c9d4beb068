"""chatd.net: what the TCP and web shells share."""

from __future__ import annotations

from chatd.net import end_reason, peer_address, tls_context


def test_peer_address_brackets_ipv6_and_survives_a_missing_name() -> None:
    assert peer_address(("127.0.0.1", 5000)) == ("127.0.0.1", "127.0.0.1:5000")
    assert peer_address(("::1", 5000, 0, 0)) == ("::1", "[::1]:5000")
    assert peer_address(None) == ("", "?")


def test_end_reason_in_a_few_words() -> None:
    assert end_reason(ConnectionResetError(104, "Connection reset by peer")) == \
        "connection reset"
    assert end_reason(TimeoutError()) == "timed out"
    assert end_reason(BrokenPipeError(32, "Broken pipe")) == "broken pipe"
    assert end_reason(ValueError("x")) == "ValueError"


def test_no_tls_without_a_certificate() -> None:
    assert tls_context(None, None) is None
