"""Unit tests of chatc.session, the client session's protocol without sockets or an
event loop: lines in as bytes, the clock a number passed in, actions out.

Each test cites the PROTOCOL.txt section it relies on where there is one.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatc import events as e
from chatc import words
from chatc.actions import Action, Drop, Reconnect, Send, Show
from chatc.catchup import Seen
from chatc.ownlines import LATE_ACKS_KEPT
from chatc.reconnect import refused_status
from chatc.session import FLOOD_PAUSE, NO_ANSWER, Session, TooLong, greeting
from chatd import protocol as p

T0 = 1000.0
TIME = "2026-11-25T20:00:00.000Z"
KEEPALIVE, KEEPALIVE_TIMEOUT = 30.0, 15.0
WELCOME = p.Welcome("alice", "lobby", ("alice",), resume="token-1")


def sent(actions: list[Action]) -> list[p.Event]:
    return [a.event for a in actions if isinstance(a, Send)]


def shown(actions: list[Action]) -> list[e.SessionEvent]:
    return [a.event for a in actions if isinstance(a, Show)]


def messages(actions: list[Action]) -> list[str]:
    return [ev.message for ev in sent(actions) if isinstance(ev, p.Message)]


def line(update: p.Update) -> bytes:
    return p.encode_json(update)


def joined(reconnect: bool = False, ack_timeout: float = 10.0) -> Session:
    session = Session("alice", reconnect=reconnect, ack_timeout=ack_timeout,
                      keepalive=KEEPALIVE, keepalive_timeout=KEEPALIVE_TIMEOUT,
                      draw=lambda: 0.0, refs=(f"r{n}" for n in itertools.count(1)))
    assert session.welcomed(WELCOME, T0) == []
    return session


def feed(session: Session, *updates: p.Update, now: float = T0) -> list[Action]:
    actions: list[Action] = []
    for update in updates:
        actions += session.receive_line(line(update), now)
    return actions


def test_dedup_by_id_and_time() -> None:
    seen = Seen(size=3)
    assert seen.add("1", "t1")
    assert not seen.add("1", "t1")
    assert seen.add("1", "t9")  # a restarted server reuses ids, never with the same time
    for n in range(2, 6):
        assert seen.add(str(n), "t")
    assert seen.add("1", "t1")  # forgotten: only the last `size` are kept


# ---------------------------------------------------------------------- acks


def test_before_the_welcome_a_ping_is_answered_and_an_error_refuses() -> None:
    """PROTOCOL.txt 2.2, 4.12, 8.5: the server may ping, or refuse, before it welcomes."""
    assert greeting(line(p.ServerPing())) == Send(p.Pong())
    assert greeting(line(WELCOME)) == WELCOME
    full = p.Error(p.ErrorCode.SERVER_FULL, "full")
    assert greeting(line(full)) == full
    assert greeting(b"garbage\n") is None
    assert greeting(line(p.Chat("bob", "hi", "1", TIME))) is None


def test_server_ping_is_answered_with_pong() -> None:
    session = joined()
    assert feed(session, p.ServerPing()) == [Send(p.Pong())]


def test_one_line_in_flight_then_the_next_after_its_ack() -> None:
    """PROTOCOL.txt 5.3: an own line is acknowledged with its ref."""
    session = joined()
    first, actions = session.say("one", None, T0)
    assert sent(actions) == [p.Message("one", ref=first.ref)]
    second, actions = session.say("two", None, T0)
    assert actions == []  # waits for "one"
    actions = feed(session, p.Ack(first.ref, "7", TIME))
    assert actions == [Show(e.Confirmed(first, "7", TIME)),
                       Send(p.Message("two", ref=second.ref))]
    assert session.last_id == "7" and session.pending == [second] and not session.idle


def test_refs_are_unique_and_short() -> None:
    session = Session("alice")
    session.welcomed(WELCOME, T0)
    refs = {session.say(str(n), None, T0)[0].ref for n in range(100)}
    assert len(refs) == 100 and all(0 < len(r) <= p.MAX_REF_CHARS for r in refs)


def test_commands_wait_behind_the_lines_queued_before_them() -> None:
    session = joined()
    first, _ = session.say("one", None, T0)
    assert session.command(p.Join("dev"), T0) == []
    actions = feed(session, p.Ack(first.ref, "1", TIME))
    assert sent(actions) == [p.Join("dev")] and session.idle


def test_refused_line_fails_and_unrelated_errors_pass_through() -> None:
    session = joined()
    psst, _ = session.say("psst", "nobody", T0)
    error = p.Error("no_such_user", "no user named nobody", psst.ref)
    assert shown(feed(session, error, p.Error("bad_room", "no"))) == [
        e.Failed(psst, error), p.Error("bad_room", "no")]
    assert session.pending == []


def test_rate_limited_line_is_held_and_sent_again_when_the_clock_says() -> None:
    """PROTOCOL.txt 8.2: a line over the flood limit is dropped with rate_limited."""
    session = joined()
    fast, _ = session.say("fast", None, T0)
    actions = feed(session, p.Error(p.ErrorCode.RATE_LIMITED, "slow down", fast.ref))
    assert actions == [Show(e.Throttled(fast, FLOOD_PAUSE))]
    assert session.deadline == T0 + FLOOD_PAUSE and session.pending == [fast]
    assert session.tick(T0 + FLOOD_PAUSE / 2) == []
    assert messages(session.tick(T0 + FLOOD_PAUSE)) == ["fast"]


def test_rate_limited_without_ref_is_taken_as_the_line_in_flight() -> None:
    # chatd refuses a line over the flood limit before parsing it: no ref in the error.
    session = joined()
    fast, _ = session.say("fast", None, T0)
    slow_down = p.Error(p.ErrorCode.RATE_LIMITED, "slow down")
    assert shown(feed(session, slow_down)) == [e.Throttled(fast, FLOOD_PAUSE)]
    # It got in after all: the ack wins, and nothing is sent twice.
    assert shown(feed(session, p.Ack(fast.ref, "8", TIME))) == [e.Confirmed(fast, "8", TIME)]
    assert session.tick(T0 + FLOOD_PAUSE) == []
    assert shown(feed(session, slow_down)) == [slow_down]  # nothing in flight


def test_duplicates_are_dropped_and_names_tracked() -> None:
    session = joined()
    chat = p.Chat("bob", "hi", "5", TIME, room="lobby")
    actions = feed(session, chat, chat, p.Renamed("alicia", "alice", "lobby",
                                                  "alice is now known as alicia", "6", TIME))
    assert shown(actions)[:1] == [chat] and len(shown(actions)) == 2
    assert session.name == "alicia" and session.last_id == "6"


def test_history_lines_do_not_move_the_last_id() -> None:
    session = joined()
    old = p.Chat("bob", "old", "3", TIME, room="lobby", history=True)
    assert shown(feed(session, old)) == [old]
    assert session.last_id is None


def test_a_garbled_line_is_skipped() -> None:
    session = joined()
    assert session.receive_line(b"{not json\n", T0) == []
    assert session.receive_line(b'[1, 2]\n', T0) == []


def test_a_private_line_to_oneself_is_shown_once() -> None:
    session = joined()
    note, _ = session.say("note", "alice", T0)
    # chatd: the echo, then the ack
    actions = feed(session, p.Chat("alice", "note", "9", TIME, to="alice"),
                   p.Ack(note.ref, "9", TIME))
    assert shown(actions) == [e.Confirmed(note, "9", TIME)]
    again, _ = session.say("again", "alice", T0)
    actions = feed(session, p.Ack(again.ref, "10", TIME),  # the other order
                   p.Chat("alice", "again", "10", TIME, to="alice"))
    assert shown(actions) == [e.Confirmed(again, "10", TIME)]


# ---------------------------------------------------------------------- limits


def test_a_line_over_the_servers_limit_is_refused_before_it_is_queued() -> None:
    """PROTOCOL.txt 8.1: the limit is on the line as sent, JSON and ref included."""
    session = joined()
    limit = session.max_line_bytes
    assert limit == p.DEFAULT_MAX_LINE_BYTES  # the welcome announced none
    overhead = len(p.encode_event(p.Message("", ref="r1"))) - 1
    fits, actions = session.say("x" * (limit - overhead), None, T0)
    assert len(p.encode_event(p.Message(fits.text, ref=fits.ref))) - 1 == limit
    with pytest.raises(TooLong) as refused:
        session.say("x" * (limit - overhead + 1), None, T0)
    assert (refused.value.size, refused.value.limit) == (limit + 1, limit)
    with pytest.raises(TooLong):  # counted in bytes: 3 per Hangul syllable
        session.say("가" * (limit // 3), None, T0)
    assert session.pending == [fits] and len(sent(actions)) == 1


def test_the_limit_the_welcome_announces_is_used() -> None:
    session = Session("alice")
    session.welcomed(dataclasses.replace(WELCOME, max_line_bytes=100), T0)
    assert session.max_line_bytes == 100
    with pytest.raises(TooLong):
        session.say("x" * 80, None, T0)


def test_line_too_long_without_ref_fails_the_line_in_flight_and_the_queue_moves() -> None:
    # A server that did not announce a smaller limit cannot read the ref of a line over it.
    session = joined()
    big, _ = session.say("x" * 2000, None, T0)
    small, _ = session.say("small", None, T0)
    error = p.Error(p.ErrorCode.LINE_TOO_LONG, "line longer than 1000 bytes")
    actions = feed(session, error)
    assert actions == [Show(e.Failed(big, dataclasses.replace(error, ref=big.ref))),
                       Send(p.Message("small", ref=small.ref))]
    assert session.pending == [small]


# ---------------------------------------------------------------------- the ack timeout


def test_an_unanswered_line_is_given_up_on_at_the_ack_timeout_and_a_late_ack_confirms_it(
) -> None:
    session = joined(ack_timeout=10.0)
    first, _ = session.say("one", None, T0)
    second, _ = session.say("two", None, T0 + 1)
    assert session.deadline == T0 + 10.0
    assert session.tick(T0 + 9.999) == []
    actions = session.tick(T0 + 10.0)
    failed = shown(actions)[0]
    assert isinstance(failed, e.Failed) and failed.line == first
    assert failed.error == p.Error(NO_ANSWER, "no answer from the server in 10s", first.ref)
    assert messages(actions) == ["two"]  # not held by "one"
    assert session.deadline == T0 + 20.0  # "two"'s own timeout
    actions = feed(session, p.Ack(first.ref, "7", TIME), p.Ack(second.ref, "8", TIME),
                   now=T0 + 11)
    assert shown(actions) == [e.Confirmed(first, "7", TIME, late=True),
                              e.Confirmed(second, "8", TIME)]
    assert session.pending == [] and session.idle
    assert session.deadline == T0 + 11 + KEEPALIVE  # only the keepalive is left


def test_a_late_ack_after_the_next_line_was_confirmed_is_still_late() -> None:
    session = joined(ack_timeout=1.0)
    first, _ = session.say("one", None, T0)
    session.tick(T0 + 1)
    assert shown(feed(session, p.Ack(first.ref, "7", TIME))) == [
        e.Confirmed(first, "7", TIME, late=True)]
    assert feed(session, p.Ack(first.ref, "7", TIME)) == []  # said once


def test_only_the_last_hundred_lines_given_up_on_wait_for_a_late_ack() -> None:
    session = joined(ack_timeout=1.0)
    lines = [session.say(str(n), None, T0)[0] for n in range(LATE_ACKS_KEPT + 1)]
    for n in range(1, LATE_ACKS_KEPT + 2):
        session.tick(T0 + n)
    assert session.idle
    assert feed(session, p.Ack(lines[0].ref, "1", TIME)) == []  # forgotten
    assert shown(feed(session, p.Ack(lines[1].ref, "2", TIME))) == [
        e.Confirmed(lines[1], "2", TIME, late=True)]


# ---------------------------------------------------------------------- keepalive


def test_a_silent_server_is_pinged_then_dropped() -> None:
    session = joined()
    assert session.deadline == T0 + KEEPALIVE
    assert session.tick(T0 + KEEPALIVE) == [Send(p.Ping())]
    later = T0 + KEEPALIVE + KEEPALIVE_TIMEOUT
    assert session.deadline == later
    assert session.tick(later) == [Drop("the server stopped answering")]
    assert session.tick(later + 100) == []  # said once; the shell reports the loss


def test_any_line_proves_the_connection_alive() -> None:
    session = joined()
    session.tick(T0 + KEEPALIVE)
    feed(session, p.ServerPong(), now=T0 + KEEPALIVE + 1)
    assert session.deadline == T0 + 2 * KEEPALIVE + 1


# ---------------------------------------------------------------------- losing and resuming


def test_without_reconnect_a_lost_connection_ends_the_session_with_status_1() -> None:
    session = joined()
    assert session.connection_lost(None, T0) == [
        Show(e.Gone("the server closed the connection"))]
    assert session.gone and session.deadline is None


def test_the_servers_closing_words_are_the_reason() -> None:
    """PROTOCOL.txt 7: an error right before the server closes says why."""
    session = joined()
    assert feed(session, p.Error(p.ErrorCode.EXCESS_FLOOD, "too many lines")) == []
    gone = shown(session.connection_lost(None, T0))
    assert gone == [e.Gone("you sent too many lines too fast, and the server "
                           "disconnected you (excess_flood)")]
    assert gone[0].status == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("code", [p.ErrorCode.KICKED, p.ErrorCode.BANNED])
def test_kicked_or_banned_ends_with_status_3_and_no_reconnect(code: str) -> None:
    """PROTOCOL.txt 15.2, 15.3: reconnecting would undo what the operator did."""
    session = joined(reconnect=True)
    error = p.Error(code, "removed by bob")
    assert feed(session, error) == []  # said once, as the reason
    actions = session.connection_lost(None, T0)
    assert actions == [Show(e.Gone(words.words(error), removed=True))]
    assert actions[0].event.status == e.EXIT_REMOVED == 3  # type: ignore[union-attr]


def test_banned_while_reconnecting_ends_with_status_3() -> None:
    session = joined(reconnect=True)
    session.connection_lost("connection reset", T0)
    banned = p.Error(p.ErrorCode.BANNED, "you are banned")
    gone = shown(session.attempt_refused(banned, T0 + 1))
    assert gone == [e.Gone(words.words(banned, joining=True), removed=True)]
    assert gone[0].status == 3  # type: ignore[union-attr]
    assert refused_status(banned) == 3
    assert refused_status(p.Error(p.ErrorCode.AUTH_FAILED, "no")) == 1


def test_a_lost_connection_is_retried_with_growing_delays() -> None:
    session = joined(reconnect=True)
    assert session.connection_lost("connection reset", T0) == [
        Show(e.Lost("connection reset", 0.125, 1)), Reconnect(0.125)]
    assert session.hello(resume=True) == p.Connect(name="alice", room="lobby",
                                                   resume="token-1", last_id=None)
    actions = session.attempt_failed("connection refused", False, T0 + 1)
    assert actions == [Show(e.Lost("connection refused", 0.25, 2)), Reconnect(0.25)]
    # The server answered (full): the next attempt keeps within its connect throttle.
    full = p.Error(p.ErrorCode.SERVER_FULL, "full")
    actions = session.attempt_refused(full, T0 + 2)
    assert actions == [Show(e.Lost(words.explain(full, joining=True), 3.0, 3)),
                       Reconnect(3.0)]
    # Refused with a fatal code: no further attempt.
    wrong = p.Error(p.ErrorCode.AUTH_FAILED, "wrong password")
    assert shown(session.attempt_refused(wrong, T0 + 3)) == [
        e.Gone(words.explain(wrong, joining=True))]


def test_resumed_session_fences_the_replay_then_sends_the_line_in_doubt_again() -> None:
    """PROTOCOL.txt 10: the missed lines and acks come first; the pong ends them."""
    session = joined(reconnect=True)
    doubt, _ = session.say("are you there", None, T0)
    session.connection_lost("connection reset", T0)
    assert session.hello(resume=True).last_id is None  # no line seen yet
    resumed = dataclasses.replace(WELCOME, resumed=True)
    assert session.welcomed(resumed, T0 + 2) == [
        Show(e.Reconnected(resumed, 2.0)), Send(p.Ping())]
    missed = p.Chat("bob", "meanwhile", "11", TIME, room="lobby")
    assert shown(feed(session, missed)) == [missed]  # the replay
    actions = feed(session, p.ServerPong())  # the replay is over: the line was lost
    assert sent(actions) == [p.Message("are you there", ref=doubt.ref)]


def test_resumed_session_whose_replay_holds_the_ack_sends_nothing_again() -> None:
    session = joined(reconnect=True)
    doubt, _ = session.say("made it", None, T0)
    feed(session, p.Chat("bob", "hi", "4", TIME, room="lobby"))
    session.connection_lost("connection reset", T0)
    assert session.hello(resume=True).last_id == "4"
    session.welcomed(dataclasses.replace(WELCOME, resumed=True), T0 + 1)
    actions = feed(session, p.Ack(doubt.ref, "5", TIME), p.ServerPong())
    assert actions == [Show(e.Confirmed(doubt, "5", TIME))]
    assert session.idle


def _restart(session: Session) -> list[Action]:
    """The connection breaks and the server that answers has forgotten the session."""
    session.connection_lost("connection reset", T0)
    fresh = dataclasses.replace(WELCOME, resume="token-2", notice="could not resume")
    actions = session.welcomed(fresh, T0 + 1)
    assert shown(actions)[0] == e.Reconnected(fresh, 1.0)
    return actions


def test_after_a_restart_the_missed_lines_are_fetched_and_the_line_in_doubt_confirmed(
) -> None:
    """PROTOCOL.txt 10, 11: history after the last id seen, merged and de-duplicated."""
    session = joined(reconnect=True)
    seen = p.Chat("bob", "seen", "5", TIME, room="lobby")
    feed(session, seen)
    doubt, _ = session.say("did it arrive", None, T0)
    assert sent(_restart(session)) == [p.Ping()]  # own lines wait for the catch-up
    live = p.Chat("carol", "live", "8", "2026-11-25T20:00:09.000Z", room="lobby")
    again = dataclasses.replace(seen, history=True)
    assert feed(session, again, live, p.HistoryEnd("lobby", 1, more=False)) == []
    assert sent(feed(session, p.ServerPong())) == [p.History(after="5",
                                                             limit=p.HISTORY_PAGE_MAX)]
    missed = p.Chat("bob", "missed", "6", TIME, room="lobby", history=True)
    mine = p.Chat("alice", "did it arrive", "7", TIME, room="lobby", history=True)
    actions = feed(session, missed, mine, p.HistoryEnd("lobby", 2, more=False))
    assert shown(actions) == [missed, e.Confirmed(doubt, "7", TIME), e.CaughtUp(1, True),
                              live]
    assert session.idle and session.last_id == "8"


def test_after_a_restart_a_line_in_doubt_not_in_the_history_is_sent_again() -> None:
    session = joined(reconnect=True)
    feed(session, p.Chat("bob", "seen", "5", TIME, room="lobby"))
    doubt, _ = session.say("lost", None, T0)
    _restart(session)
    feed(session, p.HistoryEnd("lobby", 0, more=False), p.ServerPong())
    actions = feed(session, p.HistoryEnd("lobby", 0, more=False))
    assert shown(actions) == [e.CaughtUp(0, known=False)]
    assert sent(actions) == [p.Message("lost", ref=doubt.ref)]


def test_history_pages_are_followed_until_the_server_says_no_more() -> None:
    session = joined(reconnect=True)
    feed(session, p.Chat("bob", "seen", "5", TIME, room="lobby"))
    _restart(session)
    feed(session, p.HistoryEnd("lobby", 0, more=False), p.ServerPong())
    page = p.Chat("bob", "one", "6", TIME, room="lobby", history=True)
    actions = feed(session, page, p.HistoryEnd("lobby", 1, more=True))
    assert sent(actions) == [p.History(after="6", limit=p.HISTORY_PAGE_MAX)]
    assert shown(feed(session, p.HistoryEnd("lobby", 0, more=False))) == [
        page, e.CaughtUp(1, known=True)]


def test_after_a_restart_before_any_line_was_seen_nobody_knows_what_was_missed() -> None:
    session = joined(reconnect=True)
    waiting, _ = session.say("hello", None, T0)
    session.connection_lost("connection reset", T0)
    fresh = dataclasses.replace(WELCOME, resume="token-2")
    actions = session.welcomed(fresh, T0 + 1)
    assert actions == [Show(e.Reconnected(fresh, 1.0)), Show(e.CaughtUp(0, known=False)),
                       Send(p.Message("hello", ref=waiting.ref))]


def test_nothing_missed_is_claimed_only_when_the_history_reaches_back() -> None:
    session = joined(reconnect=True)
    seen = p.Chat("bob", "seen before", "5", TIME, room="lobby")
    feed(session, seen)
    _restart(session)
    again = dataclasses.replace(seen, history=True)
    feed(session, again, p.HistoryEnd("lobby", 1, more=False), p.ServerPong())
    assert shown(feed(session, p.HistoryEnd("lobby", 0, more=False))) == [
        e.CaughtUp(0, known=True)]


# ---------------------------------------------------------------------- quitting


def test_quitting_says_goodbye_and_leaves_unsent_lines_pending() -> None:
    session = joined()
    waiting, _ = session.say("one", None, T0)
    queued, _ = session.say("two", None, T0)
    assert session.close() == [Send(p.Disconnect())]
    assert session.deadline == T0 + KEEPALIVE  # no ack timeout any more
    gone = shown(session.connection_lost(None, T0 + 1))
    assert gone == [e.Gone(None)] and gone[0].status == 0  # type: ignore[union-attr]
    assert session.pending == [waiting, queued]  # for the user to be told


def test_quitting_while_away_ends_at_once() -> None:
    session = joined(reconnect=True)
    session.say("one", None, T0)
    session.connection_lost("connection reset", T0)
    assert session.close() == [Show(e.Gone(None))]
    assert session.closed() == []  # said once
    assert len(session.pending) == 1


def test_a_server_that_does_not_close_after_goodbye_is_left() -> None:
    session = joined()
    session.close()
    assert session.closed() == [Show(e.Gone(None))]


# ---------------------------------------------------------------------- any order of answers

STEPS = st.lists(st.sampled_from(["say", "ack", "refuse", "throttle", "wait"]), max_size=40)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_every_line_goes_out_in_order_one_at_a_time_and_is_settled_once(
        steps: list[str]) -> None:
    """Whatever the server answers and whenever: one line in flight at most, first sent
    in the order said, and each reported once (Confirmed, or Failed, then perhaps
    Confirmed late)."""
    session = joined(ack_timeout=5.0)
    now = T0
    said: list[str] = []
    first_sent: list[str] = []
    in_flight: str | None = None
    given_up: list[str] = []
    outcomes: dict[str, list[str]] = {}

    def apply(actions: list[Action]) -> None:
        nonlocal in_flight
        for action in actions:
            if isinstance(action, Send) and isinstance(action.event, p.Message):
                ref = action.event.ref
                assert in_flight is None and ref is not None
                in_flight = ref
                if ref not in first_sent:
                    first_sent.append(ref)
            elif isinstance(action, Show) and isinstance(action.event,
                                                         (e.Confirmed, e.Failed)):
                event = action.event
                kind = ("late" if isinstance(event, e.Confirmed) and event.late
                        else type(event).__name__)
                outcomes.setdefault(event.line.ref, []).append(kind)
                if event.line.ref == in_flight:
                    in_flight = None
                if isinstance(event, e.Failed) and event.error.code == NO_ANSWER:
                    given_up.append(event.line.ref)
            elif isinstance(action, Show) and isinstance(action.event, e.Throttled):
                in_flight = None

    for step in steps:
        if step == "say":
            line, actions = session.say(f"line {len(said)}", None, now)
            said.append(line.ref)
            apply(actions)
        elif step == "ack" and (in_flight or given_up):
            ref = in_flight or given_up.pop(0)
            apply(feed(session, p.Ack(ref, str(len(outcomes)), TIME), now=now))
        elif step == "refuse" and in_flight:
            apply(feed(session, p.Error("no_such_user", "no", in_flight), now=now))
        elif step == "throttle" and in_flight:
            apply(feed(session, p.Error(p.ErrorCode.RATE_LIMITED, "slow", in_flight),
                       now=now))
        elif step == "wait":
            deadline = session.deadline
            assert deadline is not None
            now = deadline
            apply(session.tick(now))
            apply(feed(session, p.ServerPong(), now=now))  # the keepalive's ping answered
    assert first_sent == said[:len(first_sent)]
    for ref, kinds in outcomes.items():
        assert kinds in (["Confirmed"], ["Failed"], ["Failed", "late"]), (ref, kinds)
    assert {line.ref for line in session.pending} == set(said) - {
        ref for ref, kinds in outcomes.items() if kinds[0] in ("Confirmed", "Failed")}
