"""The server: connections, their links and the hub in the middle, the writer out.

Each shell hands the server a new connection (`accept`) and its bytes: chatd.tcp's
listener from a TCP stream (`received`), chatd.web's gateway a WebSocket message at a
time (`received_message`). Each connection's `Link` (chatd.link) is the sans-I/O
protocol of one connection. The link's effects and the hub's (chatd.hub) are in one
vocabulary (chatd.effects) and carried out, in order, by one dispatcher, `perform`: a
`Deliver` goes to the hub, whose effects come back through `perform`. Bytes reach the
client through the writer (chatd.outbox), which hands each connection's output to its
outlet once per loop turn. Nothing on the broadcast path awaits a client. Who may
connect, and the words of a refusal, are chatd.admission.AdmissionPolicy's; this module
only carries them out.

A byte's way, in order: `TcpListener._serve` (read) -> `Server.received` ->
`Link.receive_data` -> `Server.perform` (Deliver) -> `Hub.handle` -> bus
(`LocalBus.publish` or the Redis log) -> `Hub.apply` -> `Server.apply_effects` ->
`Server.perform` -> `Writer` (updates encoded in the reader's mode, once per mode for a
room) -> `StreamOutlet.send`.

What both shells share is in chatd.net; neither shell imports the other: chatd.service
starts them (and chatd.metrics) and hands this server the gateway as a
chatd.net.Gateway. The settings and what a reload changes are chatd.settings'; the
periodic work chatd.housekeeping's; password hashes chatd.password_jobs'.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, assert_never

from chatd import effects as ef
from chatd import protocol as p
from chatd.admission import REPLACED, Admission, AdmissionPolicy, Refusal
from chatd.bus import Bus, LocalBus
from chatd.channels import Outlet
from chatd.commands import BeatCmd, DetachCmd, LeaveCmd, Logged
from chatd.connection import Connection
from chatd.effects import Effects
from chatd.housekeeping import Housekeeper
from chatd.hub import HistorySink, Hub
from chatd.link import Mode
from chatd.moderation import Credentials
from chatd.net import (
    Endpoint,
    Gateway,
    tls_context,
)
from chatd.password_jobs import PasswordJobs
from chatd.protocol import ErrorCode
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig, link_config_of, reload_plan
from chatd.tcp import StreamOutlet, TcpListener
from chatd.writer import Writer

if TYPE_CHECKING:
    from chatd.store import SqliteHistory

CLOSE_LINGER = 10.0  # seconds a closing connection may take to take its last bytes


class Server:
    """One chat server over its shells (this module's TCP listener, and chatd.web's
    gateway when asked for): the connections and their links, the hub, the bus its
    commands go through, the writer; and `perform`, the one dispatcher of their effects.
    """

    def __init__(self, config: ServerConfig, log: ServerLog) -> None:
        self.config = config
        self.log = log
        self.link_config = link_config_of(config)
        p.name_key("\u0430")  # load the look-alike tables now, not on someone's join
        self.store = _open_store(config, log)
        sink: HistorySink | None = self.store
        self.writer = Writer(config.max_send_queue, log)
        self.flush_after_readers = self.writer.flush_after_readers  # for chatd.tcp
        self.hub: Hub[Connection] = Hub(config.hub, sink=sink, moderation=self.store)
        self.passwords = PasswordJobs(self.hub, self.apply_effects, log,
                                      lambda: self.stopping)
        if self.store is not None:
            self.hub.acc.sink = self.store
            self.hub.acc.load(self.store.load_accounts(), self.store.load_markers(),
                              self.store.load_tokens())
        self.bus = _open_bus(config, self.hub, self.apply_effects, self.store, log)
        self.connections: dict[int, Connection] = {}
        self.admission = Admission(
            config.max_clients, config.max_per_ip, ipv6_prefix=config.ipv6_prefix,
            throttle=config.connect_throttle, window=config.connect_window)
        self.policy = AdmissionPolicy(self.admission, password=bool(config.password))
        self.tcp = TcpListener(self, handshake_timeout=config.tls_handshake_timeout)
        self._cid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_closed: asyncio.Event | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        # Set by chatd.service when asked for: this module imports neither.
        self.web: Gateway | None = None
        self.metrics: Endpoint | None = None
        self.stopping = False
        # Counted here in plain ints, read by chatd.metrics when Prometheus scrapes.
        self.lines_in = 0
        self.bytes_in = 0
        self.refusals: collections.Counter[str] = collections.Counter()
        self.housekeeper = Housekeeper(self.bus, self.hub.node, self.writer, self.perform)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[str]:
        """Listen; returns the bound addresses ("127.0.0.1:5000")."""
        self._loop = asyncio.get_running_loop()
        self.writer.loop = self._loop
        self._loop.set_exception_handler(self.log.loop_error)
        self.log.attach(self._loop)
        tls = tls_context(self.config.tls_cert, self.config.tls_key)
        await self.bus.start()
        self.bus.publish(BeatCmd(self.hub.node))  # known alive before any session
        hosts: list[str | None] = list(self.config.hosts) if self.config.hosts else [None]
        bound = await self.tcp.listen(hosts, self.config.port, tls)
        self._housekeeper = asyncio.create_task(self.housekeeper.run())
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

    async def shutdown(self) -> None:
        """Tell every client, flush what is queued, close; give up on laggards after a while."""
        self.tcp.close()
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
        self.passwords.close()
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

    def reconfigure(self, new: ServerConfig) -> list[str]:
        """Apply what can change while serving (chatd.settings.LIVE) and keep every
        connection; returns the log lines that say what changed and what waits for a
        restart. Raises (and changes nothing) if the new TLS certificate cannot be loaded."""
        plan = reload_plan(self.config, new)
        tls = (tls_context(new.tls_cert, new.tls_key) if self.config.tls_cert and new.tls_cert
               else self.tcp.tls)
        self.config = config = plan.config
        self.link_config = link_config_of(config)  # connections made from now on
        self.policy.password = bool(config.password)
        self.writer.max_send_queue = config.max_send_queue
        admission = self.admission
        admission.max_clients, admission.max_per_ip = config.max_clients, config.max_per_ip
        admission.throttle = config.connect_throttle
        admission.window = max(0.001, config.connect_window)
        self.tcp.tls = tls
        self.tcp.handshake_timeout = config.tls_handshake_timeout
        if self.web is not None:
            self.web.tls = tls
        self.hub.config = config.hub
        self.hub.archive.budget = config.hub.history_memory // 4  # as Hub.__init__ sets it
        if "opers" in plan.live:
            self.hub.credentials = Credentials(config.hub.opers)
        self.log.set_level(config.log_level)
        return plan.lines(tls is not None)

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
            self.bus.publish(LeaveCmd(verdict, REPLACED))
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
        self.housekeeper.watch(conn)
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
        conn.direct = None
        self.left(conn, conn.drop_reason or reason, grace=grace)
        conn.out.clear()
        if self.connections.pop(conn.cid, None) is not None:
            self.housekeeper.forget(conn)
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
            fx = self.hub.handle(conn, event, conn.ip if type(event) in _ADDRESSED else "")
            if fx.note or fx.audit:
                self.apply_effects(fx)
            else:  # a chat line: its SayCmd alone, the log's line comes when applied
                self.perform(fx.ops)
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
            # cheaper on the broadcast path (a chat line makes a Deliver, a SayCmd and a
            # Broadcast; a Send is a reply).
            if isinstance(op, ef.Deliver):
                self.lines_in += 1
                self._handle(op.peer, op.event)
            elif isinstance(op, Logged):  # a command, for the log
                self.bus.publish(op)
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
                self.passwords.start(op)
            else:
                assert_never(op)

    def apply_effects(self, fx: Effects[Connection]) -> None:
        """The hub's effects (chatd.bus calls this), and its lines for the log: the
        log's line first, as its effects can apply more (a join's Settled hands on the
        lines its client sent meanwhile, whose notes must come after the join's)."""
        if fx.note:
            about = fx.about
            if about is None:
                self.log.info(fx.note)
            elif not self.log.json:
                if about[0] == "message":  # a room line: its text is clean (chat's cheap check)
                    self.log.chat(fx.note)
                else:
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


def _open_store(config: ServerConfig, log: ServerLog) -> SqliteHistory | None:
    """The history (and accounts) database of --db, if any."""
    if not config.history_db:
        return None
    # Imported here: a chatd without a database never loads the store (a start
    # costs the tests' hundreds of chatd processes a little less).
    from chatd.store import SqliteHistory
    return SqliteHistory(
        config.history_db, config.hub.history_size, backlog=config.history_db_backlog,
        backlog_bytes=config.history_db_backlog_bytes,
        max_bytes=config.history_db_max_bytes, idle=config.history_idle, log=log)


def _open_bus(config: ServerConfig, hub: Hub[Connection],
              apply_effects: Callable[[Effects[Connection]], None],
              store: SqliteHistory | None, log: ServerLog) -> Bus:
    """The log the hub's commands go through: Redis's for a cluster, else this process's."""
    if config.redis_url:
        from chatd.cluster import RedisBus  # only cluster nodes need redis

        return RedisBus(hub, apply_effects, config.redis_url, log,
                        snapshot_every=config.snapshot_every,
                        log_bytes=config.redis_log_bytes,
                        history_bytes=config.redis_history_bytes,
                        hold_bytes=config.redis_hold_bytes, idle=config.history_idle)
    # Ids go on increasing across restarts: from the clock in microseconds, or past what
    # the history database handed out, whichever is further.
    first = max(int(time.time() * 1_000_000), store.first_id if store else 0)
    return LocalBus(hub, apply_effects, first_seq=first,
                    reserve=store.reserve if store else None)


# The lines whose handling needs the connection's address (bans, 18.10's throttles).
_ADDRESSED: Final = frozenset({p.Connect, p.Register})
