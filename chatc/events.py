"""What a chat session reports besides the server's updates (chatc.session makes them).

Pure data: the terminal and line mode turn these into lines a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from chatd import protocol as p


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An own chat line; `to` set makes it private; `room`: the room it is for (None:
    the server's current room)."""

    ref: str
    text: str
    to: str | None = None
    room: str | None = None


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The server took an own line; `id` and `time` are the ones it gave it."""

    line: Outgoing
    id: str
    time: str
    late: bool = False  # after it was reported Failed for want of an answer


@dataclass(frozen=True, slots=True)
class Failed:
    line: Outgoing
    error: p.Error


@dataclass(frozen=True, slots=True)
class Throttled:
    """Flood control dropped an own line; it is sent again after `retry_in` seconds."""

    line: Outgoing
    retry_in: float


@dataclass(frozen=True, slots=True)
class Lost:
    """The connection broke; the next attempt is in `retry_in` seconds."""

    reason: str
    retry_in: float
    attempt: int


@dataclass(frozen=True, slots=True)
class Reconnected:
    welcome: p.Welcome
    away: float = 0.0  # seconds from the connection's loss to this welcome


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """After a reconnect that could not resume: `count` missed lines were fetched;
    `known` False when the server's history does not reach back to the last line seen,
    so lines sent meanwhile may be lost without anyone knowing how many."""

    count: int
    known: bool = True


# chatc's exit status when an operator removed the user (kicked, or banned).
EXIT_REMOVED = 3


@dataclass(frozen=True, slots=True)
class Gone:
    """The session is over; `reason` is None after a polite close. `removed`: an
    operator removed this user (kicked or banned), and `reason` says so in words."""

    reason: str | None
    removed: bool = False

    @property
    def status(self) -> int:
        """chatc's exit status: 0 after a polite close, EXIT_REMOVED, else 1."""
        if self.reason is None:
            return 0
        return EXIT_REMOVED if self.removed else 1


SessionEvent: TypeAlias = (
    p.Update | Confirmed | Failed | Throttled | Lost | Reconnected | CaughtUp | Gone
)
