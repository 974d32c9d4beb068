"""Telling a dead connection from a quiet one, pure (chatc.session drives it).

A connection silent for `interval` seconds gets a ping (any line back proves it alive);
silent for `timeout` seconds more, it is taken for dead: the network may have gone
without a word, and only a line that cannot arrive would tell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Keepalive:
    interval: float = 30.0
    timeout: float = 15.0
    _heard_at: float = 0.0  # the last line from the server, or the ping
    _probed: bool = False  # a ping went out for want of lines; an answer is due
    _dead: bool = False  # said so already; nothing more until the next connection

    def heard(self, now: float) -> None:
        """A line arrived (or a connection began) at `now`."""
        self._heard_at, self._probed, self._dead = now, False, False

    @property
    def deadline(self) -> float | None:
        if self._dead:
            return None
        return self._heard_at + (self.timeout if self._probed else self.interval)

    def due(self, now: float) -> str | None:
        """"ping" if one is due by `now`, "dead" once when the answer is overdue."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        if self._probed:
            self._dead = True
            return "dead"
        self._probed, self._heard_at = True, now
        return "ping"
