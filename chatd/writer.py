"""The writer: the hub's updates become bytes (chatd.outbox moves the bytes).

The shell replays each `Effects` (chatd.effects) here in order. The hub speaks
updates; they become bytes here, in the mode of whoever reads them (chatd.channels): a
room's update once per mode that has readers in the room (`broadcast_update`), not once
per reader; a line that names some of its JSON readers (18.6), or goes to its sender's
other devices (18.4), once more for them, marked; a history page cut to fit its
reader's mode (`send_page`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from chatd import protocol as p
from chatd.channels import (
    JSON,
    PREFIXED,
    TEXT,
    Apart,
    Receiver,
    buffer_of,
    encode,
    encode_in,
    page_parts,
)
from chatd.effects import Page
from chatd.outbox import Outbox


class Writer(Outbox):
    """The outbox, fed with updates: what the server's dispatcher (chatd.server) calls."""

    def send_update(self, conn: Receiver, update: p.Update) -> int:
        """An update for one connection, in its mode; the bytes it took."""
        data = p.encode_text(update) if conn.text else p.encode_json(update)
        if data:
            self.send(conn, data)
        return len(data)

    def send_page(self, conn: Receiver, page: Page[Any]) -> int:
        """A history page (see `page_parts`) in one write; the bytes of its lines, which
        flood control charges (8.3): an empty page costs nothing."""
        buf = buffer_of(conn, p.name_key(page.room)) if conn.text else None
        _, parts = page_parts(page, buf.channel[1] if buf is not None else int(conn.text))
        self.send(conn, b"".join(parts))
        return sum(map(len, parts[:-1]))

    def send_paced_updates(self, conn: Receiver, updates: Iterator[p.Update]) -> None:
        text = conn.text
        self.send_paced(conn, (encode(update, text) for update in updates))

    def broadcast_update(self, room: str, update: p.Update, skip: Receiver | None) -> None:
        """An update for every local member of the room but `skip`: encoded once per
        mode that has members here."""
        bufs = self.rooms.get(room)
        if bufs is None:
            return
        for buf in bufs:
            if buf.peers:
                mode = buf.channel[1]
                self._store(buf, p.encode_json(update) if mode == JSON
                            else encode_in(update, mode), skip)

    def broadcast_mentioning(self, room: str, update: p.Update, skip: Receiver | None,
                             mentioned: Sequence[Receiver], own: Sequence[Receiver] = ()
                             ) -> None:
        """`broadcast_update`, but the JSON readers of `mentioned` get their own copy,
        marked (PROTOCOL.txt 18.6), in the same place: encoded apart, they are few, and
        the others still share one encoding. Text mode shows nothing more. So do the
        sender's other devices in `own`, marked "own" (18.4)."""
        apart = Apart(skip, (*mentioned, *own) if own else mentioned)
        for buf in self.rooms.get(room, ()):
            if buf.peers:
                mode = buf.channel[1]
                self._store(buf, encode_in(update, mode), apart if mode == JSON else skip)
        if isinstance(update, p.Chat):
            if mentioned:
                marked = encode_in(replace(update, mention=True), JSON)
                for conn in mentioned:
                    self.send(conn, marked)
            if own:
                marked = encode_in(replace(update, own=True), JSON)
                for conn in own:
                    self.send(conn, marked)

    def multicast_update(self, room: str, update: p.Update, conns: Sequence[Receiver]
                         ) -> None:
        """An update for some members of the room: encoded once per mode they read the
        room in (a connection not in the room reads it plain)."""
        made: dict[int, bytes] = {}
        for conn in conns:
            buf = buffer_of(conn, room)
            mode = buf.channel[1] if buf is not None else int(conn.text)
            data = made.get(mode)
            if data is None:
                data = made[mode] = encode_in(update, mode)
            if data:
                self.send(conn, data)

    def enter_room(self, room: str, conn: Receiver, prefixed: bool = False) -> None:
        self.enter((room, (PREFIXED if prefixed else TEXT) if conn.text else JSON), conn)

    def exit_room(self, room: str, conn: Receiver) -> None:
        buf = buffer_of(conn, room)
        if buf is not None:
            self.exit(buf.channel, conn)
