"""Prometheus metrics and health checks on an address of their own (`--metrics`).

The chat path counts in plain ints on the objects that do the work (the server, the
writer, the history store, the cluster bus); nothing there calls into prometheus_client.
`ServerCollector` reads those ints when Prometheus scrapes, so a scrape costs one pass
over the connections and a delivery costs an integer addition. The event loop's lag is
measured by a timer ten times a second (`LoopLag`), the only metric observed as it
happens.

The HTTP side is the websockets library's (as for the page, chatd.webhttp): every request is
answered from `process_request`, nothing is ever upgraded. `/healthz` says the loop
serves; `/readyz` also checks that chatd listens, that the history database takes writes
and that a cluster node follows the log (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, cast

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatd import protocol as p
from chatd.protocol import ErrorCode

if TYPE_CHECKING:
    from chatd.cluster import RedisBus
    from chatd.connection import Connection
    from chatd.server import Server

LAG_EVERY: Final = 0.1  # seconds between two measurements of the loop's lag
LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CAUGHT_UP: Final = 5.0  # seconds behind the cluster's log past which a node is not ready


class LoopLag:
    """How late a timer fires: the time the loop was busy with something else."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "chatd_event_loop_lag_seconds", "How late a timer set every 0.1 s fires: "
            "the time the event loop spent on other work first",
            buckets=LAG_BUCKETS, registry=registry)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + LAG_EVERY
        self._handle = loop.call_at(self._due, self._fired, loop)

    def _fired(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self.histogram.observe(max(0.0, now - self._due))
        self._due = now + LAG_EVERY
        self._handle = loop.call_at(self._due, self._fired, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


class ServerCollector(Collector):
    """The server's counters and gauges, read at scrape time."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        connections = GaugeMetricFamily(
            "chatd_connections", "Open client connections by transport and mode "
            "(mode pending: not decided yet)", labels=["transport", "mode"])
        counts: dict[tuple[str, str], int] = {}
        for conn in list(server.connections.values()):
            key = (server.transport_of(conn), conn.link.mode.value)
            counts[key] = counts.get(key, 0) + 1
        for (transport, mode), count in sorted(counts.items()):
            connections.add_metric([transport, "pending" if mode == "unknown" else mode], count)
        yield connections
        hub = server.hub
        yield GaugeMetricFamily("chatd_users", "Users joined, attached to a connection "
                                "(in a cluster: on every node)",
                                value=len(hub.sessions) - len(hub.detached))
        yield GaugeMetricFamily("chatd_held_sessions", "Sessions waiting for their client "
                                "to resume", value=len(hub.detached))
        yield GaugeMetricFamily("chatd_rooms", "Rooms", value=len(hub.rooms))
        yield CounterMetricFamily("chatd_lines_received", "Client lines taken by the server "
                                  "(each one protocol line)", value=server.lines_in)
        yield CounterMetricFamily("chatd_lines_delivered", "Lines handed to clients, one for "
                                  "each receiver (a text-mode update of several lines counts "
                                  "once)", value=server.writer.lines_out)
        yield CounterMetricFamily("chatd_received_bytes", "Bytes read from clients",
                                  value=server.bytes_in)
        yield CounterMetricFamily("chatd_sent_bytes", "Bytes handed to client connections",
                                  value=server.writer.written)
        refusals = CounterMetricFamily("chatd_refusals", "Connections refused, by error "
                                       "code", labels=["code"])
        for code, count in sorted(server.refusals.items()):
            refusals.add_metric([code], count)
        yield refusals
        sent = CounterMetricFamily("chatd_errors", "Error lines sent to clients, by code "
                                   "(refusals included)", labels=["code"])
        for code, count in sorted(p.ERRORS_SENT.items()):
            sent.add_metric([code], count)
        yield sent
        yield CounterMetricFamily("chatd_flood_dropped_lines", "Lines dropped by flood "
                                  "control", value=p.ERRORS_SENT[ErrorCode.RATE_LIMITED])
        yield CounterMetricFamily("chatd_flood_disconnects", "Connections closed for "
                                  "flooding", value=p.ERRORS_SENT[ErrorCode.EXCESS_FLOOD])
        yield CounterMetricFamily("chatd_send_queue_cutoffs", "Connections cut off for not "
                                  "reading (send queue over --max-send-queue)",
                                  value=server.writer.cut_off)
        yield CounterMetricFamily("chatd_resumes", "Sessions resumed by their client on this "
                                  "node", value=hub.resumes)
        history = GaugeMetricFamily("chatd_history_memory_bytes", "History kept in memory "
                                    "(part rooms: rooms with people; archive: rooms without)",
                                    labels=["part"])
        history.add_metric(["rooms"], hub.history_bytes)
        history.add_metric(["archive"], hub.archive.bytes)
        yield history
        bound = GaugeMetricFamily("chatd_history_memory_limit_bytes", "The bound of "
                                  "chatd_history_memory_bytes", labels=["part"])
        bound.add_metric(["rooms"], hub.config.history_memory)
        bound.add_metric(["archive"], hub.archive.budget)
        yield bound
        yield from self._store()
        yield from self._cluster()

    def _store(self) -> Iterator[Metric]:
        store = self.server.store
        if store is None:
            return
        yield GaugeMetricFamily("chatd_db_backlog_lines", "Chat lines not yet written to "
                                "the history database", value=store.unwritten)
        yield GaugeMetricFamily("chatd_db_backlog_limit_lines", "The backlog past which chat "
                                "lines are refused (--history-db-backlog)", value=store.backlog)
        yield CounterMetricFamily("chatd_db_write_failures", "Failed writes to the history "
                                  "database (each retried)", value=store.write_failures)
        yield CounterMetricFamily("chatd_db_refused_lines", "Chat lines refused because the "
                                  "backlog was full", value=store.refused)

    def _cluster(self) -> Iterator[Metric]:
        if not self.server.bus.shared:
            return
        bus = cast("RedisBus[Connection]", self.server.bus)
        yield GaugeMetricFamily("chatd_cluster_nodes", "Nodes known alive by their "
                                "heartbeats", value=len(self.server.hub.beats))
        yield GaugeMetricFamily("chatd_cluster_log_lag_seconds", "How old the last log entry "
                                "applied here was when it was applied", value=bus.lag)
        yield GaugeMetricFamily("chatd_cluster_held_commands", "Commands of this node not "
                                "yet in the log (Redis slow or away)", value=bus.held)
        yield GaugeMetricFamily("chatd_cluster_up", "1 while Redis answers, 0 during an "
                                "outage", value=0 if bus.down else 1)


def not_ready(server: Server) -> list[str]:
    """Why the server should not get traffic now; empty when it is ready."""
    reasons = []
    if server.stopping or not server.tcp.listeners or not all(
            listener.is_serving() for listener in server.tcp.listeners):
        reasons.append("not listening")
    if server.store is not None and server.store.failing:
        reasons.append("history database: writes failing")
    if server.bus.shared:  # a cluster node (not importing chatd.cluster: /readyz is quick)
        bus = cast("RedisBus[Connection]", server.bus)
        if bus.down:
            reasons.append("cluster: Redis unavailable")
        elif bus.lag > CAUGHT_UP:
            reasons.append(f"cluster: {bus.lag:.1f}s behind the log")
    return reasons


class MetricsEndpoint:
    """/metrics, /healthz and /readyz over HTTP on the --metrics address."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServerCollector(server))
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes and so on
        self.lag = LoopLag(self.registry)
        self.ws_server: WsServer | None = None
        self.bound = ""

    async def start(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        logger = logging.getLogger("chatd.metrics")
        logger.propagate = False  # a broken scrape is not the chat's business
        logger.addHandler(logging.NullHandler())
        try:
            self.ws_server = await serve(
                self._ws_refused, host=host.strip("[]"), port=int(port),
                process_request=self._http, server_header=None, logger=logger,
                open_timeout=5.0)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"metrics address {address}") from exc
        sock = self.ws_server.sockets[0]
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.bound = f"metrics http://{shown}:{bound_port}/metrics"
        self.lag.start(asyncio.get_running_loop())

    def close(self) -> None:
        self.lag.stop()
        if self.ws_server is not None:
            self.ws_server.close()

    async def _ws_refused(self, connection: ServerConnection) -> None:
        await connection.close()  # never reached: every request is answered over HTTP

    def _http(self, ws: ServerConnection, request: Request) -> Response:
        path = request.path.partition("?")[0]
        if path == "/metrics":
            body = generate_latest(self.registry)
            return _response(200, body, CONTENT_TYPE_LATEST)
        if path == "/healthz":
            return _response(200, b"ok\n")
        if path == "/readyz":
            reasons = not_ready(self.server)
            if reasons:
                return _response(503, ("".join(f"{r}\n" for r in reasons)).encode())
            return _response(200, b"ready\n")
        return _response(404, b"not found: try /metrics, /healthz or /readyz\n")


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
              ) -> Response:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    headers: Any = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("Connection", "close")])
    return Response(status, reason, headers, body)
