"""Getting back in step with the conversation after a reconnect, pure (chatc.session
drives it; PROTOCOL.txt 10, 11).

A resumed welcome is followed by the missed lines and acks; a ping after it works as a
fence, because the server answers lines in order, so its pong means the replay is over
and an unacknowledged line was lost and must be sent again. A welcome that did not
resume (the server restarted) is followed by history pages after the last id this
client saw (chatc.catchup), merged with the join history and the live lines that arrive
meanwhile, de-duplicated by id and time. Own lines wait while either is under way.
"""

from __future__ import annotations

from chatc.catchup import CHAT_UPDATES, CatchUp, Seen
from chatc.events import CaughtUp, Outgoing, SessionEvent
from chatd import protocol as p


class Resync:
    """The chat lines seen (the last id, to fetch after; ids and times, to drop twice
    seen ones), and the replay or catch-up under way after a reconnect."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.seen = Seen()
        self.fence = False  # waiting for the pong that ends a replay
        self.catchup: CatchUp | None = None
        self.doubt: Outgoing | None = None  # in flight when the last connection broke

    @property
    def holding(self) -> bool:
        """Own lines wait: the server's replay or a catch-up is not over."""
        return self.fence or self.catchup is not None

    def track(self, id: str) -> None:
        if id:
            self.last_id = id

    def fresh(self, update: p.Update) -> bool:
        """A live chat line, tracked: False if it was seen already."""
        assert isinstance(update, CHAT_UPDATES)
        self.track(update.id)
        return not update.id or self.seen.add(update.id, update.time)

    def lost(self, in_flight: Outgoing | None) -> None:
        """The connection broke with `in_flight` unanswered."""
        self.doubt = in_flight or self.doubt
        self.fence = False
        self.catchup = None

    def welcomed(self, resumed: bool) -> p.Ping | CaughtUp:
        """A welcome after a lost connection: the ping that fences the replay or starts
        the catch-up, or CaughtUp when whether lines were missed cannot be told."""
        if resumed:
            self.doubt = None  # the replay settles it: its ack comes, or it is sent again
            self.fence = True
            return p.Ping()
        if self.last_id is not None:
            self.catchup = CatchUp(self.last_id)
            return p.Ping()
        # No line seen yet to fetch from: whether any were missed cannot be told.
        return CaughtUp(0, known=False)

    def pong(self) -> p.History | bool:
        """True if it ended a replay; the first history page to ask for."""
        if self.fence:
            self.fence = False
            return True
        page = self.catchup.fence() if self.catchup is not None else None
        return page if page is not None else False

    def caught_up(self, pending: list[Outgoing], me: str | None
                  ) -> tuple[list[SessionEvent], Outgoing | None, list[p.Update]]:
        """The last page is in: what to show (ending with CaughtUp), the own line in
        doubt if the pages had it (its ack was lost), and the live lines kept meanwhile."""
        state, self.catchup = self.catchup, None
        assert state is not None
        doubt, self.doubt = self.doubt, None
        if doubt is not None and doubt not in pending:
            doubt = None  # settled meanwhile
        shown, confirmed = state.missed(self.seen, me, doubt)
        for chat in state.pages:
            self.track(chat.id)
        return shown, doubt if confirmed else None, state.live
