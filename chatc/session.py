"""The client session's protocol, sans-I/O: one logical chat session over as many
connections as it takes (the shell, chatc.connection, moves the bytes).

A `Session` is fed what happens (a line received, a welcome, a connection lost, an
attempt failed, the user's lines and commands, the clock) and answers with ordered
actions: `Send` a line, `Show` an event, `Reconnect` after some seconds, `Drop` the
connection. Time is an argument (`now`, any monotonic clock in seconds); `deadline`
says when `tick(now)` is due next. Its parts own their state: chatc.ownlines (own lines
and commands on their way), chatc.catchup (what a restart lost), chatc.keepalive.

Own lines carry a `ref` and are sent one at a time (chatc.ownlines): a line the server
does not answer within `ack_timeout` is reported `Failed` with NO_ANSWER, and a late ack
still confirms it. A line longer than the server takes is refused here (`TooLong`)
before it is queued. Commands (join, who, ...) wait in the same queue, so a script's
"/join dev" takes effect between the lines before and after it. That keeps everything in
order across reconnects and flood control, and makes "was it delivered?" answerable
after a drop (at most one line is in doubt).

Reconnecting (PROTOCOL.txt section 10): a resumed welcome is followed by the missed
lines and acks; a ping after it works as a fence, because the server answers lines in
order, so its pong means the replay is over and an unacknowledged line was lost and
must be sent again. A welcome that did not resume (the server restarted) is followed
by history pages after the last id this client saw, merged with the join history and
the live lines that arrive meanwhile, de-duplicated by id and time.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

from chatc import words
from chatc.catchup import CHAT_UPDATES, CatchUp, Seen
from chatc.events import (
    EXIT_REMOVED,
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
from chatc.keepalive import Keepalive
from chatc.ownlines import OwnLines, message
from chatd import protocol as p

# chatc's own code for a line the server did not answer in time (not a server code).
NO_ANSWER = "no_answer"
FLOOD_PAUSE = 1.0  # seconds before a line flood control dropped is sent again
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


def refused_status(error: p.Error) -> int:
    """chatc's exit status when the server refuses to let it join."""
    return EXIT_REMOVED if error.code == p.ErrorCode.BANNED else 1


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Write this line on the current connection."""

    event: p.Event


@dataclass(frozen=True, slots=True)
class Show:
    """Report this to the user; `Gone` is the last one."""

    event: SessionEvent


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Connect again (`Session.hello(resume=True)`) after `after` seconds."""

    after: float


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the current connection: it is dead (`reason`); report its loss back."""

    reason: str


Action: TypeAlias = Send | Show | Reconnect | Drop


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


class TooLong(ValueError):
    """An own line longer than the server takes: `size` bytes as sent, over `limit`."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, over the limit of {limit}")
        self.size = size
        self.limit = limit


@dataclass(slots=True)
class _Away:
    """Between a lost connection and the next welcome."""

    since: float
    attempt: int = 0
    reached: bool = False


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
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.draw = draw or random.random
        self._keepalive = Keepalive(keepalive, keepalive_timeout)
        self.welcome: p.Welcome | None = None
        self.connected = False
        self.last_id: str | None = None
        self._token = ""
        self._lines = OwnLines(ack_timeout, refs)
        self._doubt: Outgoing | None = None  # in flight when the last connection broke
        self._fence = False  # waiting for the pong that ends a replay
        self._catchup: CatchUp | None = None
        self._seen = Seen()
        self._closing = False
        self._farewell: str | None = None  # why the server is about to close the connection
        self._final = False  # removed by an operator: no reconnecting
        self._away: _Away | None = None
        self.gone = False
        self._actions: list[Action] = []

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
        return line, self._take()

    def command(self, event: p.Event, now: float) -> list[Action]:
        """Queue a command (who, join, ...) behind the own lines queued before it."""
        if isinstance(event, p.Logout):
            # The server revokes the token and ends the session as a disconnect does:
            # reconnecting would only come back as a variant name.
            self.login_token = None
            self._closing = True
        self._lines.add(event)
        self._pump(now)
        return self._take()

    def close(self) -> list[Action]:
        """Leave politely: the shell waits (a little) for the server to close."""
        self._closing = True
        self._lines.stop()
        if self.connected:
            self._send(p.Disconnect())
        else:
            self._end(None)
        return self._take()

    def closed(self) -> list[Action]:
        """The shell stopped waiting for the server: the session is over."""
        self._lose()
        self._end(None)
        return self._take()

    def crashed(self, what: str) -> list[Action]:
        """A bug in the shell: end the session visibly rather than hang it."""
        self._lose()
        self._end(f"internal error: {what}")
        return self._take()

    # ------------------------------------------------------------------ connections

    def welcomed(self, welcome: p.Welcome, now: float) -> list[Action]:
        """A connection's welcome: fence a replay, or fetch what a restart lost."""
        away, self._away = self._away, None
        self.connected = True
        self.welcome = welcome
        self.name, self.room = welcome.name, welcome.room
        if welcome.resume:
            self._token = welcome.resume
        if welcome.login_token:
            self.login_token, self.login = welcome.login_token, None
        self._keepalive.heard(now)
        if away is None:
            self._pump(now)
            return self._take()
        self._show(Reconnected(welcome, now - away.since))
        if welcome.resumed:
            self._doubt = None  # the replay settles it: its ack comes, or it is sent again
            self._fence = True
            self._send(p.Ping())
        elif self.last_id is not None:
            self._catchup = CatchUp(self.last_id)
            self._send(p.Ping())
        else:
            # No line seen yet to fetch from: whether any were missed cannot be told.
            self._show(CaughtUp(0, known=False))
            self._pump(now)
        return self._take()

    def connection_lost(self, error: str | None, now: float) -> list[Action]:
        """The connection ended: `error` says why, None if the server closed it."""
        farewell = self._farewell
        self._lose()
        if self._closing:
            self._end(None)
        else:
            reason = error or farewell or "the server closed the connection"
            if self.reconnect and not self._final:
                self._away = _Away(now)
                self._retry(reason)
            else:
                self._end(reason, removed=self._final)
        return self._take()

    def attempt_failed(self, reason: str, reached: bool, now: float) -> list[Action]:
        """A reconnect attempt did not get a welcome; `reached`: something answered."""
        if self._closing:
            self._end(None)
        else:
            assert self._away is not None
            self._away.reached = reached
            self._retry(reason)
        return self._take()

    def attempt_refused(self, error: p.Error, now: float) -> list[Action]:
        """The server answered a reconnect attempt's connect line with an error."""
        if self._closing:
            self._end(None)
        elif error.code == p.ErrorCode.LOGIN_FAILED:
            # The token was revoked meanwhile (a password change, /logout elsewhere).
            self.login_token = None
            self._end(f"{words.explain(error, joining=True)}; the saved login was "
                      "forgotten: start chatc again with --login")
        elif error.code in FATAL_CODES:
            removed = error.code in FINAL_CODES
            said = (words.words(error, joining=True) if removed
                    else words.explain(error, joining=True))
            self._end(said, removed=removed)
        else:
            assert self._away is not None
            self._away.reached = True
            self._retry(words.explain(error, joining=True))
        return self._take()

    def _retry(self, reason: str) -> None:
        away = self._away
        assert away is not None
        away.attempt += 1
        delay = self.backoff.delay(away.attempt, self.draw, away.reached)
        self._show(Lost(reason, delay, away.attempt))
        self._actions.append(Reconnect(delay))

    def _lose(self) -> None:
        self._doubt = self._lines.lost() or self._doubt
        self.connected = False
        self._farewell = None
        self._fence = False
        self._catchup = None

    def _end(self, reason: str | None, removed: bool = False) -> None:
        if not self.gone:
            self.gone = True
            self._away = None
            self._show(Gone(reason, removed=removed))

    # ------------------------------------------------------------------ the clock

    def tick(self, now: float) -> list[Action]:
        """Act on whatever came due by `now`."""
        given_up = self._lines.expired(now)
        if given_up is not None:
            self._show(Failed(given_up, p.Error(
                NO_ANSWER, f"no answer from the server in {self.ack_timeout:g}s",
                given_up.ref)))
        if given_up is not None or self._lines.released(now):
            self._pump(now)
        due = self._keepalive.due(now) if self.connected else None
        if due == "ping":
            self._send(p.Ping())  # any line back proves the connection alive
        elif due == "dead":
            self._actions.append(Drop("the server stopped answering"))
        return self._take()

    # ------------------------------------------------------------------ server lines

    def receive_line(self, line: bytes, now: float) -> list[Action]:
        """One whole line from the server (its newline included)."""
        self._keepalive.heard(now)
        update = decode(line)
        if update is not None:
            self._handle(update, now)
        return self._take()

    def _handle(self, update: p.Update, now: float) -> None:
        if isinstance(update, p.ServerPing):
            self._send(p.Pong())
        elif isinstance(update, p.ServerPong):
            self._pong(now)
        elif isinstance(update, p.Ack):
            self._track(update.id)
            self._ack(update, now)
        elif (isinstance(update, p.Error) and update.ref is not None
              and self._lines.owns(update.ref)):
            self._refused(update, now)
        elif (isinstance(update, p.Error) and update.ref is None
              and self._lines.in_flight is not None
              and update.code in (p.ErrorCode.RATE_LIMITED, p.ErrorCode.LINE_TOO_LONG)):
            # chatd drops a line over the flood limit, or over its length limit, before
            # reading it, so the error has no ref; with one line in flight it is almost
            # surely that one. (If the ack comes after all, it wins and nothing is sent
            # twice.)
            head = self._lines.in_flight
            self._refused(dataclasses.replace(update, ref=head.ref), now)
        elif self._catchup is not None and isinstance(update, (*CHAT_UPDATES, p.HistoryEnd)):
            self._catching_up(self._catchup, update, now)
        elif isinstance(update, CHAT_UPDATES):
            if self._own_private_echo(update):
                # A line to oneself comes back as a private line, then its ack: the ack
                # shows it (Confirmed), so the echo is not shown a second time.
                self._seen.add(update.id, update.time)
            elif isinstance(update, p.Chat) and update.history:
                # Join history is shown even when seen before (coming back to a room).
                self._seen.add(update.id, update.time)
                self._show(update)
            else:
                self._track(update.id)
                self._live(update)
        elif isinstance(update, p.AccountNote) and update.login_token:
            # Registered here: logged in, with a token to come back with (18.2, 18.3)
            self.login_token, self.login = update.login_token, None
            self._show(update)
        elif isinstance(update, p.Error) and update.code in CLOSING_CODES:
            # Said once, as the reason the connection ended (Lost or Gone), in words.
            self._final = update.code in FINAL_CODES
            self._farewell = (words.words(update) if self._final
                              else words.explain(update))
        else:
            if isinstance(update, p.Shutdown):
                self._farewell = "the server shut down"
            self._show(update)

    def _live(self, update: p.Update) -> None:
        assert isinstance(update, CHAT_UPDATES)
        if update.id and not self._seen.add(update.id, update.time):
            return
        if isinstance(update, p.Joined) and update.name == self.name:
            self.room = update.room
        elif isinstance(update, p.Renamed) and update.old == self.name:
            self.name = update.name
        self._show(update)

    def _own_private_echo(self, update: p.Update) -> bool:
        if not (isinstance(update, p.Chat) and update.to is not None
                and update.name == self.name and update.to == self.name):
            return False
        head = self._lines.in_flight
        return head is not None and head.text == update.message

    def _track(self, id: str) -> None:
        if id:
            self.last_id = id

    def _pong(self, now: float) -> None:
        if self._fence:  # the replay of a resume is complete
            self._fence = False
            self._pump(now)
        elif self._catchup is not None:
            page = self._catchup.fence()
            if page is not None:
                self._send(page)

    def _catching_up(self, state: CatchUp, update: p.Update, now: float) -> None:
        got = state.receive(update)
        if isinstance(got, p.History):
            self._send(got)
        elif got:
            self._caught_up(state, now)

    def _caught_up(self, state: CatchUp, now: float) -> None:
        self._catchup = None
        doubt, self._doubt = self._doubt, None
        if doubt is not None and doubt not in self._lines.pending:
            doubt = None  # settled meanwhile
        shown, confirmed = state.missed(self._seen, self.name, doubt)
        if doubt is not None and confirmed:
            self._lines.settled(doubt)
        for chat in state.pages:
            self._track(chat.id)
        for event in shown:
            self._show(event)
        for update in state.live:
            assert isinstance(update, CHAT_UPDATES)
            self._track(update.id)
            self._live(update)
        self._pump(now)

    # ------------------------------------------------------------------ own lines

    def _pump(self, now: float) -> None:
        if self.connected and not self._fence and self._catchup is None:
            for event in self._lines.take(now):
                self._send(event)

    def _ack(self, ack: p.Ack, now: float) -> None:
        # An echo of this line that comes later (a private line to oneself) is not new.
        self._seen.add(ack.id, ack.time)
        answered = self._lines.acked(ack.ref)
        if answered is not None:
            line, late = answered
            self._show(Confirmed(line, ack.id, ack.time, late=late))
            if not late:
                self._pump(now)

    def _refused(self, error: p.Error, now: float) -> None:
        assert error.ref is not None
        throttled = error.code == p.ErrorCode.RATE_LIMITED
        line = self._lines.refused(error.ref, now, FLOOD_PAUSE if throttled else None)
        if throttled:
            self._show(Throttled(line, FLOOD_PAUSE))
        else:
            self._show(Failed(line, error))
            self._pump(now)

    # ------------------------------------------------------------------ output

    def _send(self, event: p.Event) -> None:
        self._actions.append(Send(event))

    def _show(self, event: SessionEvent) -> None:
        self._actions.append(Show(event))

    def _take(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions
