"""Own lines and commands on their way to the server, pure (chatc.session drives it).

One own line is in flight at a time: the next goes once the previous is acknowledged,
or refused, or `ack_timeout` seconds passed without an answer (then it is given up on,
and a late ack still confirms it: no line can hold the queue). Commands wait in the
same queue, behind the lines queued before them.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections import deque
from collections.abc import Iterator

from chatc.events import Outgoing
from chatd import protocol as p

LATE_ACKS_KEPT = 100  # lines given up on whose ack may still come
# Refusals of a line chatd did not read (over the flood limit, or its length limit): they
# carry no ref.
UNREAD_REFUSALS = (p.ErrorCode.RATE_LIMITED, p.ErrorCode.LINE_TOO_LONG)


def _refs() -> Iterator[str]:
    prefix = secrets.token_hex(3)
    return (f"{prefix}-{n}" for n in itertools.count(1))


def message(line: Outgoing) -> p.Message:
    """An own line as sent."""
    return p.Message(line.text, to=line.to, ref=line.ref, room=line.room)


class OwnLines:
    def __init__(self, ack_timeout: float, refs: Iterator[str] | None = None) -> None:
        self.ack_timeout = ack_timeout
        self._refs = refs or _refs()
        self._queue: deque[Outgoing | p.Event] = deque()
        self.in_flight: Outgoing | None = None  # the head, sent, no answer yet
        self._ack_due: float | None = None  # when to give up on the line in flight
        self._hold_until: float | None = None  # flood control pause
        self._given_up: dict[str, Outgoing] = {}  # by ref: an ack may still come

    @property
    def pending(self) -> list[Outgoing]:
        """Own lines not acknowledged yet, oldest first."""
        return [line for line in self._queue if isinstance(line, Outgoing)]

    @property
    def idle(self) -> bool:
        return not self._queue

    @property
    def deadline(self) -> float | None:
        times = [t for t in (self._ack_due, self._hold_until) if t is not None]
        return min(times) if times else None

    def line(self, text: str, to: str | None, room: str | None = None) -> Outgoing:
        """A new own line with its own ref (not queued yet)."""
        return Outgoing(next(self._refs), text, to, room if to is None else None)

    def add(self, item: Outgoing | p.Event) -> None:
        self._queue.append(item)

    def owns(self, ref: str) -> bool:
        return any(line.ref == ref for line in self.pending)

    def refusal(self, error: p.Error) -> p.Error | None:
        """`error` if it refuses an own line, with that line's ref; None if not."""
        if error.ref is not None:
            return error if self.owns(error.ref) else None
        if self.in_flight is not None and error.code in UNREAD_REFUSALS:
            # With one line in flight it is almost surely that one. (If the ack comes
            # after all, it wins and nothing is sent twice.)
            return dataclasses.replace(error, ref=self.in_flight.ref)
        return None

    def echoes(self, update: p.Update, me: str | None) -> bool:
        """`update` is the private line to oneself in flight, come back before its ack."""
        if not (isinstance(update, p.Chat) and update.to is not None
                and update.name == me and update.to == me):
            return False
        return self.in_flight is not None and self.in_flight.text == update.message

    def take(self, now: float) -> list[p.Event]:
        """What to send now, on a connection ready for own lines."""
        out: list[p.Event] = []
        while self._queue and self.in_flight is None and self._hold_until is None:
            head = self._queue[0]
            if isinstance(head, Outgoing):
                out.append(message(head))
                self.in_flight = head
                self._ack_due = now + self.ack_timeout
                break
            out.append(head)
            self._queue.popleft()
        return out

    def acked(self, ref: str) -> tuple[Outgoing, bool] | None:
        """The line an ack is for, and whether it came after the line was given up on."""
        late = self._given_up.pop(ref, None)
        if late is not None:
            return late, True
        for line in self.pending:
            if line.ref == ref:
                self._queue.remove(line)
                self._answered()
                return line, False
        return None

    def refused(self, ref: str, now: float, hold: float | None) -> Outgoing:
        """The line the server refused; `hold`: send it again after that many seconds
        (flood control), else it is dropped."""
        line = next(line for line in self.pending if line.ref == ref)
        self._answered()
        if hold is not None:
            self._hold_until = now + hold
        else:
            self._queue.remove(line)
        return line

    def expired(self, now: float) -> Outgoing | None:
        """The line in flight, given up on if its ack is overdue by `now`."""
        if self._ack_due is None or now < self._ack_due:
            return None
        line, self._ack_due = self.in_flight, None
        if line is None:
            return None
        self._queue.popleft()
        self.in_flight = None
        self._given_up[line.ref] = line
        while len(self._given_up) > LATE_ACKS_KEPT:
            del self._given_up[next(iter(self._given_up))]
        return line

    def released(self, now: float) -> bool:
        """True once when a flood control pause is over by `now`."""
        if self._hold_until is None or now < self._hold_until:
            return False
        self._hold_until = None
        return True

    def lost(self) -> Outgoing | None:
        """The connection broke: the line in flight, now in doubt (still queued)."""
        line, self.in_flight, self._ack_due = self.in_flight, None, None
        return line

    def settled(self, line: Outgoing) -> bool:
        """A line known to have made it some other way; False if it was not queued."""
        if line not in self._queue:
            return False
        self._queue.remove(line)
        return True

    def stop(self) -> None:
        """Leaving: no more timeouts or pauses."""
        self._ack_due = self._hold_until = None

    def _answered(self) -> None:
        self.in_flight = None
        self._ack_due = None
