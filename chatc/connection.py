"""The client session: one logical chat session over as many TCP connections as it takes.

No terminal code. `Session.open()` joins; `Session.events()` yields the server's updates
(decoded by `chatd.protocol`) mixed with the session's own events (`chatc.events`:
`Confirmed`, `Lost`, `Reconnected`, ...), and ends with `Gone`.

Own lines carry a `ref` and are sent one at a time: the next goes once the previous is
acknowledged, or refused, or after `ack_timeout` without an answer (then it is reported
`Failed` with NO_ANSWER, and a late ack still confirms it): no line can hold the queue.
A line longer than the server takes is refused here (`TooLong`) before it is queued.
Commands (join, who, ...) wait in the same queue, so a script's "/join dev" takes effect
between the lines before and after it. That keeps everything in order
across reconnects and flood control, and makes "was it delivered?" answerable after a
drop (at most one line is in doubt).

Reconnecting (PROTOCOL.txt section 10): a resumed welcome is followed by the missed
lines and acks; a ping after it works as a fence, because the server answers lines in
order, so its pong means the replay is over and an unacknowledged line was lost and
must be sent again. A welcome that did not resume (the server restarted) is followed
by history pages after the last id this client saw, merged with the join history and
the live lines that arrive meanwhile, de-duplicated by id and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import itertools
import random
import secrets
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from chatc import words
from chatc.events import (
    CaughtUp,
    Confirmed,
    Failed,
    Gone,
    Lost,
    Outgoing,
    Reconnected,
    SessionEvent,
    Throttled,
)
from chatd import protocol as p

LINE_LIMIT = 4 * 1024 * 1024  # a server line is at most one 64 KiB message plus JSON
# chatc's own code for a line the server did not answer in time (not a server code).
NO_ANSWER = "no_answer"
LATE_ACKS_KEPT = 100  # lines given up on whose ack may still come
# Codes after which trying again with the same settings cannot help.
FATAL_CODES = frozenset({p.ErrorCode.AUTH_FAILED, p.ErrorCode.BAD_NAME, p.ErrorCode.BAD_ROOM,
                         p.ErrorCode.BANNED})
# An operator removed this user (PROTOCOL.txt 15.2, 15.3): reconnecting would undo it.
FINAL_CODES = frozenset({p.ErrorCode.KICKED, p.ErrorCode.BANNED})
# Errors the server sends right before it closes the connection (PROTOCOL.txt 7).
CLOSING_CODES = frozenset({
    p.ErrorCode.EXCESS_FLOOD, p.ErrorCode.AUTH_FAILED, p.ErrorCode.SERVER_FULL,
    p.ErrorCode.TOO_MANY_CONNECTIONS, p.ErrorCode.REGISTRATION_TIMEOUT,
    p.ErrorCode.PING_TIMEOUT, p.ErrorCode.KICKED, p.ErrorCode.BANNED})
CHAT_UPDATES = (p.Chat, p.Joined, p.Left, p.Renamed)


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnect attempts: first, first*factor, ... up to `cap`, each
    drawn between half and all of that (jitter), so that a server coming back finds
    its clients spread over a second or so, not all in one instant, and each within
    `cap` seconds of it accepting again.

    An attempt the server itself answered (full, or over its connect throttle) counts
    against that throttle (PROTOCOL.txt 8.4: 20 new connections per 60 s from one
    address by default): the next one waits `spacing` seconds or more (up to twice
    that), so that a client stays within it. An attempt to a server that is not
    listening (connection refused) does not count there.
    """

    first: float = 0.25
    factor: float = 2.0
    cap: float = 2.0
    spacing: float = 60 / 20

    def delay(self, attempt: int, draw: Callable[[], float], reached: bool = False
              ) -> float:
        """The wait before attempt number `attempt` (1, 2, ...); `draw` gives a number
        in [0, 1) (random.random); `reached`: the previous attempt got an answer."""
        base = min(self.cap, self.first * self.factor ** max(0, attempt - 1))
        if reached:
            return self.spacing * (1 + draw())
        return base * (1 + draw()) / 2


class ConnectFailed(Exception):
    """The server could not be reached or joined; `str()` reads well on its own.
    `reached`: the server (or something at its address) took the connection."""

    def __init__(self, message: str, reached: bool = True) -> None:
        super().__init__(message)
        self.reached = reached


class Refused(ConnectFailed):
    """The server answered the connect line with an error."""

    def __init__(self, error: p.Error) -> None:
        super().__init__(words.explain(error, joining=True))
        self.error = error


class TooLong(ValueError):
    """An own line longer than the server takes: `size` bytes as sent, over `limit`."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, over the limit of {limit}")
        self.size = size
        self.limit = limit


def describe(exc: BaseException, target: Target) -> str:
    """An exception from connecting or reading, as one line for a person."""
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
            return f"unknown host {target.host!r}"
        return f"cannot resolve {target.host!r}: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {target} refused (is chatd running there?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS certificate of {target} not trusted ({exc.verify_message}); "
                "use --cafile FILE or --insecure")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS failed with {target} ({getattr(exc, 'reason', None) or exc}); "
                "is it a TLS server?")
    if isinstance(exc, TimeoutError):
        return f"{target} did not answer in time"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"{target} is unreachable ({exc.strerror.lower() if exc.strerror else exc})"
        return exc.strerror.lower() if exc.strerror else str(exc)
    return str(exc) or type(exc).__name__


class _Dedup:
    """The last `size` chat lines seen, by (id, time): a restarted server without a
    history database reuses ids, but not with the same time."""

    def __init__(self, size: int = 10_000) -> None:
        self._order: deque[tuple[str, str]] = deque()
        self._keys: set[tuple[str, str]] = set()
        self._size = size

    def add(self, id: str, time: str) -> bool:
        """False if the line was seen already."""
        key = (id, time)
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self._size:
            self._keys.discard(self._order.popleft())
        return True

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys


@dataclass(slots=True)
class _CatchUp:
    """State of the history fetch after a reconnect that did not resume."""

    after: str
    fenced: bool = False  # the pong after the join history arrived; pages are coming
    joined: list[p.Update] = field(default_factory=list)  # join history
    pages: list[p.Chat] = field(default_factory=list)
    live: list[p.Update] = field(default_factory=list)  # arrived meanwhile


class Session:
    def __init__(
        self,
        target: Target,
        name: str | None,
        *,
        room: str | None = None,
        password: str | None = None,
        reconnect: bool = False,
        backoff: Backoff | None = None,
        draw: Callable[[], float] = random.random,
        connect_timeout: float = 10.0,
        keepalive: float = 30.0,
        keepalive_timeout: float = 15.0,
        close_timeout: float = 3.0,
        ack_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.name = name  # asked for; the assigned one once joined
        self.room = room
        self.password = password
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.draw = draw
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.keepalive_timeout = keepalive_timeout
        self.close_timeout = close_timeout
        self.ack_timeout = ack_timeout
        self.welcome: p.Welcome | None = None
        self.connected = False
        self.last_id: str | None = None
        self._token = ""
        self._refs = (f"{secrets.token_hex(3)}-{n}" for n in itertools.count(1))
        self._outbox: deque[Outgoing | p.Event] = deque()
        self._in_flight = False  # outbox[0] was sent on this connection, no answer yet
        self._ack_timer: asyncio.TimerHandle | None = None  # gives up on outbox[0]
        self._given_up: dict[str, Outgoing] = {}  # by ref: an ack may still come
        self._doubt: Outgoing | None = None  # in flight when the last connection broke
        self._hold: asyncio.TimerHandle | None = None  # flood control pause
        self._fence = False  # waiting for the pong that ends a replay
        self._catchup: _CatchUp | None = None
        self._seen = _Dedup()
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._farewell: str | None = None  # why the server is about to close the connection
        self._final = False  # removed by an operator: no reconnecting
        self._idle = asyncio.Event()  # set while the outbox is empty
        self._idle.set()

    # ------------------------------------------------------------------ public

    async def open(self) -> p.Welcome:
        """Connect and join; raises ConnectFailed (Refused for a server's no)."""
        welcome = await self._handshake(resume=False)
        self._task = asyncio.create_task(self._run(), name="chatc-session")
        return welcome

    async def events(self) -> AsyncIterator[SessionEvent]:
        """Everything that happens, in order; the last event is `Gone`."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Gone):
                return

    @property
    def max_line_bytes(self) -> int:
        """The longest line the server takes (PROTOCOL.txt 8.1), as its welcome says."""
        announced = getattr(self.welcome, "max_line_bytes", 0)
        return announced if isinstance(announced, int) and announced > 0 \
            else p.DEFAULT_MAX_LINE_BYTES

    def say(self, text: str, to: str | None = None) -> Outgoing:
        """Queue an own chat line; it is sent as soon as the connection allows.

        Raises TooLong, queueing nothing, if the line as sent (JSON, ref included) is
        longer than the server takes: the server would drop it unread.
        """
        line = Outgoing(next(self._refs), text, to)
        # The limit is on the whole line without its newline, as the server splits it.
        size = len(p.encode_event(p.Message(text, to=to, ref=line.ref))) - 1
        if size > self.max_line_bytes:
            raise TooLong(size, self.max_line_bytes)
        self._outbox.append(line)
        self._idle.clear()
        self._pump()
        return line

    def command(self, event: p.Event) -> None:
        """Queue a command (who, join, ...) behind the own lines queued before it."""
        self._outbox.append(event)
        self._idle.clear()
        self._pump()

    @property
    def pending(self) -> list[Outgoing]:
        """Own lines not acknowledged yet, oldest first."""
        return [line for line in self._outbox if isinstance(line, Outgoing)]

    def send(self, event: p.Event) -> bool:
        """Write a line now, outside the queue; False if not connected."""
        if not self.connected or self._writer is None or self._writer.is_closing():
            return False
        self._writer.write(p.encode_event(event))
        return True

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every own line was confirmed or refused; False if `timeout`
        seconds passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Leave politely and wait (a little) for the server to close."""
        self._closing = True
        if self._hold is not None:
            self._hold.cancel()
        self._stop_ack_timer()
        if self._task is None:
            return
        if self.connected and self._writer is not None and not self._writer.is_closing():
            self._writer.write(p.encode_event(p.Disconnect()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.close_timeout)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._drop_connection()
            self._events.put_nowait(Gone(None))

    # ------------------------------------------------------------------ connecting

    async def _handshake(self, resume: bool) -> p.Welcome:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                self.target.host, self.target.port, ssl=self.target.tls,
                server_hostname=self.target.host if self.target.tls else None,
                limit=LINE_LIMIT), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            if self.target.tls and isinstance(exc, (ConnectionResetError, BrokenPipeError)):
                raise ConnectFailed(f"TLS failed with {self.target} (closed during the "
                                    "handshake); is it a TLS server?") from None
            unanswered = isinstance(exc, (ConnectionRefusedError, socket.gaierror)) or (
                isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH,
                                                           errno.EHOSTUNREACH))
            raise ConnectFailed(describe(exc, self.target), reached=not unanswered) from None
        connect = p.Connect(name=self.name, room=self.room, password=self.password,
                            resume=self._token if resume and self._token else None,
                            last_id=self.last_id if resume and self._token else None)
        try:
            writer.write(p.encode_event(connect))
            welcome = await asyncio.wait_for(self._await_welcome(reader, writer),
                                             self.connect_timeout)
        except BaseException as exc:
            writer.close()
            if isinstance(exc, (OSError, TimeoutError, ValueError)):
                raise ConnectFailed(describe(exc, self.target)) from None
            raise
        self._reader, self._writer = reader, writer
        self.connected = True
        self.welcome = welcome
        self.name, self.room = welcome.name, welcome.room
        if welcome.resume:
            self._token = welcome.resume
        return welcome

    async def _await_welcome(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> p.Welcome:
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                hint = "" if self.target.tls else " (a TLS server? try --tls)"
                raise ConnectFailed(f"{self.target} closed the connection before "
                                    f"answering{hint}")
            update = self._decode(line)
            if isinstance(update, p.Welcome):
                return update
            if isinstance(update, p.Error):
                raise Refused(update)
            if isinstance(update, p.ServerPing):
                writer.write(p.encode_event(p.Pong()))

    def _decode(self, line: bytes) -> p.Update | None:
        try:
            return p.decode_update(line)
        except (ValueError, p.ProtocolError):
            return None  # a garbled line is skipped, like an unknown one

    # ------------------------------------------------------------------ running

    async def _run(self) -> None:
        reason: str | None = None
        try:
            while True:
                self._after_welcome(reconnected=reason is not None)
                reason = await self._read_until_lost()
                self._drop_connection()
                if self._closing or reason is None:
                    break
                if not self.reconnect or self._final:
                    break
                if not await self._reconnect(reason):
                    return
        except Exception as exc:  # a bug must end the session visibly, not hang it
            reason = f"internal error: {exc!r}"
            self._drop_connection()
        self._events.put_nowait(Gone(None if self._closing else reason, removed=self._final))

    async def _reconnect(self, reason: str) -> bool:
        attempt = 0
        reached = False
        lost_at = time.monotonic()
        while True:
            attempt += 1
            delay = self.backoff.delay(attempt, self.draw, reached)
            self._events.put_nowait(Lost(reason, delay, attempt))
            await asyncio.sleep(delay)
            if self._closing:
                self._events.put_nowait(Gone(None))
                return False
            try:
                welcome = await self._handshake(resume=True)
            except Refused as exc:
                if exc.error.code in FATAL_CODES:
                    removed = exc.error.code in FINAL_CODES
                    said = words.words(exc.error, joining=True) if removed else str(exc)
                    self._events.put_nowait(Gone(said, removed=removed))
                    return False
                reason, reached = str(exc), True
            except ConnectFailed as exc:
                reason, reached = str(exc), exc.reached
            else:
                self._events.put_nowait(Reconnected(welcome, time.monotonic() - lost_at))
                return True

    def _after_welcome(self, reconnected: bool) -> None:
        """Start a connection's life: fence a replay, or fetch what a restart lost."""
        welcome = self.welcome
        assert welcome is not None
        if not reconnected:
            self._pump()
        elif welcome.resumed:
            self._fence = True
            self.send(p.Ping())
        elif self.last_id is not None:
            self._catchup = _CatchUp(self.last_id)
            self.send(p.Ping())
        else:
            # No line seen yet to fetch from: whether any were missed cannot be told.
            self._emit(CaughtUp(0, known=False))
            self._pump()

    async def _read_until_lost(self) -> str | None:
        """Handle lines until the connection ends; the reason, None if it closed cleanly."""
        reader = self._reader
        assert reader is not None
        idle = False
        while True:
            try:
                line = await asyncio.wait_for(
                    reader.readline(), self.keepalive_timeout if idle else self.keepalive)
            except TimeoutError:
                if idle:
                    return "the server stopped answering"
                idle = True
                self.send(p.Ping())  # any line back proves the connection alive
                continue
            except (OSError, ValueError) as exc:  # ValueError: a line over LINE_LIMIT
                return describe(exc, self.target)
            idle = False
            if not line.endswith(b"\n"):
                if self._closing:
                    return None
                return self._farewell or "the server closed the connection"
            update = self._decode(line)
            if update is not None:
                self._handle(update)

    def _drop_connection(self) -> None:
        self.connected = False
        self._stop_ack_timer()
        if self._in_flight and isinstance(self._outbox[0], Outgoing):
            self._doubt = self._outbox[0]
        self._in_flight = False
        self._farewell = None
        self._fence = False
        self._catchup = None
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    # ------------------------------------------------------------------ updates

    def _handle(self, update: p.Update) -> None:
        if isinstance(update, p.ServerPing):
            self.send(p.Pong())
        elif isinstance(update, p.ServerPong):
            self._pong()
        elif isinstance(update, p.Ack):
            self._track(update.id)
            self._ack(update)
        elif isinstance(update, p.Error) and update.ref is not None and self._owns(update.ref):
            self._refused(update)
        elif (isinstance(update, p.Error) and update.ref is None and self._in_flight
              and update.code in (p.ErrorCode.RATE_LIMITED, p.ErrorCode.LINE_TOO_LONG)):
            # chatd drops a line over the flood limit, or over its length limit, before
            # reading it, so the error has no ref; with one line in flight it is almost
            # surely that one. (If the ack comes after all, it wins and nothing is sent
            # twice.)
            head = self._outbox[0]
            assert isinstance(head, Outgoing)
            self._refused(dataclasses.replace(update, ref=head.ref))
        elif self._catchup is not None and isinstance(update, (*CHAT_UPDATES, p.HistoryEnd)):
            self._catching_up(self._catchup, update)
        elif isinstance(update, CHAT_UPDATES):
            if self._own_private_echo(update):
                # A line to oneself comes back as a private line, then its ack: the ack
                # shows it (Confirmed), so the echo is not shown a second time.
                self._seen.add(update.id, update.time)
            elif isinstance(update, p.Chat) and update.history:
                # Join history is shown even when seen before (coming back to a room).
                self._seen.add(update.id, update.time)
                self._emit(update)
            else:
                self._track(update.id)
                self._live(update)
        elif isinstance(update, p.Error) and update.code in CLOSING_CODES:
            # Said once, as the reason the connection ended (Lost or Gone), in words.
            self._final = update.code in FINAL_CODES
            self._farewell = (words.words(update) if self._final
                              else words.explain(update))
        else:
            if isinstance(update, p.Shutdown):
                self._farewell = "the server shut down"
            self._emit(update)

    def _live(self, update: p.Update) -> None:
        assert isinstance(update, CHAT_UPDATES)
        if update.id and not self._seen.add(update.id, update.time):
            return
        if isinstance(update, p.Joined) and update.name == self.name:
            self.room = update.room
        elif isinstance(update, p.Renamed) and update.old == self.name:
            self.name = update.name
        self._emit(update)

    def _own_private_echo(self, update: p.Update) -> bool:
        if not (isinstance(update, p.Chat) and update.to is not None
                and update.name == self.name and update.to == self.name):
            return False
        head = self._outbox[0] if self._in_flight else None
        return isinstance(head, Outgoing) and head.text == update.message

    def _track(self, id: str) -> None:
        if id:
            self.last_id = id

    def _emit(self, event: SessionEvent) -> None:
        self._events.put_nowait(event)

    def _pong(self) -> None:
        if self._fence:  # the replay of a resume is complete
            self._fence = False
            self._pump()
        elif self._catchup is not None and not self._catchup.fenced:
            self._catchup.fenced = True
            self.send(p.History(after=self._catchup.after, limit=p.HISTORY_PAGE_MAX))

    def _catching_up(self, state: _CatchUp, update: p.Update) -> None:
        if isinstance(update, p.HistoryEnd):
            if not state.fenced:
                return  # the end of the join history
            if update.more and state.pages:
                self.send(p.History(after=state.pages[-1].id, limit=p.HISTORY_PAGE_MAX))
            else:
                self._caught_up(state)
        elif isinstance(update, p.Chat) and update.history:
            (state.pages if state.fenced else state.joined).append(update)
        else:
            state.live.append(update)

    def _caught_up(self, state: _CatchUp) -> None:
        self._catchup = None
        shown = 0
        # "Nothing missed" is known only if the server's history reaches back to lines
        # this client saw: a server restarted without its history cannot tell.
        known = bool(state.pages) or any((chat.id, chat.time) in self._seen
                                         for chat in state.joined if isinstance(chat, p.Chat))
        doubt, self._doubt = self._doubt, None
        for chat in state.pages:
            self._track(chat.id)
            if (doubt is not None and chat.name == self.name and chat.message == doubt.text
                    and doubt.to is None):
                # The line in doubt made it before the restart: its ack was lost.
                self._outbox.remove(doubt)
                self._seen.add(chat.id, chat.time)
                self._emit(Confirmed(doubt, chat.id, chat.time))
                doubt = None
            elif self._seen.add(chat.id, chat.time):
                shown += 1
                self._emit(chat)
        for update in state.joined:
            assert isinstance(update, p.Chat)
            if self._seen.add(update.id, update.time):
                shown += 1
                self._emit(update)
        self._emit(CaughtUp(shown, known))
        for update in state.live:
            assert isinstance(update, CHAT_UPDATES)
            self._track(update.id)
            self._live(update)
        self._pump()

    # ------------------------------------------------------------------ own lines

    def _owns(self, ref: str) -> bool:
        return any(line.ref == ref for line in self.pending)

    def _pump(self) -> None:
        while (self._outbox and not self._in_flight and self.connected and not self._fence
               and self._catchup is None and self._hold is None):
            head = self._outbox[0]
            if isinstance(head, Outgoing):
                if self.send(p.Message(head.text, to=head.to, ref=head.ref)):
                    self._in_flight = True
                    self._ack_timer = asyncio.get_running_loop().call_later(
                        self.ack_timeout, self._no_answer)
                return
            if not self.send(head):
                return
            self._outbox.popleft()
        self._check_idle()

    def _ack(self, ack: p.Ack) -> None:
        # An echo of this line that comes later (a private line to oneself) is not new.
        self._seen.add(ack.id, ack.time)
        late = self._given_up.pop(ack.ref, None)
        if late is not None:
            self._emit(Confirmed(late, ack.id, ack.time, late=True))
            return
        for line in self.pending:
            if line.ref == ack.ref:
                self._outbox.remove(line)
                self._in_flight = False
                self._stop_ack_timer()
                self._emit(Confirmed(line, ack.id, ack.time))
                self._pump()
                return

    def _stop_ack_timer(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None

    def _no_answer(self) -> None:
        """The line in flight got no answer in time: report it and let the next one go."""
        self._ack_timer = None
        if not (self._in_flight and self._outbox and isinstance(self._outbox[0], Outgoing)):
            return
        line = self._outbox.popleft()
        assert isinstance(line, Outgoing)
        self._in_flight = False
        self._given_up[line.ref] = line
        while len(self._given_up) > LATE_ACKS_KEPT:
            del self._given_up[next(iter(self._given_up))]
        self._emit(Failed(line, p.Error(NO_ANSWER, f"no answer from the server in "
                                                   f"{self.ack_timeout:g}s", line.ref)))
        self._pump()

    def _refused(self, error: p.Error) -> None:
        line = next(line for line in self.pending if line.ref == error.ref)
        self._in_flight = False
        self._stop_ack_timer()
        if error.code == p.ErrorCode.RATE_LIMITED:
            delay = 1.0
            self._emit(Throttled(line, delay))
            self._hold = asyncio.get_running_loop().call_later(delay, self._release)
            return
        self._outbox.remove(line)
        self._emit(Failed(line, error))
        self._pump()

    def _release(self) -> None:
        self._hold = None
        self._pump()

    def _check_idle(self) -> None:
        if not self._outbox:
            self._idle.set()
