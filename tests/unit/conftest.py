"""Unit tests run without the network: a socket of the internet families fails here
(asyncio's own socketpair is AF_UNIX and stays). What needs a real socket is an
end-to-end test (tests/e2e)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

_socket_init = socket.socket.__init__


def _no_network(self: socket.socket, family: Any = -1, *args: Any, **kwargs: Any) -> None:
    if family in (socket.AF_INET, socket.AF_INET6, -1):
        raise AssertionError("a unit test opened a network socket: make it an e2e test")
    _socket_init(self, family, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "__init__", _no_network)
    yield
