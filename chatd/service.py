"""The chatd process: the TCP server (chatd.server), with the web gateway (chatd.web) and
the metrics endpoint (chatd.metrics) beside it when asked for, until a signal stops it.

The shells do not import each other: this module starts each and hands the server the
gateway and the endpoint, which it knows only as chatd.net's `Gateway` and `Endpoint`.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import sqlite3
import ssl
from collections.abc import Callable

from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig


async def start(server: Server) -> list[str]:
    """Listen on every port the config names; returns the bound addresses."""
    bound = await server.start()
    config = server.config
    if config.web_port is not None:
        from chatd.web import WebGateway  # only servers with --web need websockets

        web = await WebGateway.start(server)
        server.web = web
        bound.extend(web.bound)
    if config.metrics is not None:
        from chatd.metrics import MetricsEndpoint  # only with --metrics

        metrics = MetricsEndpoint(server)
        server.metrics = metrics
        await metrics.start(config.metrics)
        bound.append(metrics.bound)
    return bound


def _reload(server: Server, log: ServerLog, read: Callable[[], ServerConfig]) -> None:
    """SIGHUP: the log file again (logrotate), then the settings; a bad file changes
    nothing."""
    log.reopen()
    try:
        lines = server.reconfigure(read())
    except Exception as exc:  # a bad file, a certificate that does not load: keep going
        log.error(f"reload failed, nothing changed: {exc}", event="reload")
        return
    for line in lines:
        log.always(line, event="reload")


async def serve(config: ServerConfig, log: ServerLog,
                ready: Callable[[list[str]], None] | None = None,
                reload: Callable[[], ServerConfig] | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    try:
        server = Server(config, log)
        bound = await start(server)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            where = exc.filename or f"port {config.port}"  # the web gateway names its port
            log.error(f"cannot listen on {where}: address already in use")
        else:
            log.error(f"cannot start: {exc.strerror or exc}"
                      + (f": {exc.filename}" if exc.filename else ""))
        return 2
    except (ssl.SSLError, sqlite3.Error, ValueError) as exc:
        log.error(f"cannot start: {exc}")
        return 2
    log.always("chatd listening on " + ", ".join(bound) + (" (TLS)" if config.tls_cert else ""))
    if ready is not None:
        ready(bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, server, log, reload)
    await stop.wait()
    log.always(f"shutting down: telling {len(server.connections)} connection(s)")
    await server.shutdown()
    log.always("bye")
    log.flush()
    return 0
