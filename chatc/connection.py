"""The asyncio shell of a chat session: sockets, TLS and timers; every decision is
chatc.session's (a sans-I/O `Session` fed lines, connections and the clock).

No terminal code. `Client.open()` joins; `Client.events()` yields the server's updates
(decoded by `chatd.protocol`) mixed with the session's own events (`chatc.events`:
`Confirmed`, `Lost`, `Reconnected`, ...), and ends with `Gone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from chatc import words
from chatc.actions import Action, Drop, Reconnect, Send, Show
from chatc.events import Gone, Outgoing, SessionEvent
from chatc.reconnect import Backoff
from chatc.session import Session, greeting
from chatd import protocol as p

LINE_LIMIT = 4 * 1024 * 1024  # a server line is at most one 64 KiB message plus JSON


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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


class Client:
    """One chat session over as many TCP connections as it takes."""

    def __init__(
        self,
        target: Target,
        name: str | None,
        *,
        room: str | None = None,
        password: str | None = None,
        login: str | None = None,
        login_token: str | None = None,
        on_token: Callable[[str | None], None] | None = None,
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
        self.session = Session(name, room=room, password=password, login=login,
                               login_token=login_token, reconnect=reconnect,
                               backoff=backoff, draw=draw, keepalive=keepalive,
                               keepalive_timeout=keepalive_timeout, ack_timeout=ack_timeout)
        self.connect_timeout = connect_timeout
        # Told whenever the session's login token changes (a new one, or forgotten).
        self._on_token = on_token
        self._token = login_token
        self.close_timeout = close_timeout
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # for session.deadline
        self._retry_in: float | None = None  # the session asked to reconnect
        self._dropped: str | None = None  # why the session dropped the connection
        self._idle = asyncio.Event()  # set while nothing is queued
        self._idle.set()

    # ------------------------------------------------------------------ public

    @property
    def name(self) -> str | None:
        return self.session.name

    def follow(self, room: str | None) -> None:
        """The server's current room as the shell follows it (chatc.windows): a new
        session after a restart starts there."""
        if room is not None:
            self.session.room = room

    @property
    def welcome(self) -> p.Welcome | None:
        return self.session.welcome

    @property
    def max_line_bytes(self) -> int:
        return self.session.max_line_bytes

    @property
    def pending(self) -> list[Outgoing]:
        """Own lines not acknowledged yet, oldest first."""
        return self.session.pending

    async def open(self) -> p.Welcome:
        """Connect and join; raises ConnectFailed (Refused for a server's no)."""
        reader, writer, welcome = await self._handshake(resume=False)
        self._reader, self._writer = reader, writer
        self._apply(self.session.welcomed(welcome, self._now()))
        self._task = asyncio.create_task(self._run(), name="chatc-session")
        return welcome

    async def events(self) -> AsyncIterator[SessionEvent]:
        """Everything that happens, in order; the last event is `Gone`."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Gone):
                return

    def say(self, text: str, to: str | None = None, room: str | None = None) -> Outgoing:
        """Queue an own chat line (raises session.TooLong, queueing nothing)."""
        line, actions = self.session.say(text, to, self._now(), room)
        self._apply(actions)
        return line

    def command(self, event: p.Event) -> None:
        """Queue a command (who, join, ...) behind the own lines queued before it."""
        self._apply(self.session.command(event, self._now()))

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
        if self._task is None:
            return
        connected = self.session.connected
        self._apply(self.session.close())
        if connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.close_timeout)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._disconnect()
            self._apply(self.session.closed())

    # ------------------------------------------------------------------ actions

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if self._writer is not None and not self._writer.is_closing():
                    self._writer.write(p.encode_event(action.event))
            elif isinstance(action, Show):
                self._events.put_nowait(action.event)
            elif isinstance(action, Reconnect):
                self._retry_in = action.after
            elif isinstance(action, Drop):
                self._dropped = action.reason
                if self._writer is not None:
                    self._writer.close()  # the reader sees the end next
        if self.session.login_token != self._token:
            self._token = self.session.login_token
            if self._on_token is not None:
                self._on_token(self._token)
        if self.session.idle:
            self._idle.set()
        else:
            self._idle.clear()
        self._schedule()

    def _schedule(self) -> None:
        deadline = None if self.session.gone else self.session.deadline
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        # A timer due no later stays: every line received moves the keepalive deadline,
        # and one early tick that finds nothing due is cheaper than a timer per line.
        if self._timer is not None and self._timer.when() <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(deadline, self._tick, deadline)

    def _tick(self, due: float) -> None:
        self._timer = None
        # The loop may run a timer up to its clock resolution early.
        self._apply(self.session.tick(max(self._now(), due)))

    # ------------------------------------------------------------------ running

    async def _run(self) -> None:
        try:
            while not self.session.gone:
                if self._reader is not None:
                    error = await self._read(self._reader)
                    self._disconnect()
                    self._apply(self.session.connection_lost(error, self._now()))
                elif self._retry_in is not None:
                    delay, self._retry_in = self._retry_in, None
                    await asyncio.sleep(delay)
                    await self._attempt()
                else:
                    raise RuntimeError("the session neither reads nor reconnects")
        except Exception as exc:  # a bug must end the session visibly, not hang it
            self._disconnect()
            self._apply(self.session.crashed(repr(exc)))

    async def _read(self, reader: asyncio.StreamReader) -> str | None:
        """Feed lines to the session until the connection ends; why it did, None for
        the server closing it."""
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError) as exc:  # ValueError: a line over LINE_LIMIT
                return self._dropped or describe(exc, self.target)
            if not line.endswith(b"\n"):
                return self._dropped
            self._apply(self.session.receive_line(line, self._now()))

    async def _attempt(self) -> None:
        try:
            reader, writer, welcome = await self._handshake(resume=True)
        except Refused as exc:
            self._apply(self.session.attempt_refused(exc.error, self._now()))
        except ConnectFailed as exc:
            self._apply(self.session.attempt_failed(str(exc), exc.reached, self._now()))
        else:
            self._reader, self._writer = reader, writer
            self._apply(self.session.welcomed(welcome, self._now()))

    def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._dropped = None

    # ------------------------------------------------------------------ connecting

    async def _handshake(self, resume: bool
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, p.Welcome]:
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
        try:
            writer.write(p.encode_event(self.session.hello(resume)))
            welcome = await asyncio.wait_for(self._await_welcome(reader, writer),
                                             self.connect_timeout)
        except BaseException as exc:
            writer.close()
            if isinstance(exc, (OSError, TimeoutError, ValueError)):
                raise ConnectFailed(describe(exc, self.target)) from None
            raise
        return reader, writer, welcome

    async def _await_welcome(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> p.Welcome:
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                hint = "" if self.target.tls else " (a TLS server? try --tls)"
                raise ConnectFailed(f"{self.target} closed the connection before "
                                    f"answering{hint}")
            got = greeting(line)
            if isinstance(got, p.Welcome):
                return got
            if isinstance(got, p.Error):
                raise Refused(got)
            if isinstance(got, Send):
                writer.write(p.encode_event(got.event))
