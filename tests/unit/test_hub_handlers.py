"""The hub's handler tables (chatd.hub.handlers) cover their unions: every client line
type of chatd.protocol's `Event` and every command type of chatd.commands' `Command` has
exactly one handler, so a new type cannot reach the hub unhandled."""

from __future__ import annotations

from types import UnionType
from typing import Any, get_args

from chatd import protocol as p
from chatd.commands import Command
from chatd.hub.handlers import COMMANDS, EVENTS


def members(union: Any) -> set[type[Any]]:
    found: set[type[Any]] = set()
    for arg in get_args(union):
        found |= members(arg) if isinstance(arg, UnionType) or get_args(arg) else {arg}
    return found


def test_every_client_line_type_has_a_handler() -> None:
    assert set(EVENTS) == members(p.Event)


def test_every_command_type_has_a_handler() -> None:
    assert set(COMMANDS) == members(Command)


def test_the_unions_are_read_whole() -> None:
    assert p.Message in members(p.Event) and len(members(p.Event)) >= 20
    assert len(members(Command)) >= 14
