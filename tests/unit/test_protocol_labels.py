"""Unit tests of chatd.protocol.labels: which names and rooms are accepted, and the key that
decides when two of them are the same (PROTOCOL.txt 5.1, 5.2)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.protocol import ErrorCode, ProtocolError

# Shows as "alice" or nothing at all; the code point the error names comes second.
INVISIBLE = [
    ("al\u200bice", 0x200B),  # zero-width space
    ("al\u200cice", 0x200C),  # zero-width non-joiner
    ("al\u200dice", 0x200D),  # zero-width joiner
    ("al\u2060ice", 0x2060),  # word joiner
    ("al\u2061ice", 0x2061),  # function application (invisible operator)
    ("al\ufeffice", 0xFEFF),  # zero-width no-break space
    ("al\u00adice", 0x00AD),  # soft hyphen
    ("al\u034fice", 0x034F),  # combining grapheme joiner
    ("al\u061cice", 0x061C),  # Arabic letter mark
    ("al\u180eice", 0x180E),  # Mongolian vowel separator
    ("alice\ufe0f", 0xFE0F),  # variation selector 16
    ("alice\U000e0100", 0xE0100),  # variation selector 17
    ("alice\U000e0041", 0xE0041),  # tag letter A
    ("alice\U000e007f", 0xE007F),  # cancel tag
    ("\u3164", 0x3164),  # Hangul filler, alone
    ("\u115f", 0x115F),  # Hangul choseong filler
    ("\u1160", 0x1160),  # Hangul jungseong filler
    ("\uffa0", 0xFFA0),  # half-width Hangul filler
    ("\u2800", 0x2800),  # Braille pattern blank
    ("al\u2800ice", 0x2800),
    ("\u0600alice", 0x0600),  # Arabic number sign (category Cf, not default-ignorable)
    ("al\ufff9ice", 0xFFF9),  # interlinear annotation anchor (Cf)
    ("al\U0001d173ice", 0x1D173),  # musical symbol begin beam
    ("al\ue000ice", 0xE000),  # private use: no agreed look
    ("al\ufdd0ice", 0xFDD0),  # noncharacter
    ("al\U0001fffeice", 0x1FFFE),  # noncharacter
]

KEEP = ["alice", "민수", "지훈", "익명", "さくら", "サクラ", "山田太郎", "José", "Zoë", "Ødegaard",
        "Straße", "O'Brien", "x_y-z.1", "🐱", "Ελένη", "Дмитрий", "محمد", "דוד", "नमस्ते"]


@pytest.mark.parametrize(("name", "cp"), INVISIBLE, ids=[f"U+{cp:04X}" for _, cp in INVISIBLE])
def test_names_and_rooms_refuse_characters_that_show_nothing(name: str, cp: int) -> None:
    """PROTOCOL.txt 5.1, 5.2: format characters (Cf), default-ignorable code points, fillers,
    the Braille blank, private use and noncharacters give bad_name / bad_room, naming the
    character so a person can see what was wrong."""
    for fn, code, what in [(p.normalize_name, ErrorCode.BAD_NAME, "name"),
                           (p.normalize_room, ErrorCode.BAD_ROOM, "room name")]:
        with pytest.raises(ProtocolError) as info:
            fn(name)
        assert (info.value.code, info.value.message) == (
            code, f"{what} contains an invisible or format character (U+{cp:04X})")


@pytest.mark.parametrize("name", KEEP)
def test_names_in_every_script_are_kept_as_typed(name: str) -> None:
    """PROTOCOL.txt 5.1: the name shown is the one typed (in NFC), whatever its script."""
    assert p.normalize_name(name) == name
    assert p.normalize_room(name) == name


def test_the_shown_name_is_not_the_key() -> None:
    """PROTOCOL.txt 5.1: a look-alike keeps its own letters on screen; only the key folds."""
    cyrillic = "\u0430lice"
    assert p.normalize_name(cyrillic) == cyrillic
    assert p.name_key(cyrillic) == p.name_key("alice")


@pytest.mark.parametrize("look_alike", [
    "ALICE", "Alice",
    "\u0430lice",  # Cyrillic small a
    "\u0410LICE",  # Cyrillic capital A
    "\u0251lice",  # Latin small alpha
    "\u03b1lice",  # Greek small alpha
    "al\u0456ce",  # Cyrillic small i
    "\uff41\uff4c\uff49\uff43\uff45",  # full-width
    "\uff21\uff2c\uff29\uff23\uff25",  # full-width capitals
    "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # mathematical bold
    "\U0001d4b6\U0001d4c1\U0001d4be\U0001d4b8\U0001d452",  # mathematical script
    "a1ice",  # digit one for l
    "a|ice",  # vertical bar for l
    "a\u217cice",  # small Roman numeral fifty
])
def test_look_alikes_share_the_key_of_the_name(look_alike: str) -> None:
    """PROTOCOL.txt 5.1: uniqueness compares the confusable skeleton (UTS #39)."""
    assert p.name_key(look_alike) == p.name_key("alice")


@pytest.mark.parametrize(("a", "b"), [
    ("민수", "지훈"), ("민수", "민주"), ("지훈", "지운"), ("さくら", "サクラ"), ("山田", "田山"),
    ("José", "Jose"), ("José", "Josè"), ("Zoë", "Zoe"), ("Ødegaard", "Odegaard"),
    ("François", "Francois"), ("Łukasz", "Lukasz"),
    ("alice", "alice2"), ("ali", "all"), ("bill", "biii"),
    ("Ελένη", "Ελενη"), ("Дмитрий", "Дмитрии"),
])
def test_names_that_differ_by_more_than_looks_keep_apart(a: str, b: str) -> None:
    """PROTOCOL.txt 5.1: accents, strokes, kana systems and other syllables make
    different names."""
    assert p.name_key(a) != p.name_key(b)


def test_every_hangul_syllable_and_kana_keeps_its_own_key() -> None:
    """PROTOCOL.txt 5.1: no two precomposed Hangul syllables (11,172), hiragana or katakana
    share a key, so Korean and Japanese names stay as distinct as their spelling."""
    for first, last in [(0xAC00, 0xD7A3), (0x3041, 0x3096), (0x30A1, 0x30FA)]:
        keys = Counter(p.name_key(chr(c)) for c in range(first, last + 1))
        assert keys.most_common(1)[0][1] == 1, hex(first)


def _accepted(s: str) -> str | None:
    try:
        return p.normalize_name(s)
    except ProtocolError:
        return None


NAMES = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=32)


@settings(max_examples=500, deadline=None)
@given(NAMES)
def test_an_accepted_name_has_a_visible_non_empty_key(raw: str) -> None:
    """PROTOCOL.txt 5.1: no accepted name is invisible, and its key is a fixed point."""
    name = _accepted(raw)
    if name is None or name == p.DEFAULT_NAME:
        return
    key = p.name_key(name)
    assert key
    assert p.name_key(key) == key


@settings(max_examples=500, deadline=None)
@given(NAMES, st.sampled_from([chr(cp) for _, cp in INVISIBLE]),
       st.integers(0, 32))
def test_an_invisible_character_never_makes_a_new_name(raw: str, ch: str, at: int) -> None:
    """PROTOCOL.txt 5.1: slipping a character that shows nothing into an accepted name
    gives bad_name, never a second name that looks like the first."""
    name = _accepted(raw)
    if name is None or len(name) >= p.MAX_NAME_CHARS:
        return
    spoof = name[:at] + ch + name[at:]
    if unicodedata.normalize("NFC", spoof).strip() != spoof:
        return  # NFC or trimming changed it: not the attack this test is about
    with pytest.raises(ProtocolError) as info:
        p.normalize_name(spoof)
    assert info.value.code == ErrorCode.BAD_NAME


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
               min_size=1, max_size=32), st.data())
def test_case_never_separates_names(name: str, data: st.DataObject) -> None:
    """PROTOCOL.txt 5.1: names are unique ignoring case, as before the skeleton."""
    flips = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    other = "".join(c.swapcase() if f else c for c, f in zip(name, flips, strict=True))
    assert p.name_key(other) == p.name_key(name)


def test_ascii_keys_fold_character_by_character() -> None:
    """The ASCII shortcut of name_key equals the full fold for every pair of characters
    (a fold that crossed character boundaries would show up here)."""
    from chatd.protocol.labels import _key

    for a in map(chr, range(0x80)):
        for b in map(chr, range(0x80)):
            assert p.name_key(a + b) == _key(a + b), repr(a + b)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F), min_size=1, max_size=32))
def test_ascii_keys_equal_the_full_fold(name: str) -> None:
    from chatd.protocol.labels import _key

    assert p.name_key(name) == _key(name)


def _room_or_refusal(fn: Any, raw: str) -> tuple[str, str] | str:
    try:
        return fn(raw)  # type: ignore[no-any-return]
    except ProtocolError as exc:
        return (exc.code, exc.message)


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=40)
       | st.text(st.characters(max_codepoint=0x2100), max_size=40))
def test_a_room_the_quick_way_takes_is_what_the_rules_make_of_it(raw: str) -> None:
    """PROTOCOL.txt 5.2: normalize_room passes printable ASCII without a space as it is;
    for every string it gives what the full rules give (the room, or the same refusal)."""
    from chatd.protocol.labels import _normalized_room

    assert _room_or_refusal(p.normalize_room, raw) == _room_or_refusal(_normalized_room, raw)
    for edge in ("r" * 32, "r" * 33, "", "a\x7fb", "a\x1fb", "a\tb", "dev ", "#dev"):
        assert _room_or_refusal(p.normalize_room, edge) == \
            _room_or_refusal(_normalized_room, edge), repr(edge)
