"""What the two shells (chatd.tcp for TCP, chatd.web for WebSocket) share.

Both shells import this module and neither imports the other (the web shell names the
TCP shell's types for mypy only); chatd.service starts both. The server (chatd.server)
knows the web gateway and the metrics endpoint by the protocols below.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Protocol


class Gateway(Protocol):
    """The web gateway as the server sees it (chatd.web.WebGateway): stopped with the
    server, and given the new TLS certificate on a reload."""

    tls: ssl.SSLContext | None

    def stop_accepting(self) -> None: ...

    async def close(self) -> None: ...


class Endpoint(Protocol):
    """The metrics endpoint as the server sees it (chatd.metrics.MetricsEndpoint)."""

    def close(self) -> None: ...


def peer_address(peer: Any) -> tuple[str, str]:
    """(ip, "ip:port") of a socket's peer name; IPv6 addresses in brackets."""
    if isinstance(peer, tuple):
        host = f"[{peer[0]}]" if ":" in peer[0] else peer[0]
        return peer[0], f"{host}:{peer[1]}"
    return "", "?"


def end_reason(exc: BaseException) -> str:
    """Why a connection ended, in a few words for the log and the leave notice."""
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server side of TLS for --tls-cert/--tls-key (PROTOCOL.txt 11.1); None without."""
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def release_transport(transport: asyncio.BaseTransport) -> None:
    """Break the cycle a closed asyncio selector transport (the loop chatd runs with TLS)
    keeps with itself: its read callback is one of its own bound methods. Only a full
    collection would free it, and chatd.heap counts on connections freed without one.
    (uvloop's transports have no such callback: nothing to do.)"""
    if transport.is_closing() and getattr(transport, "_read_ready_cb", None) is not None:
        transport._read_ready_cb = None  # type: ignore[attr-defined]


def forget_tracebacks(error: BaseException | None) -> None:
    """Drop the tracebacks of an error that ended a connection, and of the errors it was
    raised in the handling of: each holds the frames it was raised in, which hold the
    connection (see `release_transport` for why that matters)."""
    seen = 0
    while error is not None and seen < 16:  # a chain is short; a loop of them is not ours
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
        seen += 1
