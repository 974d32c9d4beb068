"""chatc.connection without a network: backoff, error wording, de-duplication, and
the handling of single server lines."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import ssl
from typing import Any

import pytest

from chatc import connection as c
from chatc import events as e
from chatd import protocol as p

TARGET = c.Target("127.0.0.1", 5000)


def test_backoff_grows_to_a_cap_of_2s_with_jitter_of_up_to_half() -> None:
    """Issue 23 item 3: a server back after a restart is found within about 2 s."""
    backoff = c.Backoff()
    for n in range(1, 30):
        base = min(2.0, 0.25 * 2 ** (n - 1))
        low, high = backoff.delay(n, lambda: 0.0), backoff.delay(n, lambda: 0.999999)
        assert low == pytest.approx(base / 2)
        assert high == pytest.approx(base, rel=1e-5)
    assert max(backoff.delay(n, random.random) for n in range(1, 100)) <= 2.0


def test_clients_coming_back_are_spread_over_a_second() -> None:
    """5,000 clients that lost the same server do not all try again in one instant."""
    draw = random.Random(23).random
    backoff = c.Backoff()
    delays = sorted(backoff.delay(8, draw) for _ in range(5000))
    assert delays[0] >= 1.0 and delays[-1] <= 2.0
    per_tenth = [sum(1 for d in delays if 1.0 + k / 10 <= d < 1.1 + k / 10)
                 for k in range(10)]
    assert max(per_tenth) < 700  # about 500 in each tenth of a second


def test_attempts_the_server_answered_keep_within_its_connect_throttle() -> None:
    """PROTOCOL.txt 8.4: 20 new connections per 60 s per address by default; a refused
    connection (nothing listening) does not count there, an answered one does."""
    backoff = c.Backoff()
    for draw in (lambda: 0.0, lambda: 0.5, lambda: 0.999999):
        assert 3.0 <= backoff.delay(1, draw, reached=True) < 6.0
        assert 3.0 <= backoff.delay(9, draw, reached=True) < 6.0
    waits = [backoff.delay(n, random.random, reached=True) for n in range(1, 200)]
    elapsed, count = 0.0, 0
    for wait in waits:  # how many attempts fit in the first minute
        elapsed += wait
        count += elapsed < 60
    assert count <= 20


@pytest.mark.parametrize(("exc", "text"), [
    (ConnectionRefusedError(111, "Connection refused"),
     "connection to 127.0.0.1:5000 refused (is chatd running there?)"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
     "unknown host '127.0.0.1'"),
    (TimeoutError(), "127.0.0.1:5000 did not answer in time"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection reset"),
    (OSError(113, "No route to host"), "127.0.0.1:5000 is unreachable (no route to host)"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
     "TLS failed with 127.0.0.1:5000"),
])
def test_failures_read_as_one_line(exc: BaseException, text: str) -> None:
    described = c.describe(exc, TARGET)
    assert described.startswith(text) and "\n" not in described


def test_untrusted_certificate_says_what_to_do() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    assert c.describe(exc, TARGET) == (
        "TLS certificate of 127.0.0.1:5000 not trusted (self-signed certificate); "
        "use --cafile FILE or --insecure")


def test_ipv6_target_is_bracketed() -> None:
    assert str(c.Target("::1", 5000)) == "[::1]:5000"


def test_dedup_by_id_and_time() -> None:
    seen = c._Dedup(size=3)
    assert seen.add("1", "t1")
    assert not seen.add("1", "t1")
    assert seen.add("1", "t9")  # a restarted server reuses ids, never with the same time
    for n in range(2, 6):
        assert seen.add(str(n), "t")
    assert seen.add("1", "t1")  # forgotten: only the last `size` are kept


class FakeWriter:
    """Collects what the session writes; stands in for a connected socket."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        import json
        self.lines.append(json.loads(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def connected() -> tuple[c.Session, FakeWriter]:
    session = c.Session(TARGET, "alice")
    writer = FakeWriter()
    session._writer = writer  # type: ignore[assignment]
    session.connected = True
    session.welcome = p.Welcome("alice", "lobby", ("alice",))
    return session, writer


def drain(session: c.Session) -> list[e.SessionEvent]:
    events = []
    while not session._events.empty():
        events.append(session._events.get_nowait())
    return events


async def test_server_ping_is_answered_with_pong() -> None:
    session, writer = connected()
    session._handle(p.ServerPing())
    assert writer.lines == [{"type": "pong"}]
    assert drain(session) == []


async def test_one_line_in_flight_then_the_next_after_its_ack() -> None:
    session, writer = connected()
    first = session.say("one")
    second = session.say("two")
    assert [m["message"] for m in writer.lines] == ["one"]
    assert writer.lines[0]["ref"] == first.ref
    session._handle(p.Ack(first.ref, "7", "2026-11-25T20:00:00.000Z"))
    assert [m["message"] for m in writer.lines] == ["one", "two"]
    assert session.last_id == "7"
    assert drain(session) == [e.Confirmed(first, "7", "2026-11-25T20:00:00.000Z")]
    assert session.pending == [second]


async def test_refs_are_unique() -> None:
    session, _ = connected()
    refs = {session.say(str(n)).ref for n in range(100)}
    assert len(refs) == 100 and all(0 < len(r) <= p.MAX_REF_CHARS for r in refs)


async def test_refused_line_fails_and_unrelated_errors_pass_through() -> None:
    session, _ = connected()
    line = session.say("psst", to="nobody")
    error = p.Error("no_such_user", "no user named nobody", line.ref)
    session._handle(error)
    session._handle(p.Error("bad_room", "no"))
    assert drain(session) == [e.Failed(line, error), p.Error("bad_room", "no")]
    assert session.pending == []


async def test_rate_limited_line_is_held_and_sent_again() -> None:
    session, writer = connected()
    line = session.say("fast")
    session._handle(p.Error(p.ErrorCode.RATE_LIMITED, "slow down", line.ref))
    events = drain(session)
    assert events == [e.Throttled(line, 1.0)] and session.pending == [line]
    assert len(writer.lines) == 1
    session._hold.cancel()  # type: ignore[union-attr]
    session._release()
    assert [m["message"] for m in writer.lines] == ["fast", "fast"]


async def test_duplicates_are_dropped_and_names_tracked() -> None:
    session, _ = connected()
    line = p.Chat("bob", "hi", "5", "2026-11-25T20:00:00.000Z", room="lobby")
    session._handle(line)
    session._handle(line)
    session._handle(p.Renamed("alicia", "alice", "lobby", "alice is now known as alicia",
                              "6", "2026-11-25T20:00:01.000Z"))
    assert drain(session)[:1] == [line]
    assert session.name == "alicia" and session.last_id == "6"


async def test_history_lines_do_not_move_the_last_id() -> None:
    session, _ = connected()
    session._handle(p.Chat("bob", "old", "3", "2026-11-25T19:00:00.000Z", room="lobby",
                           history=True))
    assert session.last_id is None
    assert len(drain(session)) == 1


async def test_closing_error_explains_the_close() -> None:
    session, _ = connected()
    session._handle(p.Error(p.ErrorCode.EXCESS_FLOOD, "too many lines"))
    assert session._farewell == (
        "you sent too many lines too fast, and the server disconnected you (excess_flood)")
    await asyncio.sleep(0)


async def test_rate_limited_without_ref_is_taken_as_the_line_in_flight() -> None:
    # chatd refuses a line over the flood limit before parsing it: no ref in the error.
    session, writer = connected()
    line = session.say("fast")
    session._handle(p.Error(p.ErrorCode.RATE_LIMITED, "slow down"))
    assert drain(session) == [e.Throttled(line, 1.0)]
    session._handle(p.Ack(line.ref, "8", "2026-11-25T20:00:00.000Z"))  # it got in after all
    session._hold.cancel()  # type: ignore[union-attr]
    session._release()
    assert [m["message"] for m in writer.lines] == ["fast"]  # not sent twice
    assert drain(session) == [e.Confirmed(line, "8", "2026-11-25T20:00:00.000Z")]
    session._handle(p.Error(p.ErrorCode.RATE_LIMITED, "slow down"))  # nothing in flight
    assert drain(session) == [p.Error(p.ErrorCode.RATE_LIMITED, "slow down")]


# ----------------------------------------------------------------- issue 13, items 1, 4, 5

T0 = "2026-11-25T20:00:00.000Z"


async def test_a_line_over_the_servers_limit_is_refused_before_it_is_queued() -> None:
    session, writer = connected()
    limit = session.max_line_bytes
    assert limit == p.DEFAULT_MAX_LINE_BYTES  # the welcome announced none
    # The limit is on the line as sent, JSON and ref included, without its newline.
    overhead = len(p.encode_event(p.Message("", ref="123456-1"))) - 1
    fits = session.say("x" * (limit - overhead))
    assert len(p.encode_event(p.Message(fits.text, ref=fits.ref))) - 1 == limit
    with pytest.raises(c.TooLong) as refused:
        session.say("x" * (limit - overhead + 1))
    assert (refused.value.size, refused.value.limit) == (limit + 1, limit)
    with pytest.raises(c.TooLong):  # counted in bytes: 3 per Hangul syllable
        session.say("가" * (limit // 3))
    assert session.pending == [fits] and len(writer.lines) == 1


async def test_the_limit_the_welcome_announces_is_used() -> None:
    session, _ = connected()

    class Announcing:  # a welcome of a server that announces its limit (field may be new)
        max_line_bytes = 100

    session.welcome = Announcing()  # type: ignore[assignment]
    assert session.max_line_bytes == 100
    with pytest.raises(c.TooLong):
        session.say("x" * 80)


async def test_line_too_long_without_ref_fails_the_line_in_flight_and_the_queue_moves() -> None:
    # A server that did not announce a smaller limit cannot read the ref of a line over it.
    session, writer = connected()
    big, small = session.say("x" * 2000), session.say("small")
    error = p.Error(p.ErrorCode.LINE_TOO_LONG, "line longer than 1000 bytes")
    session._handle(error)
    assert drain(session) == [e.Failed(big, dataclasses.replace(error, ref=big.ref))]
    assert [m["message"] for m in writer.lines] == [big.text, "small"]
    assert session.pending == [small]


async def test_an_unanswered_line_is_given_up_on_and_a_late_ack_still_confirms_it() -> None:
    session, writer = connected()
    session.ack_timeout = 0.05
    first, second = session.say("one"), session.say("two")
    failed = await asyncio.wait_for(session._events.get(), 5)
    assert isinstance(failed, e.Failed) and failed.line == first
    assert failed.error.code == c.NO_ANSWER
    assert [m["message"] for m in writer.lines] == ["one", "two"]  # not held by "one"
    session._handle(p.Ack(first.ref, "7", T0))
    session._handle(p.Ack(second.ref, "8", T0))
    assert drain(session) == [e.Confirmed(first, "7", T0, late=True),
                              e.Confirmed(second, "8", T0)]
    assert session.pending == [] and session._ack_timer is None


async def test_a_private_line_to_oneself_is_shown_once() -> None:
    session, _ = connected()
    line = session.say("note", to="alice")
    session._handle(p.Chat("alice", "note", "9", T0, to="alice"))  # chatd: echo, then ack
    session._handle(p.Ack(line.ref, "9", T0))
    assert drain(session) == [e.Confirmed(line, "9", T0)]
    other = session.say("again", to="alice")
    session._handle(p.Ack(other.ref, "10", T0))  # the other order
    session._handle(p.Chat("alice", "again", "10", T0, to="alice"))
    assert drain(session) == [e.Confirmed(other, "10", T0)]


def _catch_up(session: c.Session, joined: list[p.Update]) -> list[e.SessionEvent]:
    session._catchup = c._CatchUp("5")
    for update in joined:
        session._handle(update)
    session._handle(p.HistoryEnd("lobby", len(joined), more=False))  # join history's end
    session._pong()  # the fence: the pages come now
    session._handle(p.HistoryEnd("lobby", 0, more=False))  # nothing after "5"
    return drain(session)


async def test_nothing_missed_is_claimed_only_when_the_history_reaches_back() -> None:
    session, _ = connected()
    seen = p.Chat("bob", "seen before", "5", T0, room="lobby")
    session._handle(seen)
    drain(session)
    again = dataclasses.replace(seen, history=True)
    assert _catch_up(session, [again])[-1] == e.CaughtUp(0, known=True)
    # A server restarted without its history: nothing reaches back, so nobody knows.
    fresh, _ = connected()
    assert _catch_up(fresh, [])[-1] == e.CaughtUp(0, known=False)
