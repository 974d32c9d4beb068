"""One connection's protocol, sans I/O: bytes and a clock in, ordered actions out.

In the style of h11's Connection and the websockets library's protocol.py: a `Link`
never reads a clock or touches a socket. The shell (chatd.tcp for TCP, chatd.web for
WebSocket) feeds it what arrived with `receive_data` (a byte stream), `receive_message`
(one WebSocket message), `receive_eof`, and the time with `tick`; each call returns the
effects to carry out, in order, in the vocabulary the hub uses too (chatd.effects):
Send, Deliver, Leave, Close, Abort, Log and WrongPassword, each naming the link's
`peer` (the shell's connection object, opaque to the link).

A Link owns: framing and the line limit (PROTOCOL.txt 1.4, 8.1), mode detection (2.1),
the server's password (11.2), the lines that arrive while a connect is being decided
(the backlog: chatd.backlog, 8.8), flood control (8.3), and the registration and
keepalive deadlines (8.5). A text-mode link hands what is typed before joining to its `TextLogin`
(chatd.textlogin: the name, the password prompt, 6.1); the errors of dropped lines are
worded in chatd.dropped_line. What a connect leads to is the hub's decision: the shell
reports it back with `settle(joined)`, and the backlog goes on from there.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from enum import Enum
from typing import Final, Generic, cast

from chatd import protocol as p
from chatd.backlog import Backlog
from chatd.dropped_line import over_backlog, over_rate
from chatd.effects import Abort, Close, Deliver, Leave, Log, P, Send, WrongPassword
from chatd.effects import LinkOp as Action
from chatd.limits import ErrorLogThrottle, FloodGuard, Verdict
from chatd.protocol import LINE_TOO_LONG, ErrorCode, ProtocolError
from chatd.textlogin import (
    GREETING,
    GREETING_PASSWORD,
    PASSWORD_PROMPT,
    TextLogin,
    sent_privately,
)

COST_UNIT: Final = 16 * 1024  # reply bytes that cost one line's token (PROTOCOL.txt 8.3)
TLS_RECORD: Final = b"\x16"  # a TLS handshake record starts with this byte
INFINITY: Final = math.inf  # Link.due of a link with no deadline left


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Every limit of a connection, with the defaults a public server runs with."""

    max_line_bytes: int = p.DEFAULT_MAX_LINE_BYTES
    rate: float = 2.0  # lines a second; 0 turns flood control off (bytes too)
    burst: int = 10
    # Bytes a second (0: not counted) and at once. Chat at human speed is a few hundred
    # bytes a minute and a pasted 20 KB log fits the burst three times over, while a
    # flooder's 128 KiB a second of 64 KiB lines comes down to 4 KiB (8.3).
    byte_rate: float = 4096
    byte_burst: int = 64 * 1024
    password: str | None = None
    registration_timeout: float = 30.0
    greet_after: float = 1.0  # a silent new connection gets the text greeting; 0: never
    ping_interval: float = 25.0  # 0: no keepalive pings
    ping_timeout: float = 20.0
    # Bytes of lines held while a connect is being decided (8.8): two lines of the
    # largest size, so a client resending its unacknowledged lines at once is not cut.
    backlog_bytes: int = 2 * p.DEFAULT_MAX_LINE_BYTES


class Mode(Enum):
    UNKNOWN = "unknown"  # no line yet
    JSON = "json"
    TEXT = "text"


class Phase(Enum):
    NEW = "new"  # not joined
    JOINING = "joining"  # a connect went to the hub; lines wait in the backlog
    JOINED = "joined"
    CLOSED = "closed"  # nothing more is read


class Link(Generic[P]):
    __slots__ = (
        "peer", "config", "mode", "phase", "splitter", "guard", "errors", "backlog", "login",
        "opened_at", "last_seen", "pinged_at", "detect_tls", "greeted", "due",
    )

    def __init__(self, peer: P, config: LinkConfig, now: float, *,
                 mode: Mode = Mode.UNKNOWN, detect_tls: bool = False) -> None:
        self.peer = peer  # named in every effect, for the shell
        self.config = config
        self.mode = mode  # a WebSocket is JSON from the start (PROTOCOL.txt 13)
        self.phase = Phase.NEW
        self.splitter = p.LineSplitter(config.max_line_bytes)
        self.guard = FloodGuard(config.rate, config.burst, now, byte_rate=config.byte_rate,
                                byte_burst=config.byte_burst) if config.rate > 0 else None
        self.errors: ErrorLogThrottle | None = None  # made on the first error
        self.backlog: Backlog | None = None  # while a connect is being decided (8.8)
        self.login = self._text_login() if mode is Mode.TEXT else None
        self.opened_at = self.last_seen = now
        self.pinged_at: float | None = None  # when the unanswered ping went out
        self.detect_tls = detect_tls  # a plaintext TCP port: a TLS hello is a mistake
        self.greeted = mode is not Mode.UNKNOWN or not config.greet_after
        # `tick` has nothing to do before this (monotonic) time, whatever comes in
        # meanwhile: the housekeeper does not ask the link until then
        # (chatd.housekeeping). Only `tick` sets it, for a joined link (input only moves
        # a keepalive deadline later, so it leaves `due` as it is); a link that is not
        # joined yet keeps it at 0, as its deadlines are not the keepalive's.
        self.due = 0.0

    @property
    def text(self) -> bool:
        return self.mode is Mode.TEXT

    @property
    def joined(self) -> bool:
        return self.phase is Phase.JOINED

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> list[Action[P]]:
        """Bytes from the stream, split into lines at any boundary."""
        if self.phase is Phase.CLOSED:
            return []
        self._alive(now)
        out: list[Action[P]] = []
        if (self.detect_tls and self.mode is Mode.UNKNOWN and data[:1] == TLS_RECORD
                and not self.splitter.pending):
            self.phase = Phase.CLOSED
            return [Log(self.peer, "warning",
                        "sent a TLS handshake to a plaintext port; closing"),
                    Abort(self.peer, "TLS handshake on a plaintext port")]
        for line in self.splitter.feed(data):
            if self.phase is Phase.CLOSED:  # type: ignore[comparison-overlap]  # a line closed it
                break
            if line is LINE_TOO_LONG:
                self._fault(out, now, ProtocolError(
                    ErrorCode.LINE_TOO_LONG,
                    f"line longer than {self.config.max_line_bytes} bytes; skipped to its end",
                    max_line_bytes=self.config.max_line_bytes))
            else:
                self._line(out, line, now)  # type: ignore[arg-type]
        return out

    def receive_message(self, data: bytes, now: float) -> list[Action[P]]:
        """One whole WebSocket message: one line (PROTOCOL.txt 13.2)."""
        if self.phase is Phase.CLOSED:
            return []
        self._alive(now)  # any message proves the client alive (8.5)
        out: list[Action[P]] = []
        line = data[:-1] if data.endswith(b"\n") else data  # as on TCP, "\n" may end it
        limit = self.config.max_line_bytes
        if len(line) > limit:
            self._fault(out, now, ProtocolError(
                ErrorCode.LINE_TOO_LONG, f"message longer than {limit} bytes; dropped",
                max_line_bytes=limit))
        else:
            self._line(out, line, now)
        return out

    def receive_eof(self, now: float) -> list[Action[P]]:
        """The client closed its side: a last line without "\\n" still counts, then it left."""
        if self.phase is Phase.CLOSED:
            return []
        out: list[Action[P]] = []
        if self.splitter.pending:
            for line in self.splitter.feed(b"\n"):
                if isinstance(line, bytes) and not self.closed:
                    self._line(out, line, now)
        if not self.closed:
            self.phase = Phase.CLOSED
            out += [Leave(self.peer, None), Close(self.peer)]
        return out

    def settle(self, joined: bool, now: float, login: bool = False) -> list[Action[P]]:
        """The hub decided the connect this link delivered; held lines go on, in order.
        `login`: not yet, the next line is the password of the name's account (text)."""
        if self.phase is Phase.CLOSED:
            return []
        self.phase = Phase.JOINED if joined else Phase.NEW
        if self.login is not None:
            self.login.settled(login)
        out: list[Action[P]] = []
        backlog, self.backlog = self.backlog, None
        for line in backlog.lines if backlog else ():  # a connect among them: wait again
            if self.closed:
                break
            self._line(out, line, now, charged=True)  # flood control saw them already
        return out

    def tick(self, now: float) -> list[Action[P]]:
        """Deadlines: registration (8.4) and keepalive (8.5)."""
        config = self.config
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is not Phase.JOINED:
            if now - self.opened_at >= config.registration_timeout:
                return self._fail(ErrorCode.REGISTRATION_TIMEOUT,
                                  f"no connect within {config.registration_timeout:g}s",
                                  "registration timeout")
            if (not self.greeted and self.mode is Mode.UNKNOWN
                    and not self.splitter.pending
                    and now - self.opened_at >= config.greet_after):
                self.greeted = True
                return [Send(self.peer,
                             GREETING if config.password is None else GREETING_PASSWORD)]
            return []
        if not config.ping_interval or self.mode is not Mode.JSON:
            self.due = INFINITY  # text mode relies on TCP keepalive: nc readers are not pinged
            return []
        # Deadlines as times, compared as the housekeeper compares `due` (no rounding
        # between the two ways of asking).
        if self.pinged_at is not None:
            # The timeout runs from the ping itself (8.5), not from when it fell due: a
            # crowd's pings go out at most TICK_ACTIONS a turn (chatd.housekeeping), so
            # the last of 20,000 seated at once leaves ~30 s after its time, and would
            # have been closed at once, with no time to answer.
            give_up_at = self.pinged_at + config.ping_timeout
            if now >= give_up_at:
                return self._fail(ErrorCode.PING_TIMEOUT,
                                  f"no answer to ping within {config.ping_timeout:g}s",
                                  "ping timeout")
            # An answer from now on puts the next ping a ping interval after it: no
            # sooner than now + ping_interval, which can come before the give-up time
            # (--ping-timeout over --ping-interval).
            self.due = min(give_up_at, now + config.ping_interval)
        elif now >= (ping_at := self.last_seen + config.ping_interval):
            self.pinged_at = now
            self.due = now + min(config.ping_timeout, config.ping_interval)
            return [Send(self.peer, p.encode_json(p.ServerPing()))]
        else:
            self.due = ping_at
        return []

    # ------------------------------------------------------------------ output the shell asks for

    def error(self, code: str, message: str, now: float, *,
              retry_after: int | None = None) -> list[Action[P]]:
        """A recoverable error found outside the link (a failure in the hub, say)."""
        if self.peer is None:  # detached
            return []
        out: list[Action[P]] = []
        self._fault(out, now, ProtocolError(code, message, retry_after=retry_after))
        return out

    def shutdown(self) -> list[Action[P]]:
        """The server is stopping: a last line in the connection's mode, then close."""
        if self.phase is Phase.CLOSED:
            return []
        self.phase = Phase.CLOSED
        notice = p.Shutdown()
        data = p.encode_text(notice) if self.text else p.encode_json(notice)
        return [Send(self.peer, data), Close(self.peer)]

    def detach(self) -> None:
        """The shell is done with the connection: nothing more is read or said, and the
        link forgets its peer, which holds the link, so that the two are freed by
        reference counting, not left to a full collection (chatd.heap)."""
        self.phase = Phase.CLOSED
        self.peer = cast(P, None)

    def charge(self, reply_bytes: int, now: float) -> None:
        """A reply of this size went to the client: flood control charges what it cost."""
        if self.guard is not None:
            self.guard.charge(reply_bytes / COST_UNIT, now)

    def suppressed_errors(self) -> list[Action[P]]:
        """When the connection ends: how many errors the log left out."""
        if self.peer is None:  # detached
            return []
        count = self.errors.pending() if self.errors is not None else 0
        return [Log(self.peer, "warning", f"{count} more errors not logged")] if count else []

    # ------------------------------------------------------------------ lines

    def _alive(self, now: float) -> None:
        self.last_seen = now
        self.pinged_at = None

    def _line(self, out: list[Action[P]], line: bytes, now: float, charged: bool = False) -> None:
        guard = self.guard
        if guard is not None and not charged:
            verdict = guard.take(now, len(line))
            if verdict is not Verdict.OK:
                self._flooding(out, now, verdict, line)
                return
        if (not line or line.isspace()) and not self._may_be_a_name():
            return  # blank lines are ignored (PROTOCOL.txt 1.2)
        if self.phase is Phase.JOINING or self.backlog is not None:
            self._hold(out, now, line)
            return
        if self.mode is Mode.UNKNOWN:
            self.mode = Mode.JSON if p.looks_like_json(line) else Mode.TEXT
            self.greeted = True
            if self.mode is Mode.TEXT:
                self.login = self._text_login()
        try:
            event: p.Event | None
            if self.mode is Mode.JSON:
                event = p.parse_json_line(line)
            elif self.phase is Phase.JOINED:
                event = p.parse_text_line(line)
                if isinstance(event, p.Message) and event.to is not None:
                    out.append(Send(self.peer, sent_privately(event.to, event.message)))
            else:
                assert self.login is not None  # made with the mode
                event = self.login.line(p.decode_utf8(line))
                if event is None:
                    out.append(Send(self.peer, PASSWORD_PROMPT))
        except ProtocolError as exc:
            self._fault(out, now, exc)
            return
        if event is None:
            return
        if isinstance(event, p.Connect) and self.phase is Phase.NEW:
            if not self._password_ok(out, event.password):
                return
            self.phase = Phase.JOINING
            if self.login is not None:
                self.login.sent = event
        out.append(Deliver(self.peer, event))

    def _hold(self, out: list[Action[P]], now: float, line: bytes) -> None:
        """A line sent before the connect was decided waits for it (a cluster takes a
        moment); past the bound it is dropped with an error (PROTOCOL.txt 8.8)."""
        if self.backlog is None:
            self.backlog = Backlog(self.config.backlog_bytes)
        if not self.backlog.hold(line):
            self._fault(out, now, over_backlog(line, text=self.text, limit=self.backlog.limit))

    def _may_be_a_name(self) -> bool:
        """A blank first line is a person at nc pressing Enter for the default name (6.1);
        at the password prompt it asks again. Only the first: the blank line ending an
        HTTP request, after its refused "names", must not join anyone."""
        if self.phase is not Phase.NEW or self.backlog is not None:
            return False
        return self.mode is Mode.UNKNOWN or (self.login is not None and self.login.asking)

    def _text_login(self) -> TextLogin:
        return TextLogin(server_password=self.config.password is not None)

    def _password_ok(self, out: list[Action[P]], given: str | None) -> bool:
        """Checks a connect's password (PROTOCOL.txt 11.2) in constant time; a wrong one
        closes the connection."""
        wanted = self.config.password
        if wanted is None:
            return True
        if given is not None and hmac.compare_digest(given.encode(), wanted.encode()):
            return True
        if given is not None:  # a guess: the shell makes the address wait (11.2)
            out.append(WrongPassword(self.peer))
        out += self._fail(ErrorCode.AUTH_FAILED, "wrong or missing password",
                          f"auth failed: {'wrong' if given else 'no'} password")
        return False

    def _flooding(self, out: list[Action[P]], now: float, verdict: Verdict, line: bytes) -> None:
        if verdict is Verdict.FLOOD:
            out += self._fail(ErrorCode.EXCESS_FLOOD, "too many lines; disconnected",
                              "excess flood", resumable=False)
            return
        config = self.config
        self._fault(out, now, over_rate(verdict, line, text=self.text, rate=config.rate,
                                        byte_rate=config.byte_rate,
                                        byte_burst=config.byte_burst))

    # ------------------------------------------------------------------ errors

    def _encode_error(self, exc: ProtocolError) -> bytes:
        error = p.error_of(exc)
        return p.encode_text(error) if self.mode is Mode.TEXT else p.encode_json(error)

    def _fault(self, out: list[Action[P]], now: float, exc: ProtocolError) -> None:
        """A recoverable error: tell the client, log it (in summary when they pile up)."""
        if self.errors is None:
            self.errors = ErrorLogThrottle()
        admit, suppressed = self.errors.admit(now)
        if suppressed:
            out.append(Log(self.peer, "warning", f"{suppressed} more errors not logged"))
        if admit:
            out.append(Log(self.peer, "warning", f"error {exc.code}: {exc.message}"))
        out.append(Send(self.peer, self._encode_error(exc)))

    def _fail(self, code: str, message: str, reason: str,
              resumable: bool = True) -> list[Action[P]]:
        if self.phase is Phase.CLOSED:
            return []
        self.phase = Phase.CLOSED
        return [Log(self.peer, "warning", f"closing: {reason} ({code})"),
                Send(self.peer, self._encode_error(ProtocolError(code, message))),
                Leave(self.peer, reason, resumable), Close(self.peer)]
