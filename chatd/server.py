"""The TCP shell: asyncio streams in, the link and the hub in the middle, the writer out.

`asyncio.start_server` gives each connection a coroutine (`_serve_tcp`) that reads with
`StreamReader.read` and feeds the bytes to the connection's `Link` (chatd.link), the
sans-I/O protocol of one connection; the link's actions are carried out by `perform`,
which hands events to the hub (chatd.hub). The hub's effects (chatd.effects) are
replayed in order by `apply_effects`, and bytes reach the client through the writer
(chatd.outbox), which hands each connection's output to its `StreamWriter` once per loop
turn. Nothing on the broadcast path awaits a client; `drain()` is never awaited: the
send-queue bound is checked on the transport's buffer instead (PROTOCOL.txt 8.2).

A byte's way, in order: `_serve_tcp` (read) -> `Server.received` -> `Link.receive_data`
-> `Server.perform` -> `Hub.handle` -> bus (`LocalBus.publish` or the Redis log) ->
`Hub.apply` -> `Server.apply_effects` -> `Writer` -> `StreamOutlet.write`.

The web gateway (chatd.web) is another shell of the same kind: it feeds WebSocket
messages to the same `Link`s through `received_message`.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import math
import signal
import socket
import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Final, assert_never, cast

from chatd import effects as ef
from chatd import link as ln
from chatd import protocol as p
from chatd.bus import Bus, LocalBus
from chatd.commands import BEAT_EVERY, BeatCmd, DetachCmd, LeaveCmd
from chatd.effects import Effects
from chatd.heap import Collector, trim_heap
from chatd.hub import Config as HubConfig
from chatd.hub import HistorySink, Hub
from chatd.limits import Admission, PasswordThrottle, Refused
from chatd.link import Link, LinkConfig, Mode, refusal
from chatd.moderation import Credentials
from chatd.outbox import Outlet, RoomBuffer, Writer
from chatd.protocol import ErrorCode
from chatd.serverlog import ServerLog
from chatd.store import SqliteHistory

if TYPE_CHECKING:
    from chatd.metrics import MetricsEndpoint
    from chatd.web import WebGateway

TCP_KEEPALIVE = (60, 10, 6)  # idle, interval, probes: a dead peer is found in ~2 minutes
READ_SIZE = 64 * 1024  # bytes asked of the stream per read
READ_LIMIT = 64 * 1024  # the StreamReader pauses the socket past twice this, unread
CLOSE_GRACE = 0.25  # seconds between our FIN and the close (StreamOutlet.close)
CLOSE_LINGER = 10.0  # seconds a closing connection may take to take its last bytes
TRIM_AFTER = 64 * 1024 * 1024  # bytes written between heap trims
# Deadlines are checked a tenth of the connections at a time, ten times a beat, so that
# 10,000 connections never stall the loop for a whole scan (~5 ms); and at most
# TICK_ACTIONS connections act per slice (a ping and its pong cost ~30 us together), so
# a crowd that joined at once is pinged over a few seconds instead of in one turn.
SLICES = 10
TICK_ACTIONS = 64


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hosts: tuple[str, ...] | None = None  # None: every interface, IPv4 and IPv6
    port: int = 5000
    max_line_bytes: int = p.DEFAULT_MAX_LINE_BYTES
    max_send_queue: int = 256 * 1024
    rate: float = 2.0  # lines a second per connection; 0 turns flood control off
    burst: int = 10
    byte_rate: float = 4096.0  # bytes a second per connection (8.3); 0: lines only
    byte_burst: int = 64 * 1024
    max_clients: int = 5000  # 0: no limit
    max_per_ip: int = 10  # 0: no limit; held sessions count too (chatd.limits.Admission)
    ipv6_prefix: int = 64  # IPv6 addresses count per prefix of this length
    connect_throttle: int = 20  # new connections an address may make per window; 0: off
    connect_window: float = 60.0
    registration_timeout: float = 30.0
    greet_after: float = 1.0  # seconds of silence before the text-mode greeting; 0: none
    ping_interval: float = 25.0  # 0: no keepalive pings
    ping_timeout: float = 20.0
    tls_cert: str | None = None
    tls_key: str | None = None
    password: str | None = None
    history_db: str | None = None
    history_db_backlog: int = 10_000  # lines not yet in the database before lines are refused
    history_db_backlog_bytes: int = 16 * 1024 * 1024  # the same in bytes (8.7)
    history_db_max_bytes: int = 48 * 1024 * 1024  # lines kept in the database in all (8.7)
    history_idle: float = 30 * 86400.0  # a room silent this long leaves the store; 0: never
    redis_url: str | None = None  # join a cluster through this Redis (chatd.cluster)
    snapshot_every: float = 5.0
    redis_log_bytes: int = 16 * 1024 * 1024  # the command log's bound (14.6)
    redis_history_bytes: int = 32 * 1024 * 1024  # the room streams' bound in all (14.6)
    web_port: int | None = None  # also serve the web page and its WebSocket here
    web_origins: tuple[str, ...] = ()  # Origins allowed besides the page's own
    web_hosts: tuple[str, ...] = ()  # Host names the web port answers to besides IPs, localhost
    web_request_timeout: float = 5.0  # for the HTTP request (and upgrade) on the web port
    web_reload_grace: float = 15.0  # a page that closed with 4000 (unloaded) is held this long
    shutdown_timeout: float = 3.0
    tls_handshake_timeout: float = 5.0
    metrics: str | None = None  # HOST:PORT of /metrics, /healthz, /readyz (chatd.metrics)
    log_level: str = "info"
    hub: HubConfig = field(default_factory=HubConfig)


class StreamOutlet:
    """The writer's view of a TCP connection (chatd.outbox.Outlet): its StreamWriter."""

    __slots__ = ("transport", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.transport = writer.transport  # again after a TLS upgrade: see `bind`

    def bind(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def send(self, data: bytes) -> int:
        transport = self.transport
        if transport.is_closing():
            return -1
        self.writer.write(data)
        return transport.get_write_buffer_size()

    def close(self) -> None:
        # FIN first, close a moment later: a socket closed while the client is still
        # sending has unread input and is reset, and a reset can make the client's
        # kernel drop the last lines we sent (the shutdown notice) before it reads them.
        # The shell goes on reading (and dropping) until the close.
        writer = self.writer
        if self.transport.is_closing() or not writer.can_write_eof():
            writer.close()
            return
        try:
            writer.write_eof()
        except OSError:
            writer.close()
            return
        asyncio.get_running_loop().call_later(CLOSE_GRACE, writer.close)

    def abort(self) -> None:
        self.transport.abort()


class Connection:
    """One client connection as the shell sees it: its link, its outlet, and the
    writer's bookkeeping (chatd.outbox.Sink). The hub knows it as a peer (cid, text)."""

    __slots__ = (
        "server", "cid", "link", "outlet", "ip", "address", "out", "queued", "closing",
        "gone", "drop_reason", "room", "room_from", "room_own", "held_sid", "linger",
        "counted",
    )

    def __init__(self, server: Server, cid: int, link: Link, outlet: Outlet, *, ip: str,
                 address: str) -> None:
        self.server = server
        self.cid = cid
        self.link = link
        self.outlet = outlet
        self.ip = ip
        self.address = address
        self.out: list[bytes] = []
        self.queued = False  # in the writer's dirty list
        self.closing = False  # close once the outbox is written
        self.gone = False  # the connection has ended
        self.drop_reason: str | None = None
        self.room: RoomBuffer | None = None  # chatd.outbox: its channel's turn buffer
        self.room_from = 0
        self.room_own: list[tuple[int, bytes]] | None = None
        self.held_sid: str | None = None  # its session, when held for resume after it
        self.linger: asyncio.TimerHandle | None = None  # cuts it off if closing takes long
        self.counted = True  # holds a slot against the connection limits

    def __repr__(self) -> str:
        return f"#{self.cid} {self.address}"

    @property
    def text(self) -> bool:
        return self.link.text

    def close(self) -> None:
        """Close once what is queued for the client has been written."""
        if self.gone or self.closing:
            return
        self.closing = True
        # Its session has left (or is held) by now: the slot is free for a reconnect,
        # though the socket takes a moment more to close (8.9).
        self.server.uncount(self)
        # A client that does not take its last lines is cut off after a while (8.9).
        self.linger = self.server.linger(self)
        if not self.server.writer.close_soon(self):
            self.outlet.close()

    def drop(self, reason: str) -> None:
        """Cut the connection at once, discarding what it has not read."""
        if not self.gone:
            self.drop_reason = self.drop_reason or reason
            self.closing = True
            self.outlet.abort()


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, interval, probes = TCP_KEEPALIVE
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


def _shrink_drain_waiters(protocol: asyncio.BaseProtocol) -> None:
    """The stream protocol keeps an empty deque for drain() waiters: about 700 of the
    ~7,000 bytes a connection costs (python -m bench.conn_memory). chatd never awaits
    drain() (the writer checks the buffer instead), so an empty list does the job."""
    if isinstance(getattr(protocol, "_drain_waiters", None), collections.deque):
        protocol._drain_waiters = []  # type: ignore[attr-defined]


def describe(exc: BaseException) -> str:
    """Why a connection ended, in a few words for the log and the leave notice."""
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def address_of(peer: Any) -> tuple[str, str]:
    """(ip, "ip:port") of a peer name; IPv6 addresses in brackets."""
    if isinstance(peer, tuple):
        host = f"[{peer[0]}]" if ":" in peer[0] else peer[0]
        return peer[0], f"{host}:{peer[1]}"
    return "", "?"


class Server:
    def __init__(self, config: ServerConfig, log: ServerLog) -> None:
        self.config = config
        self.log = log
        self.link_config = link_config_of(config)
        p.name_key("\u0430")  # load the look-alike tables now, not on someone's join
        self.store = SqliteHistory(
            config.history_db, config.hub.history_size, backlog=config.history_db_backlog,
            backlog_bytes=config.history_db_backlog_bytes,
            max_bytes=config.history_db_max_bytes, idle=config.history_idle, log=log) \
            if config.history_db else None
        sink: HistorySink | None = self.store
        self.writer = Writer(config.max_send_queue, log)
        self.hub: Hub[Connection] = Hub(config.hub, sink=sink, moderation=self.store)
        self.bus: Bus
        if config.redis_url:
            from chatd.cluster import RedisBus  # only cluster nodes need redis

            self.bus = RedisBus(self.hub, self.apply_effects, config.redis_url, log,
                                snapshot_every=config.snapshot_every,
                                log_bytes=config.redis_log_bytes,
                                history_bytes=config.redis_history_bytes,
                                idle=config.history_idle)
        else:
            # Ids go on increasing across restarts: from the clock in microseconds, or
            # past what the history database handed out, whichever is further.
            first = max(int(time.time() * 1_000_000), self.store.first_id if self.store else 0)
            self.bus = LocalBus(self.hub, self.apply_effects, first_seq=first,
                                reserve=self.store.reserve if self.store else None)
        self.connections: dict[int, Connection] = {}
        self._password = bool(config.password)
        self.passwords = PasswordThrottle()
        self.oper_passwords = PasswordThrottle()  # wrong operator passwords (15.1)
        self.admission = Admission(
            config.max_clients, config.max_per_ip, ipv6_prefix=config.ipv6_prefix,
            throttle=config.connect_throttle, window=config.connect_window)
        self.listeners: list[asyncio.Server] = []
        self._tls: ssl.SSLContext | None = None
        self._cid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_closed: asyncio.Event | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self.collector = Collector(time.monotonic())  # chatd.heap: short GC pauses
        self.web: WebGateway | None = None
        self.metrics: MetricsEndpoint | None = None
        self.stopping = False
        # Counted here in plain ints, read by chatd.metrics when Prometheus scrapes.
        self.lines_in = 0
        self.bytes_in = 0
        self.refusals: collections.Counter[str] = collections.Counter()
        self._trimmed_at = 0  # self.writer.written at the last heap trim

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[str]:
        """Listen; returns the bound addresses ("127.0.0.1:5000")."""
        self._loop = asyncio.get_running_loop()
        self.writer.loop = self._loop
        self._loop.set_exception_handler(self._loop_error)
        self.log.attach(self._loop)
        self._tls = tls_context(self.config)
        await self.bus.start()
        self.bus.publish([BeatCmd(self.hub.node)])  # known alive before any session
        hosts = list(self.config.hosts) if self.config.hosts else [None]
        for host in hosts:
            # No ssl= here: a TLS connection is counted first, then upgraded (_serve_tcp).
            self.listeners.append(await asyncio.start_server(
                self._serve_tcp, host=host, port=self.config.port, backlog=4096,
                limit=READ_LIMIT))
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
        if self.config.metrics is not None:
            from chatd.metrics import MetricsEndpoint  # only with --metrics

            self.metrics = MetricsEndpoint(self)
            await self.metrics.start(self.config.metrics)
            bound.append(self.metrics.bound)
        return bound

    def transport_of(self, conn: Connection) -> str:
        """tcp, tls or web (chatd.metrics labels connections with it)."""
        if not isinstance(conn.outlet, StreamOutlet):
            return "web"
        return "tcp" if conn.outlet.transport.get_extra_info("sslcontext") is None else "tls"

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Failed TLS handshakes and the like: one log line, not a traceback per client.
        exc = context.get("exception")
        what = context.get("message", "error")
        self.log.warning(f"{what}: {exc!r}" if exc else str(what))

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
        for conn in list(self.connections.values()):
            if not conn.closing:
                self.perform(conn, conn.link.shutdown())
        self.writer.flush()
        try:
            await asyncio.wait_for(self.all_closed(), self.config.shutdown_timeout)
        except TimeoutError:
            for conn in list(self.connections.values()):
                conn.drop("server shut down")
        if self.web is not None:
            await self.web.close()
        await self.bus.close()
        if self.store is not None:
            self.store.close()
        if self.metrics is not None:
            self.metrics.close()
        self.log.flush()

    async def all_closed(self) -> None:
        """Until no chat connection is open (it returns at once if none is)."""
        if self.connections:
            if self._all_closed is None or self._all_closed.is_set():
                self._all_closed = asyncio.Event()
            await self._all_closed.wait()

    async def _housekeeping(self) -> None:
        part = 0
        while True:
            await asyncio.sleep(BEAT_EVERY / SLICES)
            part = (part + 1) % SLICES
            if not part:
                self.bus.publish([BeatCmd(self.hub.node)])
                self.collector.tick(time.monotonic())
                if self.writer.written - self._trimmed_at > TRIM_AFTER:
                    self._trimmed_at = self.writer.written
                    trim_heap()
            now = time.monotonic()
            acted = 0
            for conn in list(self.connections.values())[part::SLICES]:
                if not conn.closing:
                    actions = conn.link.tick(now)
                    if actions:
                        self.perform(conn, actions)
                        acted += 1
                        if acted >= TICK_ACTIONS:
                            break  # the rest of this slice waits for its next turn

    def reconfigure(self, new: ServerConfig) -> list[str]:
        """Apply what can change while serving (LIVE) and keep every connection; returns
        the log lines that say what changed and what waits for a restart. Raises (and
        changes nothing) if the new TLS certificate cannot be loaded."""
        changed = _changes(self.config, new)
        if bool(self.config.tls_cert) != bool(new.tls_cert):  # the loop and the scheme
            changed["tls"] = (bool(self.config.tls_cert), bool(new.tls_cert))
        tls = tls_context(new) if self.config.tls_cert and new.tls_cert else self._tls
        live = {name: change for name, change in changed.items() if name in LIVE}
        later = {name: change for name, change in changed.items() if name not in LIVE}
        if "tls" in later:
            live.pop("tls_cert", None)
            live.pop("tls_key", None)
            tls = self._tls
        hub_fields = {f.name for f in fields(HubConfig)}
        self.config = replace(
            self.config, **{k: v[1] for k, v in live.items() if k not in hub_fields},
            hub=replace(self.config.hub,
                        **{k: v[1] for k, v in live.items() if k in hub_fields}))
        config = self.config
        self.link_config = link_config_of(config)  # connections made from now on
        self._password = bool(config.password)
        self.writer.max_send_queue = config.max_send_queue
        admission = self.admission
        admission.max_clients, admission.max_per_ip = config.max_clients, config.max_per_ip
        admission.throttle = config.connect_throttle
        admission.window = max(0.001, config.connect_window)
        self._tls = tls
        if self.web is not None:
            self.web.tls = tls
        self.hub.config = config.hub
        self.hub.archive.budget = config.hub.history_memory // 4  # as Hub.__init__ sets it
        if "opers" in live:
            self.hub.credentials = Credentials(config.hub.opers)
        self.log.set_level(config.log_level)
        lines = [f"reload: {name} {_shown(name, before)} -> {_shown(name, after)}"
                 for name, (before, after) in live.items()]
        if tls is not None:
            lines.append(f"reload: TLS certificate {config.tls_cert} loaded for new "
                         "connections")
        lines += [f"reload: {name} changed ({_shown(name, before)} -> {_shown(name, after)})"
                  " but needs a restart" for name, (before, after) in later.items()]
        return lines or ["reload: nothing changed"]

    # ------------------------------------------------------------------ the TCP shell

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        """One TCP client, from accept to close: read, feed its link, nothing else."""
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _tune(sock)
        _shrink_drain_waiters(writer.transport.get_protocol())
        ip, address = address_of(writer.get_extra_info("peername"))
        plain = self._tls is None
        conn = self.accept(ip, address, StreamOutlet(writer), detect_tls=plain, say_why=plain)
        if conn is None:
            return
        reason: str | None = None
        try:
            if self._tls is not None and not await self._upgrade(conn, writer):
                return
            while data := await reader.read(READ_SIZE):
                # Once closing, input is read and dropped: a socket closed with unread
                # input is reset, and the client could lose the last lines sent to it.
                if not conn.closing:
                    self.received(conn, data)
            if not conn.closing:
                self.eof(conn)
            await writer.wait_closed()  # bounded: a closing connection lingers at most
        except OSError as exc:  # reset, broken pipe...: the client is gone
            reason = describe(exc)
            # The stream keeps the error that ended it, and a traceback holds frames that
            # hold the stream: a cycle only a full collection would find (chatd.heap).
            exc.__traceback__ = None
        finally:
            if (error := reader.exception()) is not None:  # the same, raised elsewhere
                error.__traceback__ = None
            self.lost(conn, reason)

    async def _upgrade(self, conn: Connection, writer: asyncio.StreamWriter) -> bool:
        """TLS after the connection was counted, under a deadline (PROTOCOL.txt 11.1)."""
        timeout = self.config.tls_handshake_timeout
        assert self._tls is not None
        try:
            async with asyncio.timeout(timeout):
                await writer.start_tls(self._tls, ssl_handshake_timeout=timeout)
            cast(StreamOutlet, conn.outlet).bind(writer.transport)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else describe(exc)
            self.log.warning(f"TLS handshake failed: {what}", event="tls_failed", cid=conn.cid,
                             address=conn.address)
            conn.drop(f"TLS handshake failed: {what}")
            return False
        return True

    # ------------------------------------------------------------------ any shell

    def admit(self, ip: str, address: str, outlet: Outlet, *, say_why: bool = True,
              throttle: bool = True) -> bool:
        """Count a new connection against the limits (PROTOCOL.txt 8.4); False if refused.

        A refused connection gets one error line (`say_why`), except on a TLS port, where
        it is refused before any handshake work: closed at once. A held session may give
        its slot to the newcomer: it ends now, with a notice.
        """
        self._cid += 1
        now = time.monotonic()
        verdict: Refused | str | None
        group = self.admission.group(ip)
        wait = self.passwords.wait(group, now) if self._password else 0.0
        if wait > 0:  # guessing passwords: PROTOCOL.txt 11.2
            verdict = Refused(ErrorCode.AUTH_THROTTLED, "too many wrong passwords from this "
                              f"address; try again in {math.ceil(wait)}s", math.ceil(wait))
            log = self.log.warning if self.passwords.first_refusal(group) else self.log.debug
        elif (ban := self.hub.mod.address_ban(ip, time.time())) is not None:  # 15.3
            verdict = Refused(ErrorCode.BANNED, f"your address ({ban.label}) is banned from "
                              f"this server {ban.describe()}", until=ban.until_stamp())
            log = self.log.info
        else:
            verdict = self.admission.admit(ip, now, throttle=throttle)
            log = self.log.warning
        if isinstance(verdict, Refused):
            self.refusals[verdict.code] += 1
            log(f"refused: {verdict.message}", event="refuse", cid=self._cid, address=address)
            if say_why:
                outlet.send(refusal(verdict))
            outlet.close()
            return False
        if verdict is not None:
            self.log.info(f"#{self._cid} {address} takes the slot of held session {verdict}")
            self.bus.publish([LeaveCmd(verdict, "replaced by a newer connection from the "
                                                "same address")])
        return True

    def _wrong_password(self, conn: Connection) -> None:
        group = self.admission.group(conn.ip)
        now = time.monotonic()
        count = self.passwords.failed(group, now)
        wait = self.passwords.wait(group, now)
        if wait:
            self.log.warning(f"{count} wrong passwords in a row from {group}: its connections "
                             f"are refused for {wait:g}s")

    def _wrong_oper(self, conn: Connection) -> None:
        """A wrong operator password: logged without it; the address waits (15.1)."""
        group = self.admission.group(conn.ip)
        count = self.oper_passwords.failed(group, time.monotonic())
        self.log.warning(f"{conn} audit: wrong operator name or password "
                         f"({count} in a row from {group})")

    def linger(self, conn: Connection) -> asyncio.TimerHandle | None:
        if self._loop is None:
            return None
        return self._loop.call_later(CLOSE_LINGER, conn.drop, "not reading before close")

    def release(self, ip: str) -> None:
        """A counted connection (`admit`) ended before it became a chat connection."""
        self.admission.release(ip)

    def accept(self, ip: str, address: str, outlet: Outlet, *, json_only: bool = False,
               detect_tls: bool = False, say_why: bool = True,
               counted: bool = False) -> Connection | None:
        """A new chat connection on `outlet`, counted (unless `counted` already, by
        `admit`) against the limits; None if it was refused."""
        if counted:  # counted a while ago (a WebSocket, after its handshake): a new id
            self._cid += 1
        elif not self.admit(ip, address, outlet, say_why=say_why):
            return None
        link = Link(self.link_config, time.monotonic(),
                    mode=Mode.JSON if json_only else Mode.UNKNOWN, detect_tls=detect_tls)
        conn = Connection(self, self._cid, link, outlet, ip=ip, address=address)
        self.connections[conn.cid] = conn
        self.log.info("connected", event="connect", cid=conn.cid, address=conn.address)
        return conn

    def received(self, conn: Connection, data: bytes) -> None:
        """Bytes from a stream (TCP)."""
        self.bytes_in += len(data)
        self.perform(conn, conn.link.receive_data(data, time.monotonic()))

    def received_message(self, conn: Connection, data: bytes) -> None:
        """One whole message (WebSocket)."""
        self.bytes_in += len(data)
        self.perform(conn, conn.link.receive_message(data, time.monotonic()))

    def eof(self, conn: Connection) -> None:
        self.perform(conn, conn.link.receive_eof(time.monotonic()))

    def lost(self, conn: Connection, reason: str | None, grace: float | None = None) -> None:
        """The connection has ended, for whatever cause; `reason` None: cleanly. A session
        it leaves held for resume is held `grace` seconds at most, if given."""
        if conn.gone:
            return
        if conn.linger is not None:
            conn.linger.cancel()
        conn.gone = conn.closing = True
        self.left(conn, conn.drop_reason or reason, grace=grace)
        conn.out.clear()
        if self.connections.pop(conn.cid, None) is None:
            return
        self.uncount(conn)
        self.perform(conn, conn.link.suppressed_errors())
        self.log.debug("closed" + (f" ({conn.drop_reason})" if conn.drop_reason else ""),
                       event="close", cid=conn.cid, address=conn.address)
        if self._all_closed is not None and not self.connections:
            self._all_closed.set()

    def uncount(self, conn: Connection) -> None:
        """Give the connection's slot back (once): to a held session, or free."""
        if not conn.counted:
            return
        conn.counted = False
        if conn.held_sid is not None:  # its session waits for a resume, in its slot
            self.admission.hold(conn.held_sid, conn.ip)
        else:
            self.admission.release(conn.ip)

    def left(self, conn: Connection, reason: str | None, resumable: bool = True,
             grace: float | None = None) -> None:
        if self.stopping:  # everyone is leaving; announcing each leave to all costs N^2
            return
        fx = self.hub.disconnected(conn, reason, resumable, grace)
        for cmd in fx.commands:
            if isinstance(cmd, DetachCmd):
                conn.held_sid = cmd.sid
        self.apply_effects(fx)

    def perform(self, conn: Connection, actions: list[ln.Action]) -> None:
        """Carry out a link's actions, in order."""
        for action in actions:
            if isinstance(action, ln.Deliver):  # nearly every action: before the match
                self.lines_in += 1
                self._handle(conn, action.event)
                continue
            match action:
                case ln.Send(data):
                    self.writer.send(conn, data)
                case ln.Leave(reason, resumable):
                    self.left(conn, reason, resumable)
                case ln.Close():
                    conn.close()
                case ln.Abort(reason):
                    conn.drop(reason)
                case ln.Log(level, text):
                    if level == "info":
                        self.log.info(text, event="connection", cid=conn.cid, address=conn.address)
                    else:
                        self.log.warning(text, event="connection", cid=conn.cid,
                                         address=conn.address)
                case ln.AuthFailed():
                    self._wrong_password(conn)
                case _:
                    assert_never(action)

    def _handle(self, conn: Connection, event: p.Event) -> None:
        if type(event) is p.Oper and (wait := self.oper_passwords.wait(
                self.admission.group(conn.ip), time.monotonic())) > 0:  # PROTOCOL.txt 15.1
            self.perform(conn, conn.link.error(
                ErrorCode.OPER_THROTTLED, "too many wrong operator passwords from this address; "
                f"try again in {math.ceil(wait)}s", time.monotonic(), retry_after=math.ceil(wait)))
            return
        try:
            self.apply_effects(self.hub.handle(
                conn, event, conn.ip if type(event) is p.Connect else ""))
        except Exception as exc:  # a bug must cost one line, never the server
            self.log.error(f"internal error on {type(event).__name__}: {exc!r}", "bug",
                           cid=conn.cid, address=conn.address)
            self.perform(conn, conn.link.error(
                ErrorCode.INTERNAL, "the server failed on this line; it was dropped",
                time.monotonic()))

    def apply_effects(self, fx: Effects[Connection]) -> None:
        """Replay the hub's operations in order (chatd.effects)."""
        writer = self.writer
        for op in fx.ops:
            # isinstance in order of frequency: as exhaustive for mypy as a match, and
            # cheaper on the broadcast path (a chat line makes three operations).
            if isinstance(op, ef.Broadcast):
                writer.broadcast(op.channel, op.data, op.skip)
            elif isinstance(op, ef.SendTo):
                writer.send(op.peer, op.data)
            elif isinstance(op, ef.Publish):
                self.bus.publish(op.commands)
            elif isinstance(op, ef.Enter):
                writer.enter(op.channel, op.peer)
            elif isinstance(op, ef.Exit):
                writer.exit(op.channel, op.peer)
            elif isinstance(op, ef.Close):
                op.peer.close()
            elif isinstance(op, ef.Settled):
                self.perform(op.peer, op.peer.link.settle(op.joined, time.monotonic()))
            elif isinstance(op, ef.Released):
                self.admission.unhold(op.sid)
            elif isinstance(op, ef.Charge):
                op.peer.link.charge(op.reply_bytes, time.monotonic())
            elif isinstance(op, ef.SendPaced):
                writer.send_paced(op.peer, op.lines)
            elif isinstance(op, ef.Denied):
                self._wrong_oper(op.peer)
            else:
                assert_never(op)
        if fx.note:
            about = fx.about
            if about is None or not self.log.json:
                self.log.info(fx.note)
            else:  # JSON lines get the note's fields too
                origin = about[1]
                conn = self.connections.get(origin.cid) \
                    if origin is not None and origin.node == self.hub.node else None
                self.log.info(fx.note, event=about[0], user=about[2], room=about[3],
                              cid=conn.cid if conn else None,
                              address=conn.address if conn else None)
        if fx.audit:  # kept even with --quiet: who did what to whom, and why
            self.log.warning("audit: " + fx.audit)


# What SIGHUP can change while serving (chatd.server.Server.reconfigure); the rest of
# ServerConfig needs a restart. Limits of a connection apply to connections made after.
LIVE: Final = frozenset({
    "max_send_queue", "rate", "burst", "password", "registration_timeout", "greet_after",
    "ping_interval", "ping_timeout", "max_clients", "max_per_ip", "connect_throttle",
    "connect_window", "tls_cert", "tls_key", "tls_handshake_timeout", "log_level",
    "history_on_join", "history_memory", "resume_grace", "opers", "web_reload_grace"})
SECRETS: Final = frozenset({"password", "opers"})


def _changes(old: object, new: object) -> dict[str, tuple[Any, Any]]:
    """The fields of two configs (nested ones flattened) that differ."""
    changed: dict[str, tuple[Any, Any]] = {}
    for f in fields(cast(Any, old)):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if f.name == "hub":
            changed.update(_changes(before, after))
        elif before != after:
            changed[f.name] = (before, after)
    return changed


def link_config_of(config: ServerConfig) -> LinkConfig:
    return LinkConfig(
        max_line_bytes=config.max_line_bytes, rate=config.rate, burst=config.burst,
        byte_rate=config.byte_rate, byte_burst=config.byte_burst,
        backlog_bytes=2 * config.max_line_bytes,
        password=config.password, registration_timeout=config.registration_timeout,
        greet_after=config.greet_after, ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout)


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context

def _shown(name: str, value: Any) -> str:
    if name in SECRETS:
        return "(set)" if value else "(none)"
    return repr(value)


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
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, server, log, reload)
    await stop.wait()
    log.always(f"shutting down: telling {len(server.connections)} connection(s)")
    await server.shutdown()
    log.always("bye")
    log.flush()
    return 0
