"""Labels: names and rooms, and the character rules they share with message text
(PROTOCOL.txt section 5).

A *label* is a name or a room as the user typed it, trimmed and put in NFC; that is what
everyone sees. Its *key* (`name_key`) is what uniqueness compares: the label case-folded,
then reduced to its confusable skeleton (Unicode UTS #39), so that look-alikes (alice
spelt with a Cyrillic a, in full-width or in mathematical bold letters) share the key of
"alice". A label never holds a character that shows nothing (format characters,
default-ignorable code points, fillers): those would make two different labels look the
same, or a label look like nothing at all.
"""

from __future__ import annotations

import functools
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
# The Unicode tables (glyphguard) cost ~50 ms and ~12 MB to import and only the server
# needs them (chatc imports this package too), so the functions that use them import them
# on first use: the first name or room a server checks pays for it once.

# A bound on repeated folding, as PRECIS bounds its own; today one more fold settles every
# single character of Unicode.
_MAX_FOLDS = 4
# U+2800 BRAILLE PATTERN BLANK is a symbol, but it draws as a blank.
_BLANK_SYMBOLS = frozenset({0x2800})


def clean_message(text: str) -> str:
    """Message text as delivered: C0/C1 controls other than newline and tab removed."""
    if text.isprintable():
        return text
    return _MESSAGE_DROP.sub("", text)


def _invisible(value: str) -> str | None:
    """The first character of `value` that shows nothing, if any: a format character, a
    default-ignorable code point (zero-width characters, fillers, variation selectors,
    tags), private use (no agreed look), a noncharacter or a blank symbol. Properties come
    from glyphguard's Unicode tables, newer than the interpreter's."""
    from glyphguard import ucd  # on first use (see the top)

    for ch in value:
        cp = ord(ch)
        if (ucd.is_default_ignorable(cp) or ucd.general_category(cp) in ("Cf", "Co")
                or ucd.is_noncharacter(cp) or cp in _BLANK_SYMBOLS):
            return ch
    return None


def _check_label(value: str, what: str, code: str) -> str:
    if len(value) > MAX_NAME_CHARS:
        raise ProtocolError(code, f"{what} is longer than {MAX_NAME_CHARS} characters")
    if _NAME_FORBIDDEN.search(value):
        raise ProtocolError(code, f"{what} contains control characters")
    if any(ch.isspace() for ch in value):
        raise ProtocolError(code, f"{what} cannot contain spaces")
    if not value.isascii():
        ch = _invisible(value)
        if ch is not None:
            raise ProtocolError(
                code, f"{what} contains an invisible or format character (U+{ord(ch):04X})")
    return value


def normalize_name(raw: str | None) -> str:
    """A requested nickname as the server uses it; blank becomes DEFAULT_NAME."""
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        return DEFAULT_NAME
    return _check_label(name, "name", ErrorCode.BAD_NAME)


def normalize_room(raw: str) -> str:
    """A room name as the server uses it (same rules as names, but not blank)."""
    # Printable ASCII without a space is already what the rules make of it (NFC, strip
    # and every check leave it as it is): a line sent with "room", as every line of a
    # reader of several rooms is, is not normalized character by character.
    if raw.isascii() and raw.isprintable() and " " not in raw and 0 < len(raw) <= MAX_NAME_CHARS:
        return raw
    return _normalized_room(raw)


def _normalized_room(raw: str) -> str:
    room = unicodedata.normalize("NFC", raw.strip())
    if not room:
        raise ProtocolError(ErrorCode.BAD_ROOM, "room name is blank")
    return _check_label(room, "room name", ErrorCode.BAD_ROOM)


def _fold(label: str) -> str:
    from glyphguard import skeleton  # on first use (see the top)

    folded = unicodedata.normalize("NFKC", label.casefold())
    return unicodedata.normalize("NFC", skeleton(folded)).casefold()


def _key(label: str) -> str:
    key = _fold(label)
    for _ in range(_MAX_FOLDS):
        again = _fold(key)
        if again == key:
            break
        key = again
    return key


@functools.cache
def _ascii_keys() -> dict[int, str]:
    """Folding ASCII goes character by character (tested against `_key` for every pair),
    so ASCII labels, the commonest, take one str.translate instead of microseconds."""
    return str.maketrans({chr(c): _key(chr(c)) for c in range(0x80)})


def name_key(name: str) -> str:
    """What uniqueness compares, for names and rooms alike: the UTS #39 confusable skeleton
    of the case-folded, NFKC-folded label, case-folded again (the skeleton maps some
    characters to capitals, such as the digit 0 to O).

    NFKC folds full-width and mathematical letters, as ergo folds width before its
    skeleton. Case is folded first so that case variants always share a key; the price
    is that a capital I and a small l, alike only in capitals, are not merged. A skeleton
    can hold characters that fold further ("%" -> "°/₀" -> "°/o"), so folding repeats
    until nothing changes: every string in such a chain gets the same key."""
    if name.isascii():
        return name.translate(_ascii_keys())
    return _key(name)


def name_variant(name: str, n: int) -> str:
    """The n-th free variant of a taken name ("alice" -> "alice2"), within the length limit."""
    suffix = str(n)
    return name[: MAX_NAME_CHARS - len(suffix)] + suffix
