"""The asyncio shell: accept connections, read lines, feed the hub, write deliveries.

Built on asyncio transports and protocols (the layer asyncio streams are built on):
a connection is one small object with no task of its own, about 1.3 KiB where a
stream reader, writer and task cost about 5 KiB (see the benchmark issue's note).

Writes are coalesced: a delivery only appends bytes to the recipient's outbox, and
once per event-loop turn the writer (chatd.outbox) hands each connection's bytes to
its transport in one `write`; a room's broadcast is stored once per turn, not once per
member. Nothing on the broadcast path awaits a client; a client whose unsent output
passes `max_send_queue` is disconnected (PROTOCOL.txt 8.2).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import hmac
import signal
import socket
import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatd import protocol as p
from chatd.bus import Bus, LocalBus
from chatd.commands import BEAT_EVERY, BeatCmd
from chatd.hub import Config as HubConfig
from chatd.hub import Delivery, Effects, HistorySink, Hub
from chatd.limits import ErrorLogThrottle, FloodGuard, Verdict
from chatd.outbox import RoomBuffer, Writer
from chatd.protocol import LINE_TOO_LONG, ErrorCode, ProtocolError
from chatd.serverlog import ServerLog
from chatd.store import SqliteHistory

if TYPE_CHECKING:
    from chatd.web import WebGateway

TCP_KEEPALIVE = (60, 10, 6)  # idle, interval, probes: a dead peer is found in ~2 minutes
BACKLOG_LIMIT = 100  # lines a client may send before its connect has been applied
TRIM_AFTER = 64 * 1024 * 1024  # bytes written between heap trims


def _malloc_trim() -> Callable[[], object]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return lambda: None
    return lambda: trim(0)


# A burst (10,000 joins announced to everyone) frees hundreds of MB the C allocator
# keeps; giving it back keeps the resident size of an idle server near its live data.
trim_heap = _malloc_trim()


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hosts: tuple[str, ...] | None = None  # None: every interface, IPv4 and IPv6
    port: int = 5000
    max_line_bytes: int = p.DEFAULT_MAX_LINE_BYTES
    max_send_queue: int = 256 * 1024
    rate: float = 2.0  # lines a second per connection; 0 turns flood control off
    burst: int = 10
    max_clients: int = 5000  # 0: no limit
    max_per_ip: int = 10  # 0: no limit
    registration_timeout: float = 30.0
    ping_interval: float = 25.0  # 0: no keepalive pings
    ping_timeout: float = 20.0
    tls_cert: str | None = None
    tls_key: str | None = None
    password: str | None = None
    history_db: str | None = None
    history_db_backlog: int = 10_000  # lines not yet in the database before lines are refused
    redis_url: str | None = None  # join a cluster through this Redis (chatd.cluster)
    snapshot_every: float = 5.0
    web_port: int | None = None  # also serve the web page and its WebSocket here
    web_origins: tuple[str, ...] = ()  # Origins allowed besides the page's own
    shutdown_timeout: float = 3.0
    hub: HubConfig = field(default_factory=HubConfig)


class Connection(asyncio.Protocol):
    """One client connection: its line splitter, its outbox, its mode and its limits."""

    __slots__ = (
        "server", "cid", "text", "mode_known", "transport", "splitter", "out", "queued",
        "closing", "gone", "drop_reason", "ip", "address", "opened_at", "last_seen",
        "pinged", "guard", "errors", "pending_name", "backlog", "room", "room_from",
        "room_own",
    )

    def __init__(self, server: Server, cid: int) -> None:
        self.server = server
        self.cid = cid
        self.text = False
        self.mode_known = False
        self.transport: asyncio.Transport | None = None
        self.splitter = p.LineSplitter(server.config.max_line_bytes)
        self.out: list[bytes] = []
        self.queued = False  # in the writer's dirty list
        self.closing = False  # close once the outbox is written
        self.gone = False  # connection_lost has run
        self.drop_reason: str | None = None
        self.ip = ""
        self.address = "?"
        self.opened_at = self.last_seen = time.monotonic()
        self.pinged = False
        self.guard: FloodGuard | None = None
        self.errors: ErrorLogThrottle | None = None
        self.pending_name: str | None = None  # text mode, waiting for the password line
        self.backlog: list[bytes] | None = None  # lines that came while joining
        self.room: RoomBuffer | None = None  # chatd.outbox: its room's turn buffer
        self.room_from = 0
        self.room_own: list[tuple[int, bytes]] | None = None

    def __repr__(self) -> str:
        return f"#{self.cid} {self.address}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _tune(sock)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.ip = peer[0]
            host = f"[{peer[0]}]" if ":" in peer[0] else peer[0]
            self.address = f"{host}:{peer[1]}"
        self.server.opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        self.pinged = False
        server = self.server
        if not self.mode_known and data[:1] == b"\x16" and not self.splitter.pending:
            server.log.warning(f"{self} sent a TLS handshake to a plaintext port; closing")
            self.drop("TLS handshake on a plaintext port")
            return
        for line in self.splitter.feed(data):
            if self.closing:
                return
            if line is LINE_TOO_LONG:
                server.fault(self, ProtocolError(
                    ErrorCode.LINE_TOO_LONG,
                    f"line longer than {self.splitter.max_bytes} bytes; skipped to its end"))
            else:
                server.line(self, line)  # type: ignore[arg-type]

    def eof_received(self) -> bool:
        # A last line without its newline still counts; then the client has left.
        rest = self.splitter.feed(b"\n") if self.splitter.pending else []
        for line in rest:
            if isinstance(line, bytes) and not self.closing:
                self.server.line(self, line)
        self.server.left(self, None)
        self.close()
        return True  # keep the transport until the outbox is written

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        reason = self.drop_reason or (_describe(exc) if exc is not None else None)
        self.server.left(self, reason)
        self.server.closed(self)
        self.out.clear()

    def close(self) -> None:
        """Close once what is queued for the client has been written."""
        self.closing = True
        if self.transport is not None and not self.server.writer.close_soon(self):
            self.transport.close()

    def drop(self, reason: str) -> None:
        """Cut the connection at once, discarding what it has not read."""
        if self.transport is not None and not self.gone:
            self.drop_reason = reason
            self.closing = True
            self.transport.abort()


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, interval, probes = TCP_KEEPALIVE
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


def _ref_of(conn: Connection, line: bytes) -> str | None:
    """The ref of a dropped chat line, so the client knows which line it lost (4.10)."""
    if conn.text or b'"ref"' not in line:
        return None
    try:
        event = p.parse_json_line(line)
    except ProtocolError as exc:
        return exc.ref
    return event.ref if isinstance(event, p.Message) else None


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


class Server:
    def __init__(self, config: ServerConfig, log: ServerLog) -> None:
        self.config = config
        self.log = log
        self.store = SqliteHistory(config.history_db, config.hub.history_size,
                                   backlog=config.history_db_backlog, log=log) \
            if config.history_db else None
        sink: HistorySink | None = self.store
        self.writer = Writer(config.max_send_queue, log)
        self.hub: Hub[Connection] = Hub(
            config.hub, sink=sink,
            audience_changing=self.writer.audience_changing)
        self.bus: Bus
        if config.redis_url:
            from chatd.cluster import RedisBus  # only cluster nodes need redis

            self.bus = RedisBus(self.hub, self.apply_effects, config.redis_url, log,
                                snapshot_every=config.snapshot_every)
        else:
            # Ids go on increasing across restarts: from the clock in microseconds, or
            # past what the history database handed out, whichever is further.
            first = max(int(time.time() * 1_000_000), self.store.first_id if self.store else 0)
            self.bus = LocalBus(self.hub, self.apply_effects, first_seq=first,
                                reserve=self.store.reserve if self.store else None)
        self.connections: dict[int, Connection] = {}
        self.per_ip: dict[str, int] = {}
        self.listeners: list[asyncio.Server] = []
        self._password = config.password.encode() if config.password else None
        self._cid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_closed: asyncio.Event | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self.web: WebGateway | None = None
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[str]:
        """Listen; returns the bound addresses ("127.0.0.1:5000")."""
        self._loop = asyncio.get_running_loop()
        self.writer.loop = self._loop
        self._loop.set_exception_handler(self._loop_error)
        self.log.attach(self._loop)
        tls = self._tls_context()
        await self.bus.start()
        self.bus.publish([BeatCmd(self.hub.node)])  # known alive before any session
        hosts = list(self.config.hosts) if self.config.hosts else [None]
        for host in hosts:
            self.listeners.append(await self._loop.create_server(
                self._new_connection, host=host, port=self.config.port, backlog=4096,
                ssl=tls, ssl_handshake_timeout=10.0 if tls else None))
        self._housekeeper = asyncio.create_task(self._housekeeping())
        bound = []
        for listener in self.listeners:
            for sock in listener.sockets:
                addr = sock.getsockname()
                bound.append(f"[{addr[0]}]:{addr[1]}" if sock.family == socket.AF_INET6
                             else f"{addr[0]}:{addr[1]}")
        if self.config.web_port is not None:
            from chatd.web import WebGateway  # only servers with --web need websockets

            self.web = await WebGateway.start(self)
            bound.extend(self.web.bound)
        return bound

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Failed TLS handshakes and the like: one log line, not a traceback per client.
        exc = context.get("exception")
        what = context.get("message", "error")
        self.log.warning(f"{what}: {exc!r}" if exc else str(what))

    def _new_connection(self) -> Connection:
        self._cid += 1
        return Connection(self, self._cid)

    def new_connection(self) -> Connection:
        """A connection for another transport (the web gateway) to drive."""
        return self._new_connection()

    async def shutdown(self) -> None:
        """Tell every client, flush what is queued, close; give up on laggards after a while."""
        for listener in self.listeners:
            listener.close()
        if self.web is not None:
            self.web.stop_accepting()
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        if self.bus.shared:  # the users may resume on another node: hold, don't end
            for conn in list(self.connections.values()):
                self.left(conn, "server shut down")
        self.stopping = True
        notice = p.Shutdown()
        by_mode = {False: p.encode_json(notice), True: p.encode_text(notice)}
        for conn in list(self.connections.values()):
            if not conn.closing:
                self.deliver([((conn,), by_mode[conn.text], None)])
                conn.close()
        self.writer.flush()
        if self.connections:
            self._all_closed = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_closed.wait(), self.config.shutdown_timeout)
            except TimeoutError:
                for conn in list(self.connections.values()):
                    conn.drop("server shut down")
        if self.web is not None:
            await self.web.close()
        await self.bus.close()
        if self.store is not None:
            self.store.close()
        self.log.flush()

    async def _housekeeping(self) -> None:
        config = self.config
        while True:
            await asyncio.sleep(BEAT_EVERY)
            self.bus.publish([BeatCmd(self.hub.node)])
            if self.writer.written > TRIM_AFTER:
                self.writer.written = 0
                trim_heap()
            now = time.monotonic()
            for conn in list(self.connections.values()):
                if conn.closing:
                    continue
                idle = now - conn.last_seen
                if not self.hub.is_joined(conn):
                    if now - conn.opened_at >= config.registration_timeout:
                        self.fail(conn, ErrorCode.REGISTRATION_TIMEOUT,
                                  f"no connect within {config.registration_timeout:g}s",
                                  "registration timeout")
                elif config.ping_interval and not conn.text:
                    if conn.pinged and idle >= config.ping_interval + config.ping_timeout:
                        self.fail(conn, ErrorCode.PING_TIMEOUT,
                                  f"no answer to ping within {config.ping_timeout:g}s",
                                  "ping timeout")
                    elif not conn.pinged and idle >= config.ping_interval:
                        conn.pinged = True
                        self.deliver([((conn,), p.encode_json(p.ServerPing()), None)])

    # ------------------------------------------------------------------ connection events

    def opened(self, conn: Connection) -> None:
        config = self.config
        if config.max_clients and len(self.connections) >= config.max_clients:
            self.refuse(conn, ErrorCode.SERVER_FULL,
                        f"the server has its maximum of {config.max_clients} connections")
            return
        if config.max_per_ip and self.per_ip.get(conn.ip, 0) >= config.max_per_ip:
            self.refuse(conn, ErrorCode.TOO_MANY_CONNECTIONS,
                        f"{conn.ip} has its maximum of {config.max_per_ip} connections")
            return
        self.connections[conn.cid] = conn
        self.per_ip[conn.ip] = self.per_ip.get(conn.ip, 0) + 1
        if config.rate > 0:
            conn.guard = FloodGuard(config.rate, config.burst, time.monotonic())
        self.log.info(f"{conn} connected")

    def refuse(self, conn: Connection, code: str, message: str) -> None:
        """Over a connection limit: one error line (JSON: the mode is not known yet), close."""
        self.log.warning(f"{conn} refused: {message}")
        conn.gone = conn.closing = True  # never counted, never flushed, nothing read
        if conn.transport is not None:
            conn.transport.write(p.encode_json(p.Error(code, message)))
            conn.transport.close()

    def closed(self, conn: Connection) -> None:
        if self.connections.pop(conn.cid, None) is None:
            return
        count = self.per_ip.get(conn.ip, 1) - 1
        if count:
            self.per_ip[conn.ip] = count
        else:
            self.per_ip.pop(conn.ip, None)
        if conn.errors is not None and (suppressed := conn.errors.pending()):
            self.log.warning(f"{conn}: {suppressed} more errors not logged")
        self.log.debug(f"{conn} closed" + (f" ({conn.drop_reason})" if conn.drop_reason else ""))
        if self._all_closed is not None and not self.connections:
            self._all_closed.set()

    def left(self, conn: Connection, reason: str | None, resumable: bool = True) -> None:
        if self.stopping:  # everyone is leaving; announcing each leave to all costs N^2
            return
        self.apply_effects(self.hub.disconnected(conn, reason, resumable))

    def line(self, conn: Connection, line: bytes) -> None:
        guard = conn.guard
        if guard is not None:
            verdict = guard.take(time.monotonic())
            if verdict is not Verdict.OK:
                self._flooding(conn, verdict, line)
                return
        if not line or line.isspace():
            return  # blank lines are ignored (PROTOCOL.txt 1.2)
        if conn.backlog is not None or self.hub.joining(conn):
            self._hold(conn, line)
            return
        if not conn.mode_known:
            conn.mode_known = True
            conn.text = not p.looks_like_json(line)
        try:
            event: p.Event | None
            if not conn.text:
                event = p.parse_json_line(line)
            elif self.hub.is_joined(conn):
                event = p.parse_text_line(line)
            else:
                event = self._text_login(conn, line)
        except ProtocolError as exc:
            self.fault(conn, exc)
            return
        if isinstance(event, p.Connect) and not self._password_ok(conn, event.password):
            return
        if event is not None:
            try:
                self.apply_effects(self.hub.handle(conn, event))
            except Exception as exc:  # a bug must cost one line, never the server
                self.log.error(f"{conn} internal error on {type(event).__name__}: {exc!r}")
                self.fault(conn, ProtocolError(ErrorCode.INTERNAL, "the server failed on "
                                               "this line; it was dropped"))

    def _hold(self, conn: Connection, line: bytes) -> None:
        """A line sent before the connect came back from the cluster log waits for it."""
        if conn.backlog is None:
            conn.backlog = []
        if len(conn.backlog) < BACKLOG_LIMIT:
            conn.backlog.append(line)
        else:
            self.fault(conn, ProtocolError(ErrorCode.RATE_LIMITED,
                                           "too many lines before the welcome; line dropped"))

    def _release(self, conn: Connection) -> None:
        """The join has applied: handle what the connection sent meanwhile, in order."""
        backlog, conn.backlog = conn.backlog, None
        for line in backlog or ():
            if conn.closing:
                return
            self.line(conn, line)

    def _text_login(self, conn: Connection, line: bytes) -> p.Connect | None:
        """Text mode: the first line is the name; with a password, the next line is it."""
        text = p.decode_utf8(line)
        if self._password is None:
            return p.Connect(name=text, text=True)
        if conn.pending_name is None:
            p.normalize_name(text)  # a bad name is reported before the password is asked
            conn.pending_name = text
            self.deliver([((conn,), b"* password:\n", None)])
            return None
        return p.Connect(name=conn.pending_name, password=text, text=True)

    def _password_ok(self, conn: Connection, given: str | None) -> bool:
        """Checks a connect's password (PROTOCOL.txt 11.2); a wrong one closes."""
        if self._password is None or self.hub.is_joined(conn):
            return True  # a connect after joining is the hub's already_joined error
        if given is not None and hmac.compare_digest(given.encode(), self._password):
            return True
        self.fail(conn, ErrorCode.AUTH_FAILED, "wrong or missing password",
                  f"auth failed: {'wrong' if given else 'no'} password")
        return False

    def _flooding(self, conn: Connection, verdict: Verdict, line: bytes) -> None:
        if verdict is Verdict.FLOOD:
            self.fail(conn, ErrorCode.EXCESS_FLOOD, "too many lines; disconnected",
                      "excess flood", resumable=False)
        else:
            self.fault(conn, ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.config.rate:g} lines a second; line dropped",
                _ref_of(conn, line)))

    def fault(self, conn: Connection, exc: ProtocolError) -> None:
        """A recoverable error: tell the client, log it (in summary when they pile up)."""
        now = time.monotonic()
        if conn.errors is None:
            conn.errors = ErrorLogThrottle()
        admit, suppressed = conn.errors.admit(now)
        if suppressed:
            self.log.warning(f"{conn}: {suppressed} more errors not logged")
        if admit:
            self.log.warning(f"{conn} error {exc.code}: {exc.message}")
        self.deliver([((conn,), self.hub.error(conn, exc), None)])

    def fail(self, conn: Connection, code: str, message: str, reason: str,
             resumable: bool = True) -> None:
        """An error that ends the connection: error line, leave (or hold), close."""
        self.log.warning(f"{conn} closing: {reason} ({code})")
        self.deliver([((conn,), self.hub.error(conn, ProtocolError(code, message)), None)])
        self.left(conn, reason, resumable)
        conn.close()

    def apply_effects(self, fx: Effects[Connection]) -> None:
        if fx.deliveries:
            self.deliver(fx.deliveries)
        if fx.note:
            self.log.info(fx.note)
        for conn in fx.close:
            conn.close()
        if fx.commands:
            self.bus.publish(fx.commands)
        for conn in fx.joined:
            if conn.backlog is not None:
                self._release(conn)

    def deliver(self, deliveries: list[Delivery[Connection]]) -> None:
        self.writer.deliver(deliveries)


async def serve(config: ServerConfig, log: ServerLog,
                ready: Callable[[list[str]], None] | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    try:
        server = Server(config, log)
        bound = await server.start()
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
    await stop.wait()
    log.always(f"shutting down: telling {len(server.connections)} connection(s)")
    await server.shutdown()
    log.always("bye")
    log.flush()
    return 0
