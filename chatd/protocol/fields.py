"""A JSON field of a declared line (spec.CLIENT_LINES, serverlines.SERVER_LINES).

Both tables describe their fields with the same value, so a field's name, type and
bounds are written once: the client lines' decoder checks a field with `Field.check`,
the server lines' codec (wire.py) reads `out` and `back`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chatd.protocol import events as ev
from chatd.protocol.errors import ErrorCode, ProtocolError
from chatd.protocol.events import check_seconds, one_line

_FieldKind = Literal["str", "line", "int", "bool", "seconds", "list", "object"]


@dataclass(frozen=True, slots=True)
class Field:
    """A JSON field: its name on the wire, its type, whether it must be there, and its
    bounds (`most`: characters of a line or a ref, the top of an int range). Names and
    rooms are bounded where they are normalised (labels.py, PROTOCOL.txt 5.1, 5.2)."""

    name: str
    kind: _FieldKind = "str"
    required: bool = False
    most: int = 0
    least: int = 0
    default: Any = None
    attr: str = ""  # the event's (update's) attribute when it is not `name`
    # Server lines (chatd.protocol.wire): `required` there means "on the wire unless None"
    # (otherwise an empty value is left out too); `out` turns the value into JSON, `back`
    # JSON into the value (NO_VALUE: not accepted, as if absent).
    out: Callable[[Any], Any] | None = None
    back: Callable[[Any], Any] | None = None

    def check(self, obj: dict[str, Any]) -> Any:
        value = obj.get(self.name)
        if self.kind == "str":
            return ev._req_str(obj, self.name) if self.required else ev._opt_str(obj, self.name)
        if self.kind == "line":  # one line of visible text: a reason, a topic
            text = ev._opt_str(obj, self.name)
            if text is None:
                return self.default
            return one_line(text, self.name, self.most)
        if self.kind == "bool":  # null is no boolean: only a missing field takes the default
            if self.name not in obj:
                return bool(self.default)
            if not isinstance(value, bool):
                raise ProtocolError(ErrorCode.BAD_FIELD,
                                    f"field {self.name!r} must be true or false")
            return value
        if self.kind == "int":
            if self.name not in obj:
                return self.default
            if type(value) is not int or not self.least <= value <= self.most:
                raise ProtocolError(ErrorCode.BAD_FIELD, f"field {self.name!r} must be an "
                                    f"integer {self.least}-{self.most}")
            return value
        if self.kind == "seconds":
            return check_seconds(value)
        raise AssertionError(f"{self.kind} is a server field")  # pragma: no cover
