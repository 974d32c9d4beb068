"""Read markers to send (PROTOCOL.txt 18.5), sans-I/O: the app says which line of which
room the user has seen, with the time; this says which read lines to send now and when
to ask again, so that each room gets at most one a second (the server charges a read
line as any line, 8.3) and the last line seen is never left unsent.

Bounded by the user's rooms: one waiting id and one time per room, and a room's time is
dropped once a second has passed since it.
"""

from __future__ import annotations

from chatd import protocol as p


class ReadMarks:
    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self._waiting: dict[str, str] = {}  # room -> the newest id seen, not sent yet
        self._sent_at: dict[str, float] = {}  # room -> when its last read line went
        self._sent: dict[str, str] = {}  # room -> the id it carried

    def seen(self, room: str, id: str, now: float) -> list[p.Read]:
        """The user has seen `room` up to line `id`; the read lines due now."""
        if id and self._sent.get(room) != id:
            self._waiting[room] = id
        return self.due(now)

    def forget(self, room: str) -> None:
        """The user left `room`: nothing more to send for it."""
        for table in (self._waiting, self._sent_at, self._sent):
            table.pop(room, None)

    def due(self, now: float) -> list[p.Read]:
        out = []
        for room, id in list(self._waiting.items()):
            if now - self._sent_at.get(room, now - self.every) >= self.every:
                del self._waiting[room]
                self._sent_at[room] = now
                self._sent[room] = id
                out.append(p.Read(id, room))
        for room, at in list(self._sent_at.items()):
            if room not in self._waiting and now - at >= self.every:
                del self._sent_at[room]
        return out

    @property
    def deadline(self) -> float | None:
        """When `due` has something to send next; None: nothing waits."""
        times = [self._sent_at[room] + self.every for room in self._waiting
                 if room in self._sent_at]
        return min(times) if times else None
