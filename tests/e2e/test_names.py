"""End to end: look-alike and invisible names against a real chatd (PROTOCOL.txt 5.1, 5.2).

Names are unique by their key: case-folded, then the Unicode UTS #39 confusable skeleton.
A name spelt with other letters that look the same is taken like a case variant; a name
or room holding a character that shows nothing is refused.
"""

from __future__ import annotations

from tests.support.harness import Chatd, Client, StartChatd, is_join

# Each looks like "alice" on a screen (the first, only in capitals, as today).
LOOK_ALIKES = [
    "ALICE",
    "\u0430lice",  # Cyrillic small a
    "\uff41\uff4c\uff49\uff43\uff45",  # full-width
    "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # mathematical bold
    "\u0251lice",  # Latin small alpha
    "al\u0456ce",  # Cyrillic small Byelorussian-Ukrainian i
]

# Each shows as "alice" or as nothing at all.
INVISIBLE = [
    "al\u200bice",  # zero-width space
    "al\u200cice",  # zero-width non-joiner
    "al\u200dice",  # zero-width joiner
    "al\u2060ice",  # word joiner
    "al\ufeffice",  # zero-width no-break space (BOM)
    "al\u00adice",  # soft hyphen
    "al\u034fice",  # combining grapheme joiner
    "alice\U000e0041\U000e007f",  # tag characters
    "\u3164",  # Hangul filler alone: an invisible name
    "\u115f",  # Hangul choseong filler
    "\uffa0",  # half-width Hangul filler
    "\u2800",  # Braille pattern blank
    "al\u2800ice",
]


async def test_look_alikes_of_a_present_name_get_a_variant_on_connect(chatd: Chatd) -> None:
    """5.1: each look-alike of "alice" gets the next free variant, as "ALICE" always did;
    the variants collide too, so the n-th look-alike is the (n+1)-th alice."""
    alice = await Client.joined(chatd.port, "alice")
    others = []
    for n, name in enumerate(LOOK_ALIKES, start=2):
        other = await Client.open(chatd.port)
        welcome = await other.join(name)
        assert welcome["name"] == f"{name}{n}", (name, welcome)
        assert welcome["notice"] == f"{name} is taken, so you are {name}{n}"
        await alice.recv_until(is_join(welcome["name"]))
        others.append(other)
    await alice.send({"type": "who"})
    users = (await alice.recv("who"))["users"]
    assert users == ["alice", *(f"{name}{n}" for n, name in enumerate(LOOK_ALIKES, start=2))]


async def test_look_alike_nick_is_name_taken(chatd: Chatd) -> None:
    """5.1, 3.7: renaming to a look-alike of a present name gets name_taken."""
    alice = await Client.joined(chatd.port, "alice")
    bob = await Client.joined(chatd.port, "bob")
    await alice.recv_until(is_join("bob"))
    for name in LOOK_ALIKES:
        await bob.send({"type": "nick", "name": name})
        error = await bob.recv("error")
        assert (error["code"], error["message"]) == ("name_taken", "alice is taken"), name
    await bob.send({"type": "who"})
    assert (await bob.recv("who"))["users"] == ["alice", "bob"]


async def test_invisible_characters_in_names_are_bad_name(chatd: Chatd) -> None:
    """5.1: a name with a format, default-ignorable or blank character gets bad_name and the
    connection stays unjoined; it may then connect with a good name."""
    client = await Client.open(chatd.port)
    for name in INVISIBLE:
        await client.send({"type": "connect", "name": name})
        error = await client.recv("error")
        assert error["code"] == "bad_name", name
        assert "invisible or format character (U+" in error["message"]
    welcome = await client.join("alice")
    assert (welcome["name"], welcome["users"]) == ("alice", ["alice"])


async def test_invisible_name_in_text_mode_is_bad_name(chatd: Chatd) -> None:
    """6.1, 5.1: the name line of text mode follows the same rules."""
    client = await Client.open(chatd.port)
    await client.send("al\u200bice\n".encode())
    assert (await client.read_line()).startswith(b"! bad_name: name contains an invisible")
    await client.send(b"alice\n")
    assert (await client.read_line()).startswith(b"* welcome, alice: you are in lobby")


async def test_rooms_refuse_invisibles_and_fold_look_alikes(chatd: Chatd) -> None:
    """5.2: a room name with an invisible character gets bad_room; a look-alike of an
    existing room is that room (its name stays the first spelling)."""
    alice = await Client.joined(chatd.port, "alice")
    bob = await Client.joined(chatd.port, "bob")
    await alice.recv_until(is_join("bob"))
    await bob.send({"type": "join", "room": "de\u200bv"})
    assert (await bob.recv("error"))["code"] == "bad_room"
    await alice.send({"type": "join", "room": "dev"})
    await alice.recv_until(lambda m: m["type"] == "connect" and m["room"] == "dev")
    await bob.send({"type": "join", "room": "d\u0435v"})  # Cyrillic small ie
    joined = await alice.recv_until(lambda m: m["type"] == "connect")
    assert (joined[-1]["name"], joined[-1]["room"]) == ("bob", "dev")
    await alice.send({"type": "rooms"})
    assert (await alice.recv("rooms"))["rooms"] == [{"room": "dev", "users": 2},
                                                    {"room": "lobby", "users": 2}]


async def test_korean_japanese_and_accented_names_stay_distinct(
        start_chatd: StartChatd) -> None:
    """5.1: names in other scripts keep working, each as typed, and names that differ by
    more than looks (an accent, a kana system, another syllable) are different names."""
    chatd = await start_chatd("--rate", "0", "--max-per-ip", "0")  # 13 users, one address
    names = ["민수", "지훈", "민주", "さくら", "サクラ", "山田", "José", "Jose", "Zoë", "Zoe",
             "Ødegaard", "Straße"]
    clients = [await Client.joined(chatd.port, name) for name in names]
    assert [c.name for c in clients] == names
    await clients[0].recv_until(is_join(names[-1]))
    await clients[0].send({"type": "who"})
    assert (await clients[0].recv("who"))["users"] == names
    late = await Client.open(chatd.port)
    welcome = await late.join("STRASSE")  # a case variant of a present name is still taken
    assert welcome["name"] == "STRASSE2"
