"""Whether and when a session whose connection ended connects again, pure (chatc.session
drives it).

A connection lost, or an attempt that got no welcome, is followed by another attempt
after a `Backoff` delay, unless the user is leaving, reconnecting is off, or the server
said trying again cannot help (a fatal refusal, an operator's removal): then the session
ends, and `Gone` says why, in words. The server's error right before it closes a
connection (PROTOCOL.txt 7) is kept as the reason, and said once, when the loss comes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chatc import words
from chatc.actions import Actions, Reconnect
from chatc.events import EXIT_REMOVED, Gone, Lost
from chatd import protocol as p

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


@dataclass(slots=True)
class _Away:
    """Between a lost connection and the next welcome."""

    since: float
    attempt: int = 0
    reached: bool = False


class Reconnects:
    """The end of each connection: another attempt (`Lost`, `Reconnect`) or the end of
    the session (`Gone`), added to the session's `actions`."""

    def __init__(self, actions: Actions, enabled: bool, backoff: Backoff,
                 draw: Callable[[], float]) -> None:
        self._actions = actions
        self.enabled = enabled
        self.backoff = backoff
        self.draw = draw
        self.closing = False  # the user is leaving: the next loss ends the session
        self.gone = False
        self._farewell: str | None = None  # why the server is about to close the connection
        self._final = False  # removed by an operator: no reconnecting
        self._away: _Away | None = None

    def back(self, now: float) -> float | None:
        """A welcome: the seconds since the connection was lost; None for the first."""
        away, self._away = self._away, None
        return None if away is None else now - away.since

    def warned(self, error: p.Error) -> None:
        """The server's error before it closes the connection: the reason to say then."""
        self._final = error.code in FINAL_CODES
        self._farewell = words.words(error) if self._final else words.explain(error)

    def shut_down(self) -> None:
        self._farewell = "the server shut down"

    def lost(self, error: str | None, now: float) -> None:
        """The connection ended: `error` says why, None if the server closed it."""
        farewell, self._farewell = self._farewell, None
        if self.closing:
            self.end(None)
            return
        reason = error or farewell or "the server closed the connection"
        if self.enabled and not self._final:
            self._away = _Away(now)
            self._retry(reason)
        else:
            self.end(reason, removed=self._final)

    def failed(self, reason: str, reached: bool) -> None:
        """An attempt did not get a welcome; `reached`: something answered."""
        if self.closing:
            self.end(None)
        else:
            assert self._away is not None
            self._away.reached = reached
            self._retry(reason)

    def refused(self, error: p.Error) -> None:
        """The server answered an attempt's connect line with an error."""
        if self.closing:
            self.end(None)
        elif error.code == p.ErrorCode.LOGIN_FAILED:
            # The token was revoked meanwhile (a password change, /logout elsewhere).
            self.end(f"{words.explain(error, joining=True)}; the saved login was "
                     "forgotten: start chatc again with --login")
        elif error.code in FATAL_CODES:
            removed = error.code in FINAL_CODES
            said = (words.words(error, joining=True) if removed
                    else words.explain(error, joining=True))
            self.end(said, removed=removed)
        else:
            assert self._away is not None
            self._away.reached = True
            self._retry(words.explain(error, joining=True))

    def end(self, reason: str | None, removed: bool = False) -> None:
        """The session is over (`reason` None: as the user asked)."""
        if not self.gone:
            self.gone = True
            self._away = None
            self._actions.show(Gone(reason, removed=removed))

    def _retry(self, reason: str) -> None:
        away = self._away
        assert away is not None
        away.attempt += 1
        delay = self.backoff.delay(away.attempt, self.draw, away.reached)
        self._actions.show(Lost(reason, delay, away.attempt))
        self._actions.add(Reconnect(delay))
