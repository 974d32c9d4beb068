"""The JSON codec of server lines, driven by their declarations (serverlines.SERVER_LINES).

Each declared field is written from the update's attribute of that name, left out when
it is None, or empty and not `required`, and turned into JSON by its `out`; reading back
takes each field by its kind (or its `back`), and what is missing or of the wrong type
falls back to the update's default, or to an empty value of the kind: clients read
leniently (PROTOCOL.txt 4, 12.1), and a line type they do not know is `Unknown`.
A new server line type, or a new field of one, is one declaration in serverlines.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, Final

from chatd.protocol import errors
from chatd.protocol.errors import ErrorCode, ProtocolError
from chatd.protocol.framing import decode_utf8
from chatd.protocol.serverlines import NO_VALUE, SERVER_LINES, ServerLine
from chatd.protocol.updates import Chat, Error, Unknown, Update

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _std_line(obj: dict[str, Any]) -> bytes:
    return (_dumps(obj) + "\n").encode()


# orjson writes the same bytes as `_std_line` (compact, UTF-8 as is, the same escapes;
# tests compare them) about 4x faster: one line per chat line. Called as
# `_dumps_line(obj, option=_NEWLINE)` in place: a wrapper function, or a partial with
# its keyword, costs more than the encoding (bench.hotpath). It raises TypeError for
# text it refuses (a lone surrogate): `_std_line` then.
_dumps_line: Callable[..., bytes]
try:
    from orjson import OPT_APPEND_NEWLINE as _NEWLINE
    from orjson import dumps as _dumps_line
except ImportError:  # pragma: no cover - the standard library does the same, slower
    _NEWLINE = 0

    def _dumps_line(obj: dict[str, Any], option: int = 0) -> bytes:
        return _std_line(obj)


_KIND_BACK: Final[dict[str, Callable[[Any], Any]]] = {
    "str": lambda raw: raw if isinstance(raw, str) else NO_VALUE,
    "int": lambda raw: raw if type(raw) is int else NO_VALUE,
    "bool": lambda raw: raw is True,
    "list": lambda raw: (tuple(v for v in raw if isinstance(v, str))
                         if isinstance(raw, list) else NO_VALUE),
}
_KIND_EMPTY: Final[dict[str, Any]] = {"str": "", "int": 0, "bool": False, "list": ()}

# (wire name, attribute, on the wire even when empty, out)
_Plan = tuple[tuple[str, str, bool, Callable[[Any], Any] | None], ...]
# (wire name, attribute, back, the value when absent or not accepted: NO_VALUE for the
# update's default)
_BackPlan = tuple[tuple[str, str, Callable[[Any], Any], Any], ...]


def _plans(line: ServerLine) -> tuple[_Plan, _BackPlan]:
    defaults = {f.name for f in dataclasses.fields(line.update)
                if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING}
    attrs = {f.name for f in dataclasses.fields(line.update)}
    out: list[tuple[str, str, bool, Callable[[Any], Any] | None]] = []
    back: list[tuple[str, str, Callable[[Any], Any], Any]] = []
    for f in line.fields:
        attr = f.attr or f.name
        if attr not in attrs:
            continue  # written by the line's own encoder (a private line's "private")
        out.append((f.name, attr, f.required, f.out))
        absent = NO_VALUE if attr in defaults else _KIND_EMPTY[f.kind]
        back.append((f.name, attr, f.back or _KIND_BACK[f.kind], absent))
    return tuple(out), tuple(back)


_BY_UPDATE: Final = {line.update: (line, *_plans(line)) for line in SERVER_LINES}
_BY_WIRE: Final = {line.wire: (line, *_plans(line)) for line in SERVER_LINES}


def to_wire(update: Update) -> dict[str, Any]:
    """The JSON object of an update."""
    if type(update) is Unknown:
        return {"type": update.type, **update.fields}
    line, plan, _ = _BY_UPDATE[type(update)]
    if line.encode is not None:
        return line.encode(update)
    obj: dict[str, Any] = {"type": line.wire}
    for wire, attr, required, out in plan:
        value = getattr(update, attr)
        if value is None or not (value or required):
            continue
        obj[wire] = out(value) if out is not None else (
            list(value) if type(value) is tuple else value)
    return obj


def encode_json(update: Update) -> bytes:
    """One JSON line, ready for the wire."""
    if (type(update) is Chat and update.room is not None and not update.history
            and not update.mention and not update.own):
        # The commonest line, encoded once per room and mode: no declaration table
        # between (equal to it: tests/unit/test_protocol.py)
        obj = {"type": "message", "name": update.name, "message": update.message,
               "room": update.room, "id": update.id, "time": update.time}
    else:
        if type(update) is Error:
            errors.ERRORS_SENT[update.code] += 1
        obj = to_wire(update)
    try:
        return _dumps_line(obj, option=_NEWLINE)
    except TypeError:  # text orjson refuses (a lone surrogate): the same error path
        return _std_line(obj)


def decode_update(line: bytes) -> Update:
    """A server line -> an update, as a client reads it. Lenient: unknown -> Unknown."""
    obj = json.loads(decode_utf8(line))
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "server line is not a JSON object")
    kind = obj.get("type")
    found = _BY_WIRE.get(kind) if isinstance(kind, str) else None
    if found is None:
        return Unknown(kind if isinstance(kind, str) else "",
                       {k: v for k, v in obj.items() if k != "type"})
    declared, _, plan = found
    if declared.decode is not None:
        return declared.decode(obj)  # type: ignore[no-any-return]
    values: dict[str, Any] = {}
    for wire, attr, back, empty in plan:
        value = back(obj[wire]) if wire in obj else NO_VALUE
        if value is NO_VALUE:
            value = empty
        if value is not NO_VALUE:
            values[attr] = value
    return declared.update(**values)  # type: ignore[no-any-return]
