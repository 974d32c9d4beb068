"""Mentions (PROTOCOL.txt 18.5): does a line name its reader?

A line mentions a user when one of its words, compared letter by letter by the key of
names (5.1: case, width and look-alike letters folded), is the user's name. A word is
a run of letters, digits, marks and "_", or a whole space-separated token with at most
three characters of punctuation cut from either end: "alice", "@Alice:", alice with a
Cyrillic "a", in full-width letters, and "alice's" mention alice; "malice", "alice2" and
"alice_" do not; "c++." and "[m]," mention the users "c++" and "[m]".

The work is split so that a line costs its words, never its readers: `mention_words`
folds the words of a line once (at most a few microseconds a word), and each reader is
one set lookup of its `mention_key`, computed once per reader. A hub can also go the
other way: look the words up in its names (a room of 10,000 costs the same as a room
of 2).

Folding letter by letter is what keeps this fast: each character's key is computed
once (glyphguard's skeleton costs some 10 microseconds a character) and kept in a
bounded table; a line then folds with one str.translate. Keying every word with
name_key instead cost 70 microseconds a non-ASCII word. A line bringing more than
NEW_CHARS_PER_LINE characters never seen before has the rest folded by case only, so a
line of rare characters cannot stall the server; they are learnt by the next lines.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Container
from typing import Final

from chatd.protocol import name_key

MAX_WORD_CHARS: Final = 64  # a name has at most 32 characters; some fold to nothing
MAX_PUNCTUATION: Final = 3  # characters of punctuation cut from either end of a token
NEW_CHARS_PER_LINE: Final = 64  # characters folded by name_key for one line, at most
MAX_CHAR_KEYS: Final = 20_000  # characters whose key is kept (about 2 MiB)

_char_keys: dict[int, str] = {}


_ASCII_WORDS: Final = re.compile(r"\w+", re.ASCII)


def _is_word(ch: str) -> bool:
    """Letters, digits, "_", and every mark (category M): a vowel sign or an accent left
    decomposed never splits a word (re's \\w knows no marks)."""
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def _runs(token: str) -> list[tuple[int, int]]:
    """Where the runs of word characters of a token start and end."""
    if token.isascii():
        return [m.span() for m in _ASCII_WORDS.finditer(token)]
    runs: list[tuple[int, int]] = []
    start = -1
    for i, ch in enumerate(token):
        if _is_word(ch):
            if start < 0:
                start = i
        elif start >= 0:
            runs.append((start, i))
            start = -1
    if start >= 0:
        runs.append((start, len(token)))
    return runs


@functools.cache
def _ascii_table() -> dict[int, str]:
    return {c: name_key(chr(c)) for c in range(0x80)}


def _table(text: str) -> dict[int, str]:
    """The fold table, taught the characters of `text` it lacks (within the budgets)."""
    table = _char_keys
    if not table:
        table.update(_ascii_table())
    if text.isascii():
        return table
    new = 0
    for ch in set(text):
        cp = ord(ch)
        if cp in table:
            continue
        if new >= NEW_CHARS_PER_LINE or len(table) >= MAX_CHAR_KEYS:
            break
        table[cp] = name_key(ch)
        new += 1
    return table


def _fold(text: str, table: dict[int, str]) -> str:
    folded = text.translate(table)
    return folded if folded.isascii() else folded.casefold()  # letters not yet learnt


def mention_key(name: str) -> str:
    """What a reader's name is matched by; compute it once per reader."""
    name = unicodedata.normalize("NFC", name)
    return _fold(name, _table(name))


def mention_words(text: str) -> frozenset[str]:
    """The folded words of a line: it mentions every reader whose mention_key is in it."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    table = _table(text)
    found: set[str] = set()
    for token in set(text.split()):  # names hold no white space
        if token.isalnum():  # the common word: itself, and nothing inside it
            if len(token) <= MAX_WORD_CHARS:
                found.add(token)
            continue
        runs = _runs(token)
        for start, end in runs:
            if end - start <= MAX_WORD_CHARS:
                found.add(token[start:end])
        # The token with punctuation cut from its ends, for names holding punctuation
        # ("c++", "[m]"): cut no further than the first and last word character.
        lead = min(MAX_PUNCTUATION, runs[0][0] if runs else len(token))
        trail = min(MAX_PUNCTUATION, len(token) - runs[-1][1] if runs else len(token))
        for i in range(lead + 1):
            for j in range(len(token) - trail, len(token) + 1):
                if 0 < j - i <= MAX_WORD_CHARS:
                    found.add(token[i:j])
    return frozenset(_fold(word, table) for word in found)


_NOBODY: Final[frozenset[str]] = frozenset()


def mentioned(text: str, known: Container[str]) -> frozenset[str]:
    """The mention keys of `known` (the hub's: users online and accounts) that `text`
    names. A hub keeps this with a history line when it is added (nearly always the
    one shared empty set: no memory), so counting a reader's unread mentions later
    (18.5) costs a set lookup a line instead of the line's words again."""
    found = [key for key in mention_words(text) if key in known]
    return frozenset(found) if found else _NOBODY


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as a word (both computed here: for one reader; a hub
    computes mention_words once per line and mention_key once per reader)."""
    return mention_key(name) in mention_words(text)
