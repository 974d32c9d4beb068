"""chatd.hub.mentions (PROTOCOL.txt 18.6): the readers a room line names, found on the
broadcast path. Its quick way for ASCII lines (one translate, one split, one set test)
must find exactly whom chatd.accounts.mentioned's full rule finds."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from chatd.accounts import mentioned
from chatd.hub.mentions import MentionIndex
from chatd.hub.state import Session

# Letters that fold together (0/o, 1/l/I, rn/m, case) and what splits words.
_NAME_CHARS = "abilmnorsuxAILMORS01_"
_LINE_CHARS = _NAME_CHARS + " .,:!?@'-()"


def _session(name: str, room: str = "lobby") -> Session[Any]:
    session: Session[Any] = Session(sid=name, name=name, text=False, token_hash="",
                                    origin=None)
    session.peer = f"peer of {name}"
    session.rooms[room] = ("", 0)  # type: ignore[assignment]
    return session


def _index(names: list[str]) -> tuple[MentionIndex, list[Session[Any]]]:
    index = MentionIndex()
    sessions = [_session(name) for name in names]
    for session in sessions:
        index.add(session)
    return index, sessions


def _by_full_rule(index: MentionIndex, text: str, sender: Session[Any]) -> set[Any]:
    return {s.peer for key in mentioned(text, index.by_key) for s in index.by_key[key]
            if s is not sender}


@given(st.lists(st.text(_NAME_CHARS, min_size=1, max_size=8), min_size=1, max_size=6,
                unique=True),
       st.text(_LINE_CHARS, max_size=60))
def test_the_quick_way_finds_whom_the_full_rule_finds(names: list[str], text: str) -> None:
    index, sessions = _index(names)
    assume(not index.slow)  # the quick way is the one taken
    found = index.readers(text, "lobby", sessions[0])
    assert sorted(found) == sorted(_by_full_rule(index, text, sessions[0]))


@given(st.lists(st.text(_NAME_CHARS, min_size=1, max_size=8), min_size=1, max_size=6,
                unique=True),
       st.lists(st.text(_NAME_CHARS, min_size=1, max_size=8), max_size=8))
def test_a_line_of_the_names_themselves_agrees_too(names: list[str], words: list[str]
                                                   ) -> None:
    """Lines that do name someone (random text mostly names nobody)."""
    index, sessions = _index(names)
    text = " ".join([*words, *names[1:]])
    found = index.readers(text, "lobby", sessions[0])
    assert sorted(found) == sorted(_by_full_rule(index, text, sessions[0]))
    assert len(found) >= len(names) - 1


def test_look_alikes_are_found_the_quick_way() -> None:
    index, sessions = _index(["sender", "Marvin", "bill", "olaf"])
    found = index.readers("hi rnarvin, BI1L and 0LAF!", "lobby", sessions[0])
    assert sorted(found) == ["peer of Marvin", "peer of bill", "peer of olaf"]
    assert index.readers("malice marvins billy", "lobby", sessions[0]) == ()


def test_a_name_written_two_ways_in_one_line_is_one_mention() -> None:
    """PROTOCOL.txt 18.6: "rn" and "m" are one spelling; a reader named both ways in a
    line is named once (hypothesis found it counted twice: names "0", "M", line "Rn M")."""
    index, sessions = _index(["sender", "M"])
    assert index.readers("Rn M", "lobby", sessions[0]) == ("peer of M",)


def test_only_readers_of_the_room_and_never_the_sender() -> None:
    index, (bob, carol) = _index(["bob", "carol"])
    carol.rooms.clear()
    assert index.readers("bob carol", "lobby", bob) == ()
    index.remove(carol)
    index.remove(bob)
    assert index.by_key == {} and index.ascii == {} and not index.ascii_words


def test_a_key_is_indexed_under_each_way_of_writing_its_ms() -> None:
    """A line's words are then only translated: no replace of "rn" on the hot path."""
    index, _ = _index(["Emma"])
    assert index.ascii_words == {b"emma", b"emrna", b"ernma", b"ernrna"}
    assert index.readers("hi ERNRNA", "lobby", _session("x")) == ("peer of Emma",)


def test_a_name_of_many_ms_takes_the_full_rule_and_is_still_found() -> None:
    index, (sender, many, _) = _index(["sender", "mmmm", "bob"])
    assert index.slow == {b"mmmm": 1}
    assert sorted(index.readers("hi rnmrnm and b0b", "lobby", sender)) == [
        "peer of bob", "peer of mmmm"]
    index.remove(many)
    assert index.slow == {}
    assert index.readers("hi rnmrnm and BOB", "lobby", sender) == ("peer of bob",)


_PUNCTUATED = st.text(_NAME_CHARS + ".-+[]", min_size=1, max_size=8).filter(
    lambda name: any(c.isalnum() for c in name))


@given(st.lists(st.text(_NAME_CHARS, min_size=1, max_size=8) | _PUNCTUATED
                | st.sampled_from(["mmmm", "rnmmrnm", "c++", "[m]", "a.b", "x-y"]),
                min_size=1, max_size=6, unique=True),
       st.lists(st.text(_LINE_CHARS, max_size=12) | _PUNCTUATED, max_size=8))
def test_with_names_the_quick_way_cannot_list_every_reader_is_still_found(
        names: list[str], words: list[str]) -> None:
    """A line takes the full rule only when it has the longest word of such a name."""
    index, sessions = _index(names)
    for text in (" ".join(words), " ".join([*words, *names[1:]])):
        found = index.readers(text, "lobby", sessions[0])
        assert sorted(found) == sorted(_by_full_rule(index, text, sessions[0]))


def test_one_punctuated_name_leaves_other_lines_the_quick_way() -> None:
    index, (sender, _, _) = _index(["sender", "a.bc", "bob"])
    assert index.slow == {b"bc": 1}
    assert index.readers("see you, b0b", "lobby", sender) == ("peer of bob",)
    assert sorted(index.readers("ask a.bc or bob", "lobby", sender)) == [
        "peer of a.bc", "peer of bob"]
