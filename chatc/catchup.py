"""Fetching what a server restart lost, pure (chatc.session drives it).

After a reconnect that could not resume, the client asks for the history after the last
id it saw, in pages, while the join history and live lines keep arriving; once the last
page is in, `CatchUp.missed` merges them, de-duplicated by id and time (PROTOCOL.txt 10,
11).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from chatc.events import CaughtUp, Confirmed, Outgoing, SessionEvent
from chatd import protocol as p

CHAT_UPDATES = (p.Chat, p.Joined, p.Left, p.Renamed)


class Seen:
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


def next_page(after: str) -> p.History:
    return p.History(after=after, limit=p.HISTORY_PAGE_MAX)


@dataclass(slots=True)
class CatchUp:
    """The history fetch after a reconnect that did not resume."""

    after: str
    fenced: bool = False  # the pong after the join history arrived; pages are coming
    joined: list[p.Chat] = field(default_factory=list)  # join history
    pages: list[p.Chat] = field(default_factory=list)
    live: list[p.Update] = field(default_factory=list)  # arrived meanwhile

    def fence(self) -> p.History | None:
        """The pong after the join history: the first page request (None if it was
        asked for already)."""
        if self.fenced:
            return None
        self.fenced = True
        return next_page(self.after)

    def receive(self, update: p.Update) -> p.History | bool:
        """Keep a line that came meanwhile: the next page to ask for, or True once the
        last page is in."""
        if isinstance(update, p.HistoryEnd):
            if not self.fenced:
                return False  # the end of the join history
            if update.more and self.pages:
                return next_page(self.pages[-1].id)
            return True
        if isinstance(update, p.Chat) and update.history:
            (self.pages if self.fenced else self.joined).append(update)
        else:
            self.live.append(update)
        return False

    def missed(self, seen: Seen, me: str | None, doubt: Outgoing | None
               ) -> tuple[list[SessionEvent], bool]:
        """What to show, ending with CaughtUp; True if the line in `doubt` was among
        the pages (it made it before the restart: its ack was lost)."""
        shown: list[SessionEvent] = []
        # "Nothing missed" is known only if the server's history reaches back to lines
        # this client saw: a server restarted without its history cannot tell.
        known = bool(self.pages) or any((chat.id, chat.time) in seen for chat in self.joined)
        confirmed = False
        for chat in self.pages:
            if (doubt is not None and not confirmed and chat.name == me
                    and chat.message == doubt.text and doubt.to is None):
                confirmed = True
                seen.add(chat.id, chat.time)
                shown.append(Confirmed(doubt, chat.id, chat.time))
            elif seen.add(chat.id, chat.time):
                shown.append(chat)
        shown += [chat for chat in self.joined if seen.add(chat.id, chat.time)]
        count = sum(1 for event in shown if isinstance(event, p.Chat))
        shown.append(CaughtUp(count, known))
        return shown, confirmed
