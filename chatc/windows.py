"""One window per room and per private partner, the way irssi and weechat do it; pure.

`Windows` is fed the server's updates (and the user's choices) and says which windows
each update shows in, and keeps every room window's member list, topic and operators;
its base, chatc.windowlist, keeps the windows' order, the shown one, and each window's
recent lines (bounded in bytes), unread count and mentions. It never draws: chatc.incoming
shows what it answers, chatc.linemode asks it which room a line is of.

The server's *current room* (PROTOCOL.txt 17: the one a line without `room` is for) is
followed here too, from the server's own lines, so that line mode can mark the lines
of other rooms and the terminal sends `switch` only when the room changes.

A version 1 server (its welcome lists no rooms) has one room at a time: its one room
window follows the user's moves, and nothing here asks for a `switch` or a `part`.
"""

from __future__ import annotations

import dataclasses
import re

from chatc.events import Outgoing
from chatc.windowlist import MAX_WINDOWS, WINDOW_BYTES, L, Window, WindowList, key
from chatd import protocol as p

# Refusals of a join: the join the user asked for will not happen.
JOIN_REFUSED = frozenset({p.ErrorCode.BAD_ROOM, p.ErrorCode.ALREADY_IN_ROOM,
                          p.ErrorCode.TOO_MANY_ROOMS, p.ErrorCode.NOT_IN_ROOM})


def names_me(message: str, me: str) -> bool:
    """Whether a line names `me`: the name as a word, in any case."""
    if not me:
        return False
    return re.search(rf"(?<!\w){re.escape(me)}(?!\w)", message, re.IGNORECASE) is not None


class Windows(WindowList[L]):
    """The windows of one session, following the server's lines (a `WindowList`, whose
    order, shown window and kept lines it leaves to its base)."""

    def __init__(self, me: str = "", *, budget: int = WINDOW_BYTES,
                 max_windows: int = MAX_WINDOWS) -> None:
        super().__init__(budget=budget, max_windows=max_windows)
        self.me = me
        self.multi = False  # the server does several rooms at once (version 2)
        self.rooms: list[str] = []  # the user's rooms, in joining order
        self.server_room: str | None = None  # the server's current room
        self._joining: set[str] = set()  # keys of rooms a join was sent for
        self._quiet_who: set[str] = set()  # rooms whose who a resume sends unasked
        self._rejoining: set[str] = set()  # rooms joined again after a new session
        self._parting: set[str] = set()  # keys of rooms a part was sent for

    # ------------------------------------------------------------------ queries

    def read(self, mark: p.ReadMark) -> bool:
        """The server's count of what is unread in a room (PROTOCOL.txt 18.5: from the
        welcome, or a read line, maybe of another device) replaces this one's; the
        shown window has none (its lines are in front of the user). True if a count
        changed."""
        window = self.room(mark.room)
        if window is None or window is self.current:
            return False
        before = (window.unread, window.mentions)
        window.unread, window.mentions = mark.unread, mark.mentions
        return before != (mark.unread, mark.mentions)

    # ------------------------------------------------------------------ the session

    def welcome(self, welcome: p.Welcome) -> list[p.Event]:
        """A welcome, the first or after a reconnect: the rooms it lists (none from a
        version 1 server: then its one room) get their windows, in joining order;
        private windows stay. A new session (the server restarted or forgot this one)
        is in one room: the lines to send to be in every room of a window again are
        returned (joins, the shown room's last, and a switch back to the shown room
        if the last join made another current); other room windows close."""
        self.me = welcome.name
        listed = list(dict.fromkeys(welcome.rooms)) or [welcome.room]
        self.multi = bool(welcome.rooms) or welcome.version >= 2
        self.rooms = listed
        self.server_room = welcome.room
        self._joining.clear()
        self._parting.clear()
        wanted = {key(r) for r in listed}
        shown = self.current
        lost = [w for w in self.windows
                if not w.private and not w.roomless and key(w.name) not in wanted]
        again = lost if self.multi and not welcome.resumed else []
        again.sort(key=lambda w: w is shown)
        self._rejoining = {key(w.name) for w in again}
        for window in again:
            window.users, window.opers = [], set()  # until the join's who says
        self.windows = [w for w in self.windows if w not in lost or w in again]
        for name in listed:
            if self.room(name) is None:
                self.add(Window(name))
        here = self.room(welcome.room)
        assert here is not None
        here.users, here.opers, here.topic = list(welcome.users), set(welcome.opers), \
            welcome.topic
        here.more = welcome.more
        # The other rooms' members come next, in a who per room (PROTOCOL.txt 17).
        self._quiet_who = {key(r) for r in listed if key(r) != key(welcome.room)}
        if shown is None or shown not in self.windows:
            shown = self.current = here
        shown.unread = shown.mentions = 0
        sends: list[p.Event] = [p.Join(w.name) for w in again]
        current = again[-1].name if again else welcome.room
        if not shown.private and not shown.roomless and key(shown.name) != key(current):
            sends.append(p.Switch(shown.name))
        return sends

    def joining(self, room: str) -> None:
        """A join was sent: its answer opens the room's window and shows it."""
        self._joining.add(key(room))

    def parting(self, room: str) -> None:
        """A part was sent: the window closes when the server says the user left."""
        self._parting.add(key(room))

    def is_open(self, room: str) -> Window[L] | None:
        """The window of a room the user is in and not leaving."""
        return None if key(room) in self._parting else self.room(room)

    def place(self, update: p.Update) -> list[Window[L]]:
        """The windows an update shows in (none: nowhere), keeping each window's members,
        operators and topic; a private line opens its partner's window, the answer to
        a join opens the room's window and shows it, an own part closes one."""
        if isinstance(update, p.Chat):
            if update.to is not None:
                other = update.to if key(update.name) == key(self.me) else update.name
                return [self.open_private(other)]
            return [self._room_or_current(update.room)]
        if isinstance(update, p.WhoList):
            return self._who(update)
        if isinstance(update, p.Joined):
            return self._joined(update)
        if isinstance(update, p.Left):
            return self._left(update)
        if isinstance(update, p.Renamed):
            return self._renamed(update)
        if isinstance(update, p.Opered):
            where = self._windows_of(update.name, update.room)
            for each in where:
                each.opers.add(update.name)
            return where
        if isinstance(update, p.Topic):
            of = self.room(update.room)
            if of is None:
                return self.here()
            of.topic = update.topic
            return [of] if update.name else self.here()
        if isinstance(update, p.HistoryEnd):
            return [self._room_or_current(update.room)]
        if isinstance(update, p.Error) and update.code in JOIN_REFUSED:
            self._joining.clear()
        if isinstance(update, p.Switched):
            self.server_room = update.room
            return []
        return self.here()

    def own(self, line: Outgoing) -> Window[L]:
        """The window an own line shows in once the server took it."""
        if line.to is not None:
            return self.open_private(line.to)
        return self._room_or_current(line.room or self.server_room)

    def marked(self, update: p.Update) -> p.Update:
        """A `rooms` answer with the user's rooms marked (the wire does not say)."""
        if isinstance(update, p.RoomList) and self.multi:
            return dataclasses.replace(update, yours=tuple(self.rooms))
        return update

    def is_mention(self, update: p.Update) -> bool:
        """A line for the user: one naming them, or a private line to them."""
        if not isinstance(update, p.Chat) or update.history or key(update.name) == key(self.me):
            return False
        return update.to is not None or names_me(update.message, self.me)

    # ------------------------------------------------------------------ the user's choices

    def select(self, window: Window[L]) -> p.Switch | None:
        """Show `window`; the `switch` to send when it is a room the server does not
        take as current yet (a line typed goes there either way: it names its room)."""
        self.show(window)
        if window.private or window.roomless or not self.multi or self.server_room is None \
                or key(window.name) == key(self.server_room):
            return None
        self.server_room = window.name
        return p.Switch(window.name)

    def close(self, window: Window[L]) -> None:
        """Close a window (a private one, or a room the user left); the shown one gives
        way to the server's current room's window, else to its left neighbour."""
        self.remove(window, self.room(self.server_room) if self.server_room else None)

    # ------------------------------------------------------------------ inside

    def _room_or_current(self, room: str | None) -> Window[L]:
        window = self.room(room) if room else None
        if window is None:
            window = self.current or self.add(Window(room or "?"))
        return window

    def _windows_of(self, name: str, room: str) -> list[Window[L]]:
        """Every room window `name` is a member of (else the window of `room`): a
        rename or an operator line comes once, for all the rooms it concerns."""
        k = key(name)
        where = [w for w in self.windows if not w.private
                 and (k == key(self.me) or any(key(u) == k for u in w.users))]
        return where or [self._room_or_current(room)]

    def _who(self, update: p.WhoList) -> list[Window[L]]:
        if update.room is None:
            return self.here()
        k = key(update.room)
        window = self.room(update.room)
        if k in self._rejoining and window is not None:
            self._rejoining.discard(k)
            self.server_room = update.room
            if all(key(r) != k for r in self.rooms):
                self.rooms.append(update.room)
            window.users, window.opers = list(update.users), set(update.opers)
            window.more = update.more
            return [window]
        # Listed in a room without a window: put there (an operator's roomkick out of
        # one's only room puts one in lobby, PROTOCOL.txt 15.2), as by a join.
        listed = any(key(u) == key(self.me) for u in update.users)
        if window is None and listed and k not in self._joining and self.multi and self.rooms:
            # Joined on another device of the account (18.4): a window of its own, not
            # shown; the current room (the server's too) is this device's and stays.
            window = self.add(Window(update.room))
            self.rooms.append(update.room)
            window.users, window.opers = list(update.users), set(update.opers)
            window.more = update.more
            return [window]
        if k in self._joining or (window is None and listed):
            self._joining.discard(k)
            if not self.multi:
                window = self._moved(update.room)
            elif window is None:
                window = self.add(Window(update.room))
            if all(key(r) != k for r in self.rooms):
                self.rooms.append(update.room)
            self.server_room = update.room  # a join makes the joined room current
            self.select(window)
        if window is None:
            return self.here()  # a look at another room
        window.users, window.opers = list(update.users), set(update.opers)
        window.more = update.more
        if k in self._quiet_who:
            self._quiet_who.discard(k)
            return [window]
        return [window] if window is self.current else self.here()

    def _moved(self, room: str) -> Window[L]:
        """Version 1: the one room window follows the user to `room`."""
        window = next((w for w in self.windows if not w.private), None)
        if window is None:
            window = self.add(Window(room))
        window.name, window.topic = room, ""
        self.rooms = [room]
        return window

    def _joined(self, update: p.Joined) -> list[Window[L]]:
        mine = key(update.name) == key(self.me)
        if mine and self.room(update.room) is None:
            # The join's who did not come first (an older server): open it now.
            self.joining(update.room)
            self._who(p.WhoList(update.room, (update.name,)))
        window = self._room_or_current(update.room)
        if all(key(u) != key(update.name) for u in window.users):
            window.users.append(update.name)
        return [window]

    def _left(self, update: p.Left) -> list[Window[L]]:
        window = self.room(update.room)
        if window is None:
            return self.here()
        k = key(update.name)
        kept = [u for u in window.users if key(u) != k]
        if len(kept) == len(window.users) and window.more:
            window.more -= 1  # one of those counted, not listed
        window.users = kept
        window.opers = {u for u in window.opers if key(u) != k}
        if k != key(self.me) or not self.multi:
            return [window]
        self._parting.discard(key(update.room))
        # Left (or was removed from) this room: the server's current room is now the
        # most recently joined one left (PROTOCOL.txt 17).
        self.rooms = [r for r in self.rooms if key(r) != key(update.room)]
        if self.server_room is not None and key(self.server_room) == key(update.room):
            self.server_room = self.rooms[-1] if self.rooms else None
        self.close(window)
        return self.here()

    def _renamed(self, update: p.Renamed) -> list[Window[L]]:
        where = self._windows_of(update.old, update.room)
        old = key(update.old)
        for window in where:
            window.users = [update.name if key(u) == old else u for u in window.users]
            if any(key(u) == old for u in window.opers):
                window.opers = {u for u in window.opers if key(u) != old} | {update.name}
        if old == key(self.me):
            self.me = update.name
        talk = self.partner(update.old)
        if talk is not None:
            talk.name = update.name
            where.append(talk)
        return where


ROOM_LINES = (p.Chat, p.Joined, p.Left, p.Renamed, p.Opered, p.Topic, p.HistoryEnd)


def other_room(update: p.Update, current: str | None) -> str | None:
    """The room of a room's line when that is not `current` (line mode marks it, as
    text mode does: `[dev] <bob> hi`); None for the current room's lines, private
    lines and the rest."""
    if not isinstance(update, ROOM_LINES) or current is None:
        return None
    if isinstance(update, p.Chat) and update.to is not None:
        return None
    if isinstance(update, p.Topic) and not update.name:
        return None  # an answer, which names its room
    room = update.room
    return room if room and key(room) != key(current) else None
