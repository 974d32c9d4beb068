"""The client session's protocol, sans-I/O: one logical chat session over as many
connections as it takes (the shell, chatc.connection, moves the bytes).

A `Session` is fed what happens (a line received, a welcome, a connection lost, an
attempt failed, the user's lines and commands, the clock) and answers with ordered
actions (chatc.actions): `Send` a line, `Show` an event, `Reconnect` after some seconds,
`Drop` the connection. Time is an argument (`now`, any monotonic clock in seconds);
`deadline` says when `tick(now)` is due next. Its parts own their state: chatc.ownlines
(own lines and commands on their way), chatc.reconnect (whether and when to connect
again), chatc.resync (getting back in step after a reconnect), chatc.keepalive.

Own lines carry a `ref` and are sent one at a time (chatc.ownlines): a line the server
does not answer within `ack_timeout` is reported `Failed` with NO_ANSWER, and a late ack
still confirms it. A line longer than the server takes is refused here (`TooLong`)
before it is queued. Commands (join, who, ...) wait in the same queue, so a script's
"/join dev" takes effect between the lines before and after it. That keeps everything in
order across reconnects and flood control, and makes "was it delivered?" answerable
after a drop (at most one line is in doubt).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from chatc.actions import Action, Actions, Drop, Send
from chatc.catchup import CHAT_UPDATES
from chatc.events import (
    Confirmed,
    Failed,
    Outgoing,
    Reconnected,
    Throttled,
)
from chatc.keepalive import Keepalive
from chatc.ownlines import OwnLines, message
from chatc.reconnect import CLOSING_CODES, Backoff, Reconnects
from chatc.resync import Resync
from chatd import protocol as p

# chatc's own code for a line the server did not answer in time (not a server code).
NO_ANSWER = "no_answer"
FLOOD_PAUSE = 1.0  # seconds before a line flood control dropped is sent again


def decode(line: bytes) -> p.Update | None:
    """A server line; None if garbled (skipped, like an unknown one)."""
    try:
        return p.decode_update(line)
    except (ValueError, p.ProtocolError):
        return None


def greeting(line: bytes) -> p.Welcome | p.Error | Send | None:
    """A line before the welcome: the welcome, the server's refusal, a line to answer
    it with (a ping's pong), or None: nothing to do."""
    update = decode(line)
    if isinstance(update, (p.Welcome, p.Error)):
        return update
    if isinstance(update, p.ServerPing):
        return Send(p.Pong())
    return None


class TooLong(ValueError):
    """An own line longer than the server takes: `size` bytes as sent, over `limit`."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, over the limit of {limit}")
        self.size = size
        self.limit = limit


class Session:
    """One chat session's protocol state; every input returns the actions to take."""

    def __init__(
        self,
        name: str | None,
        *,
        room: str | None = None,
        password: str | None = None,
        login: str | None = None,
        login_token: str | None = None,
        reconnect: bool = False,
        backoff: Backoff | None = None,
        draw: Callable[[], float] | None = None,
        keepalive: float = 30.0,
        keepalive_timeout: float = 15.0,
        ack_timeout: float = 10.0,
        refs: Iterator[str] | None = None,
    ) -> None:
        self.name = name  # asked for; the assigned one once joined
        self.room = room
        self.password = password
        # An account's password (PROTOCOL.txt 18.3), kept only until the welcome gives a
        # login token; later connects send the token instead.
        self.login = login
        self.login_token = login_token
        self._actions = Actions()
        self._reconnects = Reconnects(self._actions, reconnect, backoff or Backoff(),
                                      draw or random.random)
        self._keepalive = Keepalive(keepalive, keepalive_timeout)
        self.welcome: p.Welcome | None = None
        self.connected = False
        self._token = ""
        self._lines = OwnLines(ack_timeout, refs)
        self._resync = Resync()

    # ------------------------------------------------------------------ queries

    @property
    def max_line_bytes(self) -> int:
        """The longest line the server takes (PROTOCOL.txt 8.1), as its welcome says."""
        announced = getattr(self.welcome, "max_line_bytes", 0)
        return announced if isinstance(announced, int) and announced > 0 \
            else p.DEFAULT_MAX_LINE_BYTES

    @property
    def pending(self) -> list[Outgoing]:
        """Own lines not acknowledged yet, oldest first."""
        return self._lines.pending

    @property
    def idle(self) -> bool:
        """Nothing queued: every own line was confirmed, refused or given up on."""
        return self._lines.idle

    @property
    def gone(self) -> bool:
        """The session is over (its `Gone` was shown)."""
        return self._reconnects.gone

    @property
    def last_id(self) -> str | None:
        """The id of the newest chat line seen: a resume or a catch-up starts after it."""
        return self._resync.last_id

    @property
    def ack_timeout(self) -> float:
        return self._lines.ack_timeout

    @property
    def deadline(self) -> float | None:
        """When `tick` is due next; None: nothing is waiting for the clock."""
        own = self._lines.deadline
        times = [] if own is None else [own]
        alive = self._keepalive.deadline
        if self.connected and alive is not None:
            times.append(alive)
        return min(times) if times else None

    def hello(self, resume: bool) -> p.Connect:
        """The first line of a connection; `resume`: ask to carry on this session."""
        token = self._token if resume else ""
        login = None if self.login_token else self.login
        return p.Connect(name=self.name, room=self.room, password=self.password,
                         resume=token or None, last_id=self.last_id if token else None,
                         login=login, login_token=self.login_token)

    # ------------------------------------------------------------------ user input

    def say(self, text: str, to: str | None, now: float, room: str | None = None
            ) -> tuple[Outgoing, list[Action]]:
        """Queue an own chat line (for `room`, or the server's current room); it is sent
        as soon as the connection allows.

        Raises TooLong, queueing nothing, if the line as sent (JSON, ref included) is
        longer than the server takes: the server would drop it unread.
        """
        line = self._lines.line(text, to, room)
        # The limit is on the whole line without its newline, as the server splits it.
        size = len(p.encode_event(message(line))) - 1
        if size > self.max_line_bytes:
            raise TooLong(size, self.max_line_bytes)
        self._lines.add(line)
        self._pump(now)
        return line, self._actions.take()

    def command(self, event: p.Event, now: float) -> list[Action]:
        """Queue a command (who, join, ...) behind the own lines queued before it."""
        if isinstance(event, p.Logout):
            # The server revokes the token and ends the session as a disconnect does:
            # reconnecting would only come back as a variant name.
            self.login_token = None
            self._reconnects.closing = True
        self._lines.add(event)
        self._pump(now)
        return self._actions.take()

    def close(self) -> list[Action]:
        """Leave politely: the shell waits (a little) for the server to close."""
        self._reconnects.closing = True
        self._lines.stop()
        if self.connected:
            self._actions.send(p.Disconnect())
        else:
            self._reconnects.end(None)
        return self._actions.take()

    def closed(self) -> list[Action]:
        """The shell stopped waiting for the server: the session is over."""
        self._lose()
        self._reconnects.end(None)
        return self._actions.take()

    def crashed(self, what: str) -> list[Action]:
        """A bug in the shell: end the session visibly rather than hang it."""
        self._lose()
        self._reconnects.end(f"internal error: {what}")
        return self._actions.take()

    # ------------------------------------------------------------------ connections

    def welcomed(self, welcome: p.Welcome, now: float) -> list[Action]:
        """A connection's welcome: fence a replay, or fetch what a restart lost."""
        away = self._reconnects.back(now)
        self.connected = True
        self.welcome = welcome
        self.name, self.room = welcome.name, welcome.room
        if welcome.resume:
            self._token = welcome.resume
        if welcome.login_token:
            self.login_token, self.login = welcome.login_token, None
        self._keepalive.heard(now)
        if away is not None:
            self._actions.show(Reconnected(welcome, away))
            first = self._resync.welcomed(welcome.resumed)
            if isinstance(first, p.Ping):
                self._actions.send(first)
                return self._actions.take()
            self._actions.show(first)
        self._pump(now)
        return self._actions.take()

    def connection_lost(self, error: str | None, now: float) -> list[Action]:
        """The connection ended: `error` says why, None if the server closed it."""
        self._lose()
        self._reconnects.lost(error, now)
        return self._actions.take()

    def attempt_failed(self, reason: str, reached: bool, now: float) -> list[Action]:
        """A reconnect attempt did not get a welcome; `reached`: something answered."""
        self._reconnects.failed(reason, reached)
        return self._actions.take()

    def attempt_refused(self, error: p.Error, now: float) -> list[Action]:
        """The server answered a reconnect attempt's connect line with an error."""
        if error.code == p.ErrorCode.LOGIN_FAILED and not self._reconnects.closing:
            self.login_token = None  # revoked meanwhile: forgotten
        self._reconnects.refused(error)
        return self._actions.take()

    def _lose(self) -> None:
        self._resync.lost(self._lines.lost())
        self.connected = False

    # ------------------------------------------------------------------ the clock

    def tick(self, now: float) -> list[Action]:
        """Act on whatever came due by `now`."""
        given_up = self._lines.expired(now)
        if given_up is not None:
            self._actions.show(Failed(given_up, p.Error(
                NO_ANSWER, f"no answer from the server in {self.ack_timeout:g}s",
                given_up.ref)))
        if given_up is not None or self._lines.released(now):
            self._pump(now)
        due = self._keepalive.due(now) if self.connected else None
        if due == "ping":
            self._actions.send(p.Ping())  # any line back proves the connection alive
        elif due == "dead":
            self._actions.add(Drop("the server stopped answering"))
        return self._actions.take()

    # ------------------------------------------------------------------ server lines

    def receive_line(self, line: bytes, now: float) -> list[Action]:
        """One whole line from the server (its newline included)."""
        self._keepalive.heard(now)
        update = decode(line)
        if update is not None:
            self._handle(update, now)
        return self._actions.take()

    def _handle(self, update: p.Update, now: float) -> None:
        if isinstance(update, p.ServerPing):
            self._actions.send(p.Pong())
        elif isinstance(update, p.ServerPong):
            self._pong(now)
        elif isinstance(update, p.Ack):
            self._resync.track(update.id)
            self._ack(update, now)
        elif (isinstance(update, p.Error)
              and (refusal := self._lines.refusal(update)) is not None):
            self._refused(refusal, now)
        elif (self._resync.catchup is not None
              and isinstance(update, (*CHAT_UPDATES, p.HistoryEnd))):
            self._catching_up(update, now)
        elif isinstance(update, CHAT_UPDATES):
            if self._lines.echoes(update, self.name):
                # A line to oneself comes back as a private line, then its ack: the ack
                # shows it (Confirmed), so the echo is not shown a second time.
                self._resync.seen.add(update.id, update.time)
            elif isinstance(update, p.Chat) and update.history:
                # Join history is shown even when seen before (coming back to a room).
                self._resync.seen.add(update.id, update.time)
                self._actions.show(update)
            else:
                self._live(update)
        elif isinstance(update, p.AccountNote) and update.login_token:
            # Registered here: logged in, with a token to come back with (18.2, 18.3)
            self.login_token, self.login = update.login_token, None
            self._actions.show(update)
        elif isinstance(update, p.Error) and update.code in CLOSING_CODES:
            # Said once, as the reason the connection ended (Lost or Gone), in words.
            self._reconnects.warned(update)
        else:
            if isinstance(update, p.Shutdown):
                self._reconnects.shut_down()
            self._actions.show(update)

    def _live(self, update: p.Update) -> None:
        if not self._resync.fresh(update):
            return
        if isinstance(update, p.Joined) and update.name == self.name:
            self.room = update.room
        elif isinstance(update, p.Renamed) and update.old == self.name:
            self.name = update.name
        self._actions.show(update)

    def _pong(self, now: float) -> None:
        got = self._resync.pong()
        if isinstance(got, p.History):
            self._actions.send(got)
        elif got:  # the replay of a resume is complete
            self._pump(now)

    def _catching_up(self, update: p.Update, now: float) -> None:
        assert self._resync.catchup is not None
        got = self._resync.catchup.receive(update)
        if isinstance(got, p.History):
            self._actions.send(got)
        elif got:
            shown, settled, live = self._resync.caught_up(self._lines.pending, self.name)
            if settled is not None:
                self._lines.settled(settled)
            for event in shown:
                self._actions.show(event)
            for each in live:
                self._live(each)
            self._pump(now)

    # ------------------------------------------------------------------ own lines

    def _pump(self, now: float) -> None:
        if self.connected and not self._resync.holding:
            for event in self._lines.take(now):
                self._actions.send(event)

    def _ack(self, ack: p.Ack, now: float) -> None:
        # An echo of this line that comes later (a private line to oneself) is not new.
        self._resync.seen.add(ack.id, ack.time)
        answered = self._lines.acked(ack.ref)
        if answered is not None:
            line, late = answered
            self._actions.show(Confirmed(line, ack.id, ack.time, late=late))
            if not late:
                self._pump(now)

    def _refused(self, error: p.Error, now: float) -> None:
        assert error.ref is not None
        throttled = error.code == p.ErrorCode.RATE_LIMITED
        line = self._lines.refused(error.ref, now, FLOOD_PAUSE if throttled else None)
        if throttled:
            self._actions.show(Throttled(line, FLOOD_PAUSE))
        else:
            self._actions.show(Failed(line, error))
            self._pump(now)
