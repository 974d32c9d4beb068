"""chatd.housekeeping.Schedule: asking only the links whose time has come is asking them
all every turn (PROTOCOL.txt 8.4, 8.5), within the turn's limit and its memory bound."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.effects import Send
from chatd.housekeeping import SHRINK_SLACK, UNJOINED_EVERY, Schedule
from chatd.link import Link, LinkConfig

T0 = 1000.0
PING = b'{"type":"ping"}\n'


@dataclass(eq=False)
class Conn:
    """A connection as the housekeeper sees it."""

    cid: int
    link: Link[int]
    closing: bool = False
    actions: list[Any] = field(default_factory=list)


def started(cid: int, how: str, config: LinkConfig) -> Conn:
    link = Link(cid, config, T0)
    link.receive_data(b'{"type":"connect","name":"a"}\n' if how == "json" else b"nc-user\n",
                      T0)
    link.settle(True, T0)
    return Conn(cid, link)


def perform_into(conns: dict[int, Conn]) -> Any:
    def perform(actions: Sequence[Any]) -> None:
        conns[actions[0].peer].actions.extend(actions)
    return perform


STEP = st.one_of(
    # A turn comes later than the last (time.monotonic() between sleeps).
    st.tuples(st.just("turn"), st.floats(0.001, 30)),
    st.tuples(st.just("data"), st.integers(0, 5),
              st.sampled_from([b'{"type":"pong"}\n', b'{"type":"message","message":"hi"}\n',
                               b"half a li", b"ne\n", b"\n"])),
    st.tuples(st.just("forget"), st.integers(0, 5)),
)


@given(st.lists(st.sampled_from(["json", "text"]), min_size=1, max_size=6),
       st.sampled_from([(25, 20), (10, 40), (0, 20), (1, 0.5)]),
       st.lists(STEP, max_size=40))
@settings(max_examples=300)
def test_the_schedule_asks_as_asking_every_link_every_turn(
        starts: list[str], ping: tuple[float, float], steps: list[tuple[Any, ...]]) -> None:
    """Joined links (whose deadlines are the keepalive's) act at the same turns with the
    same actions whether the schedule asks them or every link is asked every turn."""
    config = LinkConfig(rate=0, ping_interval=ping[0], ping_timeout=ping[1])
    every = {cid: started(cid, how, config) for cid, how in enumerate(starts)}
    asked = {cid: started(cid, how, config) for cid, how in enumerate(starts)}
    schedule = Schedule()
    for conn in asked.values():
        schedule.watch(conn)
    perform = perform_into(asked)
    now = T0
    for step in steps:
        if step[0] == "turn":
            now += step[1]
            for conn in every.values():
                conn.actions.extend(conn.link.tick(now))
            schedule.ask(now, perform, most=len(starts))
            for cid, conn in every.items():
                assert asked[cid].actions == conn.actions, (cid, now)
        elif step[1] in every:
            if step[0] == "data":
                every[step[1]].link.receive_data(step[2], now)
                asked[step[1]].link.receive_data(step[2], now)
            else:
                del every[step[1]]
                schedule.forget(asked.pop(step[1]))


def test_a_turn_acts_for_at_most_its_limit_the_earliest_first() -> None:
    """A crowd seated at once is pinged over several turns, in the order it fell due."""
    config = LinkConfig(rate=0, ping_interval=25, ping_timeout=20)
    conns = {cid: started(cid, "json", config) for cid in range(30)}
    schedule = Schedule()
    for conn in conns.values():
        schedule.watch(conn)
    perform = perform_into(conns)
    assert schedule.next_time() == 0.0  # new ones: asked at the next turn
    assert schedule.ask(T0, perform) == 0  # each learns its time: T0 + 25
    assert schedule.next_time() == T0 + 25  # the housekeeper sleeps until then
    for cid in range(30):
        conns[cid].link.receive_data(b"\n", T0 + cid / 100)  # due in this order after all
    assert schedule.ask(T0 + 30, perform, most=13) == 13
    pinged = [cid for cid, conn in conns.items() if conn.actions]
    assert pinged == list(range(13))
    assert all(isinstance(a, Send) and a.data == PING for a in conns[0].actions)
    assert schedule.ask(T0 + 30.02, perform, most=13) == 13
    assert schedule.ask(T0 + 30.04, perform, most=13) == 4
    assert all(conn.actions for conn in conns.values())


def test_a_link_not_joined_yet_is_asked_each_second_until_its_registration_timeout() -> None:
    config = LinkConfig(rate=0, registration_timeout=3, greet_after=0)
    conn = Conn(1, Link(1, config, T0))
    schedule = Schedule()
    schedule.watch(conn)
    perform = perform_into({1: conn})
    now = T0
    while not conn.actions and now < T0 + 10:
        now += 0.02
        schedule.ask(now, perform)
    assert T0 + 3 <= now < T0 + 3 + UNJOINED_EVERY + 0.05
    assert any(isinstance(a, Send) and b"registration_timeout" in a.data
               for a in conn.actions)


def test_gone_connections_leave_at_most_a_bounded_number_of_entries() -> None:
    config = LinkConfig(rate=0)
    schedule = Schedule()
    kept = [started(cid, "json", config) for cid in range(10)]
    for conn in kept:
        schedule.watch(conn)
    for cid in range(10, 10 + 5 * SHRINK_SLACK):
        conn = started(cid, "json", config)
        schedule.watch(conn)
        schedule.forget(conn)
        assert len(schedule) <= 2 * len(kept) + SHRINK_SLACK + 1
    assert schedule.conns.keys() == {conn.cid for conn in kept}
    assert Schedule().next_time() == float("inf")
    closing = kept[0]
    closing.closing = True
    schedule.ask(T0 + 1, perform_into({}))  # nobody acts: each learns its time
    assert len(schedule) == len(kept) - 1  # the closing one is not asked again
