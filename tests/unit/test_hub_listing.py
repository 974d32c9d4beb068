"""The names a welcome and a who list (PROTOCOL.txt 4.1, 4.7, 8.13), kept from one join
to the next (chatd.hub.state.Listing): whatever happens in a room, what it lists is
what listing its members anew gives."""

from __future__ import annotations

import random
from typing import Any

from chatd import protocol as p
from chatd.hub.state import Room, names_cost
from chatd.protocol import name_key
from tests.support.hub_world import FakePeer, World, only

HASH = "$scrypt$ln=14,r=8,p=1$" + "A" * 22 + "$" + "B" * 43  # never checked: tokens log in


def _anew(room: Room[Any], budget: int) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """What `Room.listed` gives, listed from scratch (the code before it kept them)."""
    names: dict[str, None] = {}
    opers: list[str] = []
    for s in room.members.values():
        if s.name in names:
            continue
        budget -= names_cost(s.name)
        if budget < 0:
            break
        names[s.name] = None
        if s.oper:
            opers.append(s.name)
    return tuple(names), tuple(opers), room.people - len(names)


def test_a_crowds_joins_list_the_names_kept_not_listed_anew() -> None:
    """Once the bound is reached, a join lists the very same names as the one before
    (the listing is kept, not made again from the room's members: 8.13's cost)."""
    w = World(names_bytes=10 * names_cost("u00"))
    for i in range(12):
        w.join(f"u{i:02}")
    room = w.hub.state.rooms["lobby"]
    first = room.listed(w.hub.config.names_bytes)[0]
    last = w.join("u99")
    welcome = only(w.take(last), "welcome")
    assert welcome["users"] == [f"u{i:02}" for i in range(10)] and welcome["more"] == 3
    assert room.listed(w.hub.config.names_bytes)[0] is first


def test_what_a_room_lists_stays_what_listing_it_anew_gives() -> None:
    """A seeded walk of joins, parts, leaves, losses, resumes, renames, operators and
    further devices (18.4) in two rooms, with a bound of a few names (some of them of
    several UTF-8 bytes a letter): after every step each room lists what listing its
    members anew gives, and the welcome of a newcomer says so."""
    rng = random.Random(29)
    w = World(names_bytes=8 * names_cost("ab0"), opers=(("root", "secret"),), max_devices=3)
    w.hub.acc.policy.accounts.add("alice", HASH, w.now)
    budget = w.hub.config.names_bytes
    live: list[FakePeer] = []
    tokens: list[str] = []
    walked: set[str] = set()

    def joined(peer: FakePeer) -> None:
        if w.hub.state.status(peer) is not None:
            live.append(peer)
            welcome = only(w.take(peer), "welcome")
            tokens.append(welcome["resume"])
            room = w.hub.state.rooms.get(name_key(welcome["room"]))
            if room is not None:
                users, _, more = _anew(room, budget)
                assert (welcome["users"], welcome.get("more", 0)) == (list(users), more)

    for n in range(600):
        step = rng.choice(["join", "join", "device", "device", "enter", "part", "part",
                           "quit", "quit", "lose", "resume", "nick", "oper", "account"])
        peer = rng.choice(live) if live else None
        if step == "join" or peer is None:
            joined(w.join(rng.choice(["ab", "çé", "x", "long" * 3]) + str(n),
                          room=rng.choice(["lobby", "dev"])))
        elif step == "device":
            token, _ = w.hub.acc.policy.tokens.issue(name_key("alice"), w.now)
            joined(w.join("alice", room=rng.choice(["lobby", "dev"]), login_token=token))
        elif step in ("enter", "part"):
            where = rng.choice(["lobby", "dev"])
            w.send(peer, p.Join(where) if step == "enter" else p.Part(where))
        elif step == "quit":
            live.remove(peer)
            w.send(peer, p.Disconnect())
        elif step == "lose":
            live.remove(peer)
            w.lost(peer)
        elif step == "resume" and tokens:
            joined(w.join("alice", resume=tokens.pop(rng.randrange(len(tokens)))))
        elif step == "nick":
            w.send(peer, p.Nick(f"n{n}"))
        elif step == "oper":
            w.send(peer, p.Oper("root", "secret"))
        elif step == "account" and peer is not None:
            w.send(peer, p.Oper("root", "secret"))
            w.send(peer, p.AccountAdmin("alice", operator=rng.random() < 0.5))
        walked.add(step)
        for room in w.hub.state.rooms.values():
            assert room.listed(budget) == _anew(room, budget), (n, step, room.key)
        for peer in live:
            w.take(peer)
    assert walked >= {"device", "enter", "part", "quit", "lose", "resume", "nick", "oper",
                      "account"}
    assert any(_anew(room, budget)[2] for room in w.hub.state.rooms.values())  # bound met
