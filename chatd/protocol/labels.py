"""Labels: names and rooms, and the character rules they share with message text
(PROTOCOL.txt section 5).

A *label* is a name or a room as the user typed it, trimmed and put in NFC; that is what
everyone sees. Its *key* (`name_key`) is what uniqueness compares.
"""

from __future__ import annotations

import re
import unicodedata

from chatd.protocol.constants import DEFAULT_NAME, MAX_NAME_CHARS
from chatd.protocol.errors import ErrorCode, ProtocolError

_C0_C1 = "".join(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)])
# Lone surrogates (from JSON escapes like "\\ud800") cannot be encoded back to UTF-8.
_SURROGATES = "\ud800-\udfff"
_MESSAGE_DROP = re.compile(
    "[" + re.escape(_C0_C1.replace("\n", "").replace("\t", "")) + _SURROGATES + "]"
)
# Bidirectional overrides/isolates can make a name render as someone else's.
_NAME_FORBIDDEN = re.compile(
    "[" + re.escape(_C0_C1) + "\u202a-\u202e\u2066-\u2069\u200e\u200f" + _SURROGATES + "]"
)


def clean_message(text: str) -> str:
    """Message text as delivered: C0/C1 controls other than newline and tab removed."""
    if text.isprintable():
        return text
    return _MESSAGE_DROP.sub("", text)


def _check_label(value: str, what: str, code: str) -> str:
    if len(value) > MAX_NAME_CHARS:
        raise ProtocolError(code, f"{what} is longer than {MAX_NAME_CHARS} characters")
    if _NAME_FORBIDDEN.search(value):
        raise ProtocolError(code, f"{what} contains control characters")
    if any(ch.isspace() for ch in value):
        raise ProtocolError(code, f"{what} cannot contain spaces")
    return value


def normalize_name(raw: str | None) -> str:
    """A requested nickname as the server uses it; blank becomes DEFAULT_NAME."""
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        return DEFAULT_NAME
    return _check_label(name, "name", ErrorCode.BAD_NAME)


def normalize_room(raw: str) -> str:
    """A room name as the server uses it (same rules as names, but not blank)."""
    room = unicodedata.normalize("NFC", raw.strip())
    if not room:
        raise ProtocolError(ErrorCode.BAD_ROOM, "room name is blank")
    return _check_label(room, "room name", ErrorCode.BAD_ROOM)


def name_key(name: str) -> str:
    """Names and rooms are unique without regard to case."""
    return name.casefold()


def name_variant(name: str, n: int) -> str:
    """The n-th free variant of a taken name ("alice" -> "alice2"), within the length limit."""
    suffix = str(n)
    return name[: MAX_NAME_CHARS - len(suffix)] + suffix
