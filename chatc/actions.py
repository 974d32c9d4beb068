"""What a `chatc.session.Session` answers each input with: the shell's to-do list.

The session and its parts (chatc.reconnect) append to one `Actions` queue as they
decide; the session hands the queue's contents back, in order, from every input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from chatc.events import SessionEvent
from chatd import protocol as p


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


class Actions:
    """The actions decided since the last input, oldest first."""

    def __init__(self) -> None:
        self._items: list[Action] = []

    def add(self, action: Action) -> None:
        self._items.append(action)

    def send(self, event: p.Event) -> None:
        self._items.append(Send(event))

    def show(self, event: SessionEvent) -> None:
        self._items.append(Show(event))

    def take(self) -> list[Action]:
        items, self._items = self._items, []
        return items
