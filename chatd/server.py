"""The TCP shell: asyncio streams in, the link and the hub in the middle, the writer out.

`loop.create_server` with asyncio's stream protocol (as `asyncio.start_server`, but see
`StreamProtocol`) gives each connection a coroutine (`_serve_tcp`) that reads with
`StreamReader.read` and feeds the bytes to the connection's `Link` (chatd.link), the
sans-I/O protocol of one connection. The link's effects and the hub's (chatd.hub) are
in one vocabulary (chatd.effects) and carried out, in order, by one dispatcher,
`perform`: a `Deliver` goes to the hub, whose effects come back through `perform`.
Bytes reach the client through the writer (chatd.outbox), which hands each
connection's output to its `StreamWriter` once per loop turn. Nothing on the broadcast
path awaits a client; `drain()` is never awaited: the send-queue bound is checked on
the transport's buffer instead (PROTOCOL.txt 8.2). Who may connect, and the words of a
refusal, are chatd.limits.AdmissionPolicy's; this module only carries them out.

A byte's way, in order: `_serve_tcp` (read) -> `Server.received` -> `Link.receive_data`
-> `Server.perform` (Deliver) -> `Hub.handle` -> bus (`LocalBus.publish` or the Redis
log) -> `Hub.apply` -> `Server.apply_effects` -> `Server.perform` -> `Writer` (updates
encoded in the reader's mode, once per mode for a room) ->
`StreamOutlet.send`.

The web gateway (chatd.web) is another shell of the same kind: it feeds WebSocket
messages to the same `Link`s through `received_message`. What both shells share is in
chatd.net; neither shell imports the other: chatd.service starts them (and
chatd.metrics) and hands this one the gateway as a chatd.net.Gateway.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Final, assert_never, cast

from chatd import effects as ef
from chatd import protocol as p
from chatd.admission import REPLACED, Admission, AdmissionPolicy, Refusal
from chatd.bus import Bus, LocalBus
from chatd.commands import BEAT_EVERY, BeatCmd, DetachCmd, LeaveCmd
from chatd.effects import Effects
from chatd.heap import Collector, trim_heap
from chatd.hub import HistorySink, Hub, HubConfig
from chatd.link import Link, LinkConfig, Mode
from chatd.moderation import Credentials
from chatd.net import (
    Endpoint,
    Gateway,
    end_reason,
    forget_tracebacks,
    peer_address,
    release_transport,
    tls_context,
)
from chatd.outbox import ChannelBuffer, Outlet, Writer
from chatd.passwords import Hasher, HasherBusy
from chatd.protocol import ErrorCode
from chatd.serverlog import ServerLog

if TYPE_CHECKING:
    from chatd.store import SqliteHistory

TCP_KEEPALIVE = (60, 10, 6)  # idle, interval, probes: a dead peer is found in ~2 minutes
READ_SIZE = 64 * 1024  # bytes asked of the stream per read
READ_LIMIT = 64 * 1024  # the StreamReader pauses the socket past twice this, unread
CLOSE_GRACE = 0.25  # seconds between our FIN and the close (StreamOutlet.close)
CLOSE_LINGER = 10.0  # seconds a closing connection may take to take its last bytes
TRIM_AFTER = 64 * 1024 * 1024  # bytes written between heap trims
# Deadlines are checked a fiftieth of the connections at a time, fifty times a beat, so
# that 10,000 connections never stall the loop for a whole scan (~5 ms); and at most
# TICK_ACTIONS connections act per slice (a ping and its pong cost ~30 us together), so
# a crowd that joined at once is pinged over several seconds instead of in one turn.
# Small slices often, not big ones seldom: 64 pings a slice held the loop ~2 ms every
# 100 ms, which every delivery of that moment waited for (issue 29, the city's worst
# seconds were its keepalive wave); 13 a slice every 20 ms keep the same rate.
SLICES = 50
TICK_ACTIONS = 13


_LINK: Final = LinkConfig()  # a connection's limits have their defaults there


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hosts: tuple[str, ...] | None = None  # None: every interface, IPv4 and IPv6
    port: int = 5000
    max_line_bytes: int = _LINK.max_line_bytes
    max_send_queue: int = 256 * 1024
    rate: float = _LINK.rate
    burst: int = _LINK.burst
    byte_rate: float = _LINK.byte_rate
    byte_burst: int = _LINK.byte_burst
    max_clients: int = 5000  # 0: no limit
    max_per_ip: int = 10  # 0: no limit; held sessions count too (chatd.limits.Admission)
    ipv6_prefix: int = 64  # IPv6 addresses count per prefix of this length
    connect_throttle: int = 20  # new connections an address may make per window; 0: off
    connect_window: float = 60.0
    registration_timeout: float = _LINK.registration_timeout
    greet_after: float = _LINK.greet_after
    ping_interval: float = _LINK.ping_interval
    ping_timeout: float = _LINK.ping_timeout
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
    redis_hold_bytes: int = 16 * 1024 * 1024  # commands held while Redis is away (14.4)
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

    __slots__ = ("stream", "transport", "peer_done", "closed", "_close_later")

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self.stream = stream
        self.transport = stream.transport  # again after a TLS upgrade: see `bind`
        self.peer_done = False  # the client sent its FIN: all its input is read
        # close() was called: our FIN may be on its way, and a write after it raises
        # (in the writer's flush, where it would stop every other connection's output)
        self.closed = False
        self._close_later: asyncio.TimerHandle | None = None

    def bind(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def send(self, data: bytes) -> int:
        transport = self.transport
        if self.closed or transport.is_closing():
            return -1
        transport.write(data)  # what StreamWriter.write does, one call fewer a write
        return transport.get_write_buffer_size()

    def close(self) -> None:
        # FIN first, close a moment later: a socket closed while the client is still
        # sending has unread input and is reset, and a reset can make the client's
        # kernel drop the last lines we sent (the shutdown notice) before it reads them.
        # The shell goes on reading (and dropping) until the close.
        # Once the client has sent its FIN, nothing of it is left unread: close at once.
        if self.closed:
            return
        self.closed = True
        stream = self.stream
        if self.peer_done or self.transport.is_closing() or not stream.can_write_eof():
            stream.close()
            return
        try:
            stream.write_eof()
        except OSError:
            stream.close()
            return
        self._close_later = asyncio.get_running_loop().call_later(CLOSE_GRACE, stream.close)

    def peer_finished(self) -> None:
        """The client's FIN was read: a close waiting out CLOSE_GRACE happens now (a client
        that hangs up on our FIN, as chatc and nc do, is not kept waiting)."""
        self.peer_done = True
        if self._close_later is not None:
            self._close_later.cancel()
            self.stream.close()

    def abort(self) -> None:
        self.transport.abort()


class Connection:
    """One client connection as the shell sees it: its link, its outlet, and the
    writer's bookkeeping (chatd.outbox.Receiver). The hub knows it as a peer (cid, text)."""

    __slots__ = (
        "server", "cid", "link", "outlet", "ip", "address", "out", "queued", "closing",
        "gone", "drop_reason", "bufs", "starts", "own", "special", "held_sid",
        "linger", "counted",
    )

    def __init__(self, server: Server, cid: int, outlet: Outlet, *, ip: str, address: str,
                 mode: Mode, detect_tls: bool) -> None:
        self.server = server
        self.cid = cid
        self.link: Link[Connection] = Link(self, server.link_config, time.monotonic(),
                                           mode=mode, detect_tls=detect_tls)
        self.outlet = outlet
        self.ip = ip
        self.address = address
        self.out: list[bytes] = []
        self.queued = False  # in the writer's dirty list
        self.closing = False  # close once the outbox is written
        self.gone = False  # the connection has ended
        self.drop_reason: str | None = None
        self.bufs: list[ChannelBuffer] = []  # chatd.outbox: its channels' turn buffers
        self.starts: dict[ChannelBuffer, int] | None = None
        self.own: list[tuple[int, bytes]] | None = None
        self.special = False
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


class StreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, but the error that ends a connection is kept without
    its traceback.

    The error (a reset met by a write or a read) is stored on the reader and on the
    stream's close future, and the future keeps the traceback apart from the error
    (`Future.result` raises it with it). That traceback holds the frames it was raised
    in, from the socket's write up to the writer's flush, and so the stream writer,
    whose protocol holds the future: a cycle, and the frames hold the connection. Only
    a full collection would find it (chatd.heap counts on connections being freed
    without one); a write meets a reset whenever a client goes while lines are coming,
    which is often on a loaded machine (tests/e2e/test_heap.py). Nothing reads that
    traceback: the end is logged in words (chatd.net.end_reason).
    """

    def connection_lost(self, exc: Exception | None) -> None:
        forget_tracebacks(exc)
        super().connection_lost(exc)


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


class Server:
    def __init__(self, config: ServerConfig, log: ServerLog) -> None:
        self.config = config
        self.log = log
        self.link_config = link_config_of(config)
        p.name_key("\u0430")  # load the look-alike tables now, not on someone's join
        self.store: SqliteHistory | None = None
        if config.history_db:
            # Imported here: a chatd without a database never loads the store (a start
            # costs the tests' hundreds of chatd processes a little less).
            from chatd.store import SqliteHistory
            self.store = SqliteHistory(
                config.history_db, config.hub.history_size, backlog=config.history_db_backlog,
                backlog_bytes=config.history_db_backlog_bytes,
                max_bytes=config.history_db_max_bytes, idle=config.history_idle, log=log)
        sink: HistorySink | None = self.store
        self.writer = Writer(config.max_send_queue, log)
        self.hub: Hub[Connection] = Hub(config.hub, sink=sink, moderation=self.store)
        self.hasher = Hasher()  # PROTOCOL.txt 18.7: passwords are hashed off the loop
        self._hashing: set[asyncio.Future[None]] = set()
        if self.store is not None:
            self.hub.acc.sink = self.store
            self.hub.acc.load(self.store.load_accounts(), self.store.load_markers(),
                              self.store.load_tokens())
        self.bus: Bus
        if config.redis_url:
            from chatd.cluster import RedisBus  # only cluster nodes need redis

            self.bus = RedisBus(self.hub, self.apply_effects, config.redis_url, log,
                                snapshot_every=config.snapshot_every,
                                log_bytes=config.redis_log_bytes,
                                history_bytes=config.redis_history_bytes,
                                hold_bytes=config.redis_hold_bytes,
                                idle=config.history_idle)
        else:
            # Ids go on increasing across restarts: from the clock in microseconds, or
            # past what the history database handed out, whichever is further.
            first = max(int(time.time() * 1_000_000), self.store.first_id if self.store else 0)
            self.bus = LocalBus(self.hub, self.apply_effects, first_seq=first,
                                reserve=self.store.reserve if self.store else None)
        self.connections: dict[int, Connection] = {}
        self.admission = Admission(
            config.max_clients, config.max_per_ip, ipv6_prefix=config.ipv6_prefix,
            throttle=config.connect_throttle, window=config.connect_window)
        self.policy = AdmissionPolicy(self.admission, password=bool(config.password))
        self.listeners: list[asyncio.Server] = []
        self._tls: ssl.SSLContext | None = None
        self._cid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_closed: asyncio.Event | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self.collector = Collector(time.monotonic())  # chatd.heap: short GC pauses
        # Set by chatd.service when asked for: this module imports neither.
        self.web: Gateway | None = None
        self.metrics: Endpoint | None = None
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
        self._tls = tls_context(self.config.tls_cert, self.config.tls_key)
        await self.bus.start()
        self.bus.publish([BeatCmd(self.hub.node)])  # known alive before any session
        hosts = list(self.config.hosts) if self.config.hosts else [None]
        for host in hosts:
            # No ssl= here: a TLS connection is counted first, then upgraded (_serve_tcp).
            self.listeners.append(await self._loop.create_server(
                self._stream_protocol, host=host, port=self.config.port, backlog=4096))
        self._housekeeper = asyncio.create_task(self._housekeeping())
        bound = []
        for listener in self.listeners:
            for sock in listener.sockets:
                addr = sock.getsockname()
                bound.append(f"[{addr[0]}]:{addr[1]}" if sock.family == socket.AF_INET6
                             else f"{addr[0]}:{addr[1]}")
        if self.store is None and self.hub.acc.on and not self.config.redis_url:
            # Said once it listens: a server that cannot start says only why (exit 2).
            self.log.warning("accounts: no --db, so accounts and read markers will not "
                             "survive a restart")
        return bound

    def transport_of(self, conn: Connection) -> str:
        """tcp, tls or web (chatd.metrics labels connections with it)."""
        if not isinstance(conn.outlet, StreamOutlet):
            return "web"
        return "tcp" if conn.outlet.transport.get_extra_info("sslcontext") is None else "tls"

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        what = context.get("message", "error")
        # Failed TLS handshakes and the like: one log line, not a traceback per client.
        if exc is None or isinstance(exc, (OSError, EOFError)):
            self.log.warning(f"{what}: {exc!r}" if exc else str(what))
            return
        # Anything else is a bug in a callback of ours (the writer's flush, a timer): it
        # may have cost other connections their output, so it is one, loudly.
        self.log.error(f"internal error in {what}: {exc!r}", "bug")

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
                self.perform(conn.link.shutdown())
        self.writer.flush()
        try:
            await asyncio.wait_for(self.all_closed(), self.config.shutdown_timeout)
        except TimeoutError:
            for conn in list(self.connections.values()):
                conn.drop("server shut down")
        if self.web is not None:
            await self.web.close()
        await self.bus.close()
        self.hasher.close()
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
                        self.perform(actions)
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
        tls = (tls_context(new.tls_cert, new.tls_key) if self.config.tls_cert and new.tls_cert
               else self._tls)
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
        self.policy.password = bool(config.password)
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

    def _stream_protocol(self) -> StreamProtocol:
        """What asyncio.start_server makes per connection, with StreamProtocol."""
        reader = asyncio.StreamReader(limit=READ_LIMIT, loop=self._loop)
        return StreamProtocol(reader, self._serve_tcp, loop=self._loop)

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         stream: asyncio.StreamWriter) -> None:
        """One TCP client, from accept to close: read, feed its link, nothing else."""
        sock = stream.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _tune(sock)
        _shrink_drain_waiters(stream.transport.get_protocol())
        ip, address = peer_address(stream.get_extra_info("peername"))
        plain = self._tls is None
        tcp = stream.transport  # under TLS, `stream` writes through another one
        outlet = StreamOutlet(stream)
        conn = self.accept(ip, address, outlet, detect_tls=plain, say_why=plain)
        if conn is None:
            release_transport(tcp)
            return
        reason: str | None = None
        try:
            if self._tls is not None and not await self._upgrade(conn, stream):
                return
            while data := await reader.read(READ_SIZE):
                # Once closing, input is read and dropped: a socket closed with unread
                # input is reset, and the client could lose the last lines sent to it.
                if not conn.closing:
                    self.received(conn, data)
            if not conn.closing:
                self.eof(conn)
            outlet.peer_finished()
            await stream.wait_closed()  # bounded: a closing connection lingers at most
        except OSError as exc:  # reset, broken pipe...: the client is gone
            reason = end_reason(exc)
            # The stream keeps the error that ended it, and a traceback holds frames that
            # hold the stream: a cycle only a full collection would find (chatd.heap).
            exc.__traceback__ = None
        finally:
            if (error := reader.exception()) is not None:  # the same, raised elsewhere
                error.__traceback__ = None
            self.lost(conn, reason)
            release_transport(tcp)

    async def _upgrade(self, conn: Connection, stream: asyncio.StreamWriter) -> bool:
        """TLS after the connection was counted, under a deadline (PROTOCOL.txt 11.1)."""
        timeout = self.config.tls_handshake_timeout
        assert self._tls is not None
        try:
            async with asyncio.timeout(timeout):
                await stream.start_tls(self._tls, ssl_handshake_timeout=timeout)
            cast(StreamOutlet, conn.outlet).bind(stream.transport)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else end_reason(exc)
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
        verdict = self.policy.admit(
            ip, time.monotonic(), throttle=throttle,
            ban=lambda: self.hub.mod.address_ban(ip, time.time()))  # 15.3
        if isinstance(verdict, Refusal):
            self.refusals[verdict.code] += 1
            log = (self.log.warning if verdict.log_level == "warning" else
                   self.log.info if verdict.log_level == "info" else self.log.debug)
            log(f"refused: {verdict.message}", event="refuse", cid=self._cid, address=address)
            if say_why:
                outlet.send(verdict.line())
            outlet.close()
            return False
        if verdict is not None:
            self.log.info(f"#{self._cid} {address} takes the slot of held session {verdict}")
            self.bus.publish([LeaveCmd(verdict, REPLACED)])
        return True

    def _wrong_password(self, conn: Connection, oper: bool) -> None:
        """The address waits before its next try (11.2, 15.1); logged without it."""
        now = time.monotonic()
        if oper:
            self.log.warning(f"{conn} {self.policy.wrong_oper(conn.ip, now)}")
        elif (line := self.policy.wrong_password(conn.ip, now)) is not None:
            self.log.warning(line)

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
        conn = Connection(self, self._cid, outlet, ip=ip, address=address,
                          mode=Mode.JSON if json_only else Mode.UNKNOWN, detect_tls=detect_tls)
        self.connections[conn.cid] = conn
        self.log.info("connected", event="connect", cid=conn.cid, address=conn.address)
        return conn

    def received(self, conn: Connection, data: bytes) -> None:
        """Bytes from a stream (TCP)."""
        self.bytes_in += len(data)
        self.perform(conn.link.receive_data(data, time.monotonic()))

    def received_message(self, conn: Connection, data: bytes) -> None:
        """One whole message (WebSocket)."""
        self.bytes_in += len(data)
        self.perform(conn.link.receive_message(data, time.monotonic()))

    def eof(self, conn: Connection) -> None:
        self.perform(conn.link.receive_eof(time.monotonic()))

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
        if self.connections.pop(conn.cid, None) is not None:
            self.uncount(conn)
            self.perform(conn.link.suppressed_errors())
            self.log.debug("closed" + (f" ({conn.drop_reason})" if conn.drop_reason else ""),
                           event="close", cid=conn.cid, address=conn.address)
            if self._all_closed is not None and not self.connections:
                self._all_closed.set()
        conn.link.detach()  # the link names its connection: no cycle left for the GC

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

    def _handle(self, conn: Connection, event: p.Event) -> None:
        if type(event) is p.Oper and (refusal := self.policy.oper_refusal(
                conn.ip, time.monotonic())) is not None:  # PROTOCOL.txt 15.1
            self.perform(conn.link.error(refusal.code, refusal.message, time.monotonic(),
                                         retry_after=refusal.retry_after))
            return
        try:
            self.apply_effects(self.hub.handle(
                conn, event, conn.ip if type(event) in _ADDRESSED else ""))
        except Exception as exc:  # a bug must cost one line, never the server
            self.log.error(f"internal error on {type(event).__name__}: {exc!r}", "bug",
                           cid=conn.cid, address=conn.address)
            self.perform(conn.link.error(
                ErrorCode.INTERNAL, "the server failed on this line; it was dropped",
                time.monotonic()))

    def perform(self, ops: Sequence[ef.Op[Connection]]) -> None:
        """Carry out effects of a link or of the hub, in order (chatd.effects)."""
        writer = self.writer
        for op in ops:
            # isinstance in order of frequency: as exhaustive for mypy as a match, and
            # cheaper on the broadcast path (a chat line makes a Deliver, a Publish and a
            # Broadcast; a Send is a reply).
            if isinstance(op, ef.Deliver):
                self.lines_in += 1
                self._handle(op.peer, op.event)
            elif isinstance(op, ef.Publish):
                self.bus.publish(op.commands)
            elif isinstance(op, ef.Broadcast):
                if op.mentioned or op.own:
                    writer.broadcast_mentioning(op.room, op.update, op.skip, op.mentioned,
                                                op.own)
                else:
                    writer.broadcast_update(op.room, op.update, op.skip)
            elif isinstance(op, ef.Multicast):
                writer.multicast_update(op.room, op.update, op.peers)
            elif isinstance(op, ef.Reply):
                size = writer.send_update(op.peer, op.update)
                if op.charge:  # charged where its bytes are made: by the mode's size (8.3)
                    op.peer.link.charge(size, time.monotonic())
            elif isinstance(op, ef.Send):
                writer.send(op.peer, op.data)
            elif isinstance(op, ef.Enter):
                writer.enter_room(op.room, op.peer, op.prefixed)
            elif isinstance(op, ef.Exit):
                writer.exit_room(op.room, op.peer)
            elif isinstance(op, ef.Close):
                op.peer.close()
            elif isinstance(op, ef.Settled):
                self.perform(op.peer.link.settle(op.joined, time.monotonic(), op.login))
            elif isinstance(op, ef.Released):
                self.admission.unhold(op.sid)
            elif isinstance(op, ef.Charge):
                op.peer.link.charge(op.reply_bytes, time.monotonic())
            elif isinstance(op, ef.SendPaced):
                writer.send_paced_updates(op.peer, op.lines)
            elif isinstance(op, ef.Page):
                if charged := writer.send_page(op.peer, op):
                    op.peer.link.charge(charged, time.monotonic())
            elif isinstance(op, ef.Leave):
                self.left(op.peer, op.reason, op.resumable)
            elif isinstance(op, ef.Abort):
                op.peer.drop(op.reason)
            elif isinstance(op, ef.Log):
                conn = op.peer
                log = self.log.info if op.level == "info" else self.log.warning
                log(op.text, event="connection", cid=conn.cid, address=conn.address)
            elif isinstance(op, ef.WrongPassword):
                self._wrong_password(op.peer, op.oper)
            elif isinstance(op, ef.Hash):
                self._hash(op)
            else:
                assert_never(op)

    def _hash(self, op: ef.Hash[Connection]) -> None:
        """A password hash for the hub, on the hasher's threads (PROTOCOL.txt 18.7)."""
        task = asyncio.ensure_future(self._hashed(op))
        self._hashing.add(task)
        task.add_done_callback(self._hashing.discard)

    async def _hashed(self, op: ef.Hash[Connection]) -> None:
        outcome: object
        try:
            outcome = await (self.hasher.hash(op.password) if op.stored is None
                             else self.hasher.verify(op.password, op.stored))
        except HasherBusy:
            outcome = ef.HASH_BUSY
        if op.peer.gone or self.stopping:
            return
        try:
            self.apply_effects(self.hub.hashed(op.peer, op.then, outcome))
        except Exception as exc:  # a bug must cost one line, never the server
            self.log.error(f"internal error after a password hash: {exc!r}", "bug",
                           cid=op.peer.cid, address=op.peer.address)

    def apply_effects(self, fx: Effects[Connection]) -> None:
        """The hub's effects (chatd.bus calls this), and its lines for the log: the
        log's line first, as its effects can apply more (a join's Settled hands on the
        lines its client sent meanwhile, whose notes must come after the join's)."""
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
        self.perform(fx.ops)


# The lines whose handling needs the connection's address (bans, 18.10's throttles).
_ADDRESSED: Final = frozenset({p.Connect, p.Register})

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


def _shown(name: str, value: Any) -> str:
    if name in SECRETS:
        return "(set)" if value else "(none)"
    return repr(value)
