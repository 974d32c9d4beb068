"""Which readers a room line names (PROTOCOL.txt 18.6), on the broadcast path.

Only JSON readers need to know (text mode shows nothing more), and only those attached
here: they are indexed by the mention key of their name (chatd.accounts.mention_key),
kept as they attach, detach and are renamed. A line then costs its words, never its
readers: its folded words are looked up in the index. For the common line, ASCII
text, the words come from one translate and one split in C and one set test tells that
nearly every line names nobody (about 0.4 microseconds a line of 9 words); a line that
may name a reader whose name the quick way cannot list (punctuation, many m's), or
that is not ASCII, takes chatd.accounts.mentioned's full rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from chatd.accounts import mention_key, mentioned
from chatd.hub.state import Session

# ASCII folded as mention_key folds it, as bytes, one byte a character: what is no
# word character splits words, and "m", which folds to "rn", stays "m". A key is then
# made canonical with "rn" made "m" (`_fast`), and indexed under each way of writing
# its m's ("m" or "rn": `_spellings`), so that a line's words need no replace at all.
_FOLD: Final = bytes(
    (ord(mention_key(chr(c))) if len(mention_key(chr(c))) == 1 else ord("m"))
    if chr(c).isalnum() or chr(c) == "_" else 0x20 for c in range(0x80)) + bytes(range(0x80, 0x100))
assert all(len(mention_key(chr(c))) == 1 or mention_key(chr(c)) == "rn"
           for c in range(0x80) if chr(c).isalnum())


def _fast(ascii_text: bytes) -> bytes:
    return ascii_text.translate(_FOLD).replace(b"rn", b"m")


# Keys with more m's take the full rule: their spellings double with each m.
MAX_M: Final = 3


def _spellings(key: str) -> list[bytes] | None:
    """Every ASCII word (folded by _FOLD) that names `key`, an ASCII mention key: its
    canonical fold with each "m" written "m" or "rn"; None if the quick way cannot tell
    (punctuation in the key, or more than MAX_M m's)."""
    if not key.replace("_", "a").isalnum():
        return None
    parts = _fast(key.encode()).split(b"m")
    if len(parts) > MAX_M + 1:
        return None
    spellings = [parts[0]]
    for part in parts[1:]:
        spellings = [start + m + part for start in spellings for m in (b"m", b"rn")]
    return spellings


class MentionIndex:
    __slots__ = ("ascii", "ascii_words", "by_key", "slow", "wordless")

    def __init__(self) -> None:
        self.by_key: dict[str, list[Session[Any]]] = {}  # mention key -> local JSON sessions
        # Each spelling of each ASCII key (`_spellings`) -> the mention key: an ASCII
        # line can name no other (ASCII folds to ASCII).
        self.ascii: dict[bytes, str] = {}
        # Its keys again: a set tests a list of words faster than a dict's keys view.
        self.ascii_words: set[bytes] = set()
        # ASCII keys `_spellings` cannot list, by the longest word of their canonical fold
        # (`_fast`): a line takes the full rule only if it has one of these words (a
        # name with punctuation or many m's made every line of the server take it: 3.4
        # instead of 0.5 us a line). Those with no word at all: always the full rule.
        self.slow: dict[bytes, int] = {}
        self.wordless = 0

    def add(self, session: Session[Any], name: str | None = None) -> None:
        name = name or session.name
        key = mention_key(name)
        if key == name:
            key = name  # one string for both (most names are their own key)
        sessions = self.by_key.get(key)
        if sessions is None:
            self.by_key[key] = [session]
            if key.isascii():
                spellings = _spellings(key)
                if spellings is None:
                    self._count_slow(key, 1)
                else:
                    self.ascii.update(dict.fromkeys(spellings, key))
                    self.ascii_words.update(spellings)
        else:
            sessions.append(session)

    def remove(self, session: Session[Any], name: str | None = None) -> None:
        key = mention_key(name or session.name)
        sessions = self.by_key.get(key)
        if sessions is None or session not in sessions:
            return
        sessions.remove(session)
        if not sessions:
            del self.by_key[key]
            if key.isascii():
                spellings = _spellings(key)
                if spellings is None:
                    self._count_slow(key, -1)
                else:
                    for spelling in spellings:
                        del self.ascii[spelling]
                    self.ascii_words.difference_update(spellings)

    def _count_slow(self, key: str, change: int) -> None:
        words = _fast(key.encode()).split()
        if not words:
            self.wordless += change
            return
        word = max(words, key=len)  # a line naming the key has all its words: the rarest
        count = self.slow.get(word, 0) + change
        if count:
            self.slow[word] = count
        else:
            del self.slow[word]

    def readers(self, text: str, room: str, sender: Session[Any]) -> tuple[Any, ...]:
        """The local JSON peers in `room` (a key) that `text` names, the sender (every
        device of it, 18.4) aside."""
        by_key = self.by_key
        if not by_key:
            return ()
        found: Iterable[str]
        if text.isascii() and not self.wordless:
            # Inline, no helper call: nearly every line names nobody, and this test is
            # all it costs the broadcast path (bench.hotpath, mentions on by default).
            folded = text.encode().translate(_FOLD)
            if self.slow and not self.slow.keys().isdisjoint(
                    folded.replace(b"rn", b"m").split()):
                found = mentioned(text, by_key)  # it may name a slow key: all of them
            else:
                words = folded.split()
                if self.ascii_words.isdisjoint(words):
                    return ()
                # A set: two spellings of one key ("m" and "rn") in a line name it once.
                found = set(map(self.ascii.__getitem__, self.ascii_words.intersection(words)))
        else:
            found = mentioned(text, by_key)
        # Loops, not comprehensions (a frame each): a line that names only its sender
        # (the benchmark's lines do) ends here with nobody.
        peers = []
        name = sender.name
        for key in found:
            for s in by_key[key]:
                if s.name != name and s.peer is not None and room in s.rooms:
                    peers.append(s.peer)
        return tuple(peers) if peers else ()
