"""chatd.accounts.mentions (PROTOCOL.txt 18.5): a line names its reader as a word, with
case, width and look-alike letters folded as names are (5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatd.accounts import mention as module
from chatd.accounts import mention_key, mention_words, mentioned, mentions
from chatd.protocol import name_key


@pytest.mark.parametrize("text", [
    "alice", "hi alice", "alice: look", "@alice", "Alice!", "ALICE?", "(alice)",
    "alice's idea", "thanks,alice", "x/alice/y", "«alice»",
    "\u0430lice",  # Cyrillic а
    "ａｌｉｃｅ",  # full-width
    "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # mathematical bold
    "al\u200bice",  # a zero-width space does not hide the name
    "line one\nand alice on line two",
])
def test_these_mention_alice(text: str) -> None:
    assert mentions(text, "alice")


@pytest.mark.parametrize("text", [
    "malice", "alice2", "alice_", "alicealice", "ali ce", "", "a", "alic", "Alicia",
    "alicé",  # an accent makes another name (5.1: José is not Jose)
    "alice\u0301",  # so does a combining one
])
def test_these_do_not(text: str) -> None:
    assert not mentions(text, "alice")


@pytest.mark.parametrize(("text", "name"), [
    ("I like c++.", "c++"), ("[m], hi", "[m]"), ("([m])", "[m]"), ("ping a.b!", "a.b"),
    ("José, hi", "José"), ("Jose\u0301, hi", "José"),  # decomposed, as some keyboards send
    ("안녕 민수야", "민수야"), ("민수 hi", "민수"), ("नमस्ते, दोस्त", "नमस्ते"),
    ("さくら!", "サクラ") if name_key("さくら") == name_key("サクラ") else ("さくら!", "さくら"),
    ("bob_ hi", "bob_"), ("hi 1337", "1337"),
])
def test_names_of_every_kind_are_found(text: str, name: str) -> None:
    assert mentions(text, name)


def test_a_name_holding_punctuation_is_not_found_inside_other_words() -> None:
    assert not mentions("x/a.b-c", "a.b")  # documented: between spaces, punctuation cut
    assert not mentions("nam", "[m]")
    assert not mentions("민수야", "민수")  # a word of letters is one word, as in English


def test_one_line_serves_every_reader() -> None:
    """The hub's use: the words of a line once, each reader's key once."""
    words = mention_words("@Bob and CAROL: lunch? (not dave's)")
    readers = {name: mention_key(name) for name in ("bob", "carol", "dave", "eve", "bo")}
    assert {name for name, key in readers.items() if key in words} == {"bob", "carol", "dave"}


def test_a_history_line_keeps_only_the_known_names_it_mentions() -> None:
    known = {mention_key(name) for name in ("bob", "carol", "Dave")}
    assert mentioned("@Bob, ask dave", known) == {"bob", "dave"}
    nobody = mentioned("nobody here", known)
    assert nobody == frozenset() and nobody is mentioned("nor here", known)  # shared


@given(st.text(min_size=1, max_size=12).filter(lambda s: not any(c.isspace() for c in s)))
def test_a_word_of_a_name_alone_mentions_it(name: str) -> None:
    assert mentions(name, name)
    assert mentions(f"hey {name} !", name)


def test_a_line_of_new_characters_learns_a_bounded_number_of_them() -> None:
    """A line of rare characters cannot make the server key thousands of them at once:
    NEW_CHARS_PER_LINE per line, the rest folded by case until later lines learn them."""
    rare = " ".join(chr(0x4E00 + i) for i in range(3000)) + " \u0430lice"
    module._char_keys.clear()
    mention_words(rare)
    assert len(module._char_keys) <= 128 + module.NEW_CHARS_PER_LINE
    for _ in range(3000 // module.NEW_CHARS_PER_LINE):
        mention_words(rare)
    assert mentions(rare, "alice")  # by now the Cyrillic а is known


def test_words_are_bounded_in_length() -> None:
    long = "a" * (module.MAX_WORD_CHARS + 1)
    assert mention_words(long) == frozenset()
    assert mention_words(f"{long}-alice") == frozenset({"alice"})
