"""Unit tests of chatd.admission: who may connect (Admission, PROTOCOL.txt 8.4) and how fast
a connection may send (chatd.limits.FloodGuard, 8.3). The clock is a number passed in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.admission import Admission, AdmissionPolicy, PasswordThrottle, Refusal
from chatd.limits import FloodGuard, Verdict
from chatd.moderation import BanRecord
from chatd.protocol import ErrorCode

T0 = 100.0


def test_ipv6_addresses_count_per_prefix_and_ipv4_whole() -> None:
    gate = Admission(max_per_ip=2, throttle=0)
    assert gate.group("2001:db8:1:2::1") == gate.group("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert gate.group("2001:db8:1:3::1") != gate.group("2001:db8:1:2::1")
    assert gate.group("::ffff:192.0.2.7") == "192.0.2.7"
    assert gate.group("192.0.2.7") != gate.group("192.0.2.8")
    assert gate.admit("2001:db8:1:2::1", T0) is None
    assert gate.admit("2001:db8:1:2::2", T0) is None
    refused = gate.admit("2001:db8:1:2:abcd::3", T0)
    assert isinstance(refused, Refusal) and refused.code == ErrorCode.TOO_MANY_CONNECTIONS
    assert gate.admit("2001:db8:1:3::1", T0) is None  # another /64
    assert Admission(ipv6_prefix=128).group("2001:db8::1") == "2001:db8::1/128"


def test_a_held_session_keeps_its_slot_and_gives_it_to_a_newcomer() -> None:
    gate = Admission(max_per_ip=2, throttle=0)
    assert gate.admit("192.0.2.1", T0) is None
    assert gate.admit("192.0.2.1", T0) is None
    gate.hold("s1", "192.0.2.1")  # the first connection broke; its session waits
    gate.hold("s2", "192.0.2.1")
    assert gate.per_group == {"192.0.2.1": 2} and gate.total == 2
    assert gate.admit("192.0.2.1", T0) == "s1"  # the oldest held session goes
    assert gate.per_group == {"192.0.2.1": 2} and gate.held == {"s2": "192.0.2.1"}
    gate.unhold("s1")  # its leave, applied later, frees nothing twice
    assert gate.total == 2
    gate.unhold("s2")  # resumed or expired
    gate.release("192.0.2.1")
    assert gate.per_group == {}
    assert gate.total == 0


def test_the_total_counts_held_sessions_of_every_address() -> None:
    gate = Admission(max_clients=2, max_per_ip=0, throttle=0)
    assert gate.admit("192.0.2.1", T0) is None
    assert gate.admit("192.0.2.2", T0) is None
    refused = gate.admit("192.0.2.3", T0)
    assert isinstance(refused, Refusal) and refused.code == ErrorCode.SERVER_FULL
    gate.hold("s1", "192.0.2.1")
    assert gate.admit("192.0.2.3", T0) == "s1"
    assert gate.per_group == {"192.0.2.2": 1, "192.0.2.3": 1} and gate.total == 2
    assert gate.held == {} and gate.held_in == {}


def test_finding_a_held_session_to_evict_does_not_scan_the_others() -> None:
    """One address at its limit must not cost a walk over every held session."""
    gate = Admission(max_per_ip=1, throttle=0)
    for i in range(1000):
        gate.admit(f"10.0.{i // 256}.{i % 256}", T0)
        gate.hold(f"other{i}", f"10.0.{i // 256}.{i % 256}")
    gate.admit("192.0.2.1", T0)
    gate.hold("mine", "192.0.2.1")
    assert gate.admit("192.0.2.1", T0) == "mine"
    assert set(gate.held_in) == {f"10.0.{i // 256}.{i % 256}" for i in range(1000)}


def test_new_connections_per_address_are_throttled_in_a_window() -> None:
    gate = Admission(max_per_ip=0, throttle=3, window=10)
    for i in range(3):
        assert gate.admit("192.0.2.1", T0 + i) is None
    refused = gate.admit("192.0.2.1", T0 + 3)
    assert isinstance(refused, Refusal) and "too many new connections" in refused.message
    assert gate.admit("192.0.2.2", T0 + 3) is None  # others are not held back
    assert gate.admit("192.0.2.1", T0 + 10.5) is None  # the first connect left the window
    assert gate.total == 5  # a refused connection is not counted


def test_a_connection_counted_without_the_throttle_asks_it_later() -> None:
    """The web port counts page requests without the throttle; a WebSocket asks it."""
    gate = Admission(max_per_ip=10, throttle=2, window=10)
    for i in range(5):
        assert gate.admit("192.0.2.1", T0 + i * 0.1, throttle=False) is None
    assert gate.total == 5
    assert gate.throttled("192.0.2.1", T0 + 1) is None
    assert gate.throttled("192.0.2.1", T0 + 1) is None
    refused = gate.throttled("192.0.2.1", T0 + 1)
    assert isinstance(refused, Refusal) and refused.code == ErrorCode.TOO_MANY_CONNECTIONS
    assert isinstance(gate.admit("192.0.2.1", T0 + 1), Refusal)  # the same window
    assert gate.total == 5


def test_the_throttle_table_is_bounded() -> None:
    gate = Admission(max_per_ip=0, throttle=1, window=10, table_size=100)
    for i in range(1000):
        gate.admit(f"10.0.{i // 256}.{i % 256}", T0)
    assert len(gate.recent) <= 100
    gate.admit("192.0.2.1", T0 + 11)  # everything else is idle past the window now
    assert len(gate.recent) <= 100


def test_the_throttle_table_is_bounded_in_bytes() -> None:
    """PROTOCOL.txt 8.4: one /64 after another of a large IPv6 block each make a group;
    the table keeps as many as fit its bytes when each holds its most connect times."""
    gate = Admission(max_per_ip=0, throttle=20, window=60)
    assert gate.table_size == 16 * 1024 * 1024 // (200 + 20 * 32)  # 19,972 groups
    small = Admission(max_per_ip=0, throttle=4, window=60, table_bytes=10 * (200 + 4 * 32))
    for i in range(100):
        for k in range(4):
            small.admit(f"2001:db8:{i:x}::1", T0 + k)
    assert len(small.recent) == 10
    assert all(len(times) <= 4 for times in small.recent.values())


def test_wrong_passwords_make_the_wait_grow_and_are_forgotten() -> None:
    """PROTOCOL.txt 11.2: three free, then 1 s, 2 s, 4 s ... capped."""
    throttle = PasswordThrottle(free=3, max_wait=8, forget_after=600)
    waits = []
    for i in range(8):
        throttle.failed("192.0.2.1", T0 + i)
        waits.append(throttle.wait("192.0.2.1", T0 + i))
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8]
    assert throttle.wait("192.0.2.2", T0) == 0
    assert throttle.first_refusal("192.0.2.1") and not throttle.first_refusal("192.0.2.1")
    assert throttle.wait("192.0.2.1", T0 + 7 + 600) == 0 and throttle.failures == {}


# --------------------------------------------------------------------------- flood control


def guard(now: float = T0) -> FloodGuard:
    """The defaults a public server runs with (8.3)."""
    return FloodGuard(2.0, 10, now, byte_rate=4096, byte_burst=64 * 1024)


def test_the_byte_bucket_lets_a_burst_through_then_its_rate() -> None:
    """PROTOCOL.txt 8.3: 64 KiB at once (one line more, into debt), then 4 KiB a second."""
    g = guard()
    assert g.take(T0, 60_000) is Verdict.OK
    assert g.take(T0, 60_000) is Verdict.OK  # 5,536 bytes were left: into debt
    assert g.take(T0, 10) is Verdict.BYTES
    assert g.byte_tokens == 64 * 1024 - 120_000
    # out of debt after (120,000 - 65,536) / 4,096 = 13.3 s
    assert g.take(T0 + 13.2, 10) is Verdict.BYTES
    assert g.take(T0 + 13.4, 10) is Verdict.OK


def test_a_refused_line_takes_nothing_and_counts_as_excess() -> None:
    """PROTOCOL.txt 8.3: a line dropped for its bytes keeps the line tokens; dropped lines
    faster than the rate end in excess_flood."""
    g = guard()
    g.take(T0, 70_000)
    tokens = g.tokens
    verdicts = [g.take(T0, 100) for _ in range(20)]
    assert verdicts == [Verdict.BYTES] * 19 + [Verdict.FLOOD]
    assert g.tokens == tokens


def test_line_rate_refusal_comes_first_and_byte_rate_zero_counts_lines_only() -> None:
    g = guard()
    assert [g.take(T0, 10) for _ in range(11)][-1] is Verdict.LIMITED
    lines_only = FloodGuard(2.0, 10, T0)
    assert all(lines_only.take(T0, 10**9) is Verdict.OK for _ in range(10))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.integers(0, 65_536)), max_size=300))
def test_what_passes_never_exceeds_burst_plus_rate_plus_one_line(
    sends: list[tuple[float, int]],
) -> None:
    """PROTOCOL.txt 8.3: whatever a client sends and when, the bytes that pass in T seconds
    are at most byte_burst + byte_rate * T + one line of the largest size."""
    g, now, passed = guard(), T0, 0
    for gap, size in sends:
        now += gap
        if g.take(now, size) is Verdict.OK:
            passed += size
        if g.excess >= 20:  # the server has closed the connection
            break
    assert passed <= 64 * 1024 + 4096 * (now - T0) + 65_536


def test_ordinary_chat_never_meets_the_byte_budget() -> None:
    """PROTOCOL.txt 8.3: someone typing 300-byte lines every 3 s who pastes a 20 KB log
    every minute, for an hour."""
    g, now = guard(), T0
    for minute in range(60):
        assert g.take(now, 20_000) is Verdict.OK, minute
        for _ in range(20):
            now += 3.0
            assert g.take(now, 300) is Verdict.OK
    g = guard()
    assert all(g.take(T0 + i * 0.01, 20_000) is Verdict.OK for i in range(3))


def test_policy_words_refusals_password_wait_first_then_ban_then_limits() -> None:
    """PROTOCOL.txt 11.2, 15.3, 8.4: the policy decides and words; the shell only sends."""
    policy = AdmissionPolicy(Admission(max_per_ip=1, throttle=0), password=True)
    ban = BanRecord("address", "192.0.2.0/24", "192.0.2.0/24", 0, "op", "spam", T0)
    banned = policy.admit("192.0.2.1", T0, ban=lambda: ban)
    assert banned == Refusal(ErrorCode.BANNED, "your address (192.0.2.0/24) is banned from "
                             "this server permanently (spam)", until="", log_level="info")
    assert policy.admit("192.0.2.1", T0, ban=lambda: None) is None
    full = policy.admit("192.0.2.1", T0, ban=lambda: None)
    assert isinstance(full, Refusal) and full.code == ErrorCode.TOO_MANY_CONNECTIONS
    assert [policy.wrong_password("192.0.2.9", T0) for _ in range(3)] == [None] * 3
    assert policy.wrong_password("192.0.2.9", T0) == (
        "4 wrong passwords in a row from 192.0.2.9: its connections are refused for 1s")
    waiting = policy.admit("192.0.2.9", T0, ban=lambda: ban)  # the wait comes first
    assert waiting == Refusal(ErrorCode.AUTH_THROTTLED, "too many wrong passwords from this "
                              "address; try again in 1s", retry_after=1)
    again = policy.admit("192.0.2.9", T0, ban=lambda: None)
    assert isinstance(again, Refusal) and again.log_level == "debug"  # logged once a wait
    policy.password = False  # no server password: no wait either
    assert policy.admit("192.0.2.9", T0, ban=lambda: None) is None


def test_policy_oper_wait_and_audit_line() -> None:
    """PROTOCOL.txt 15.1: wrong operator passwords make the address wait, worded here."""
    policy = AdmissionPolicy(Admission(), password=False)
    assert policy.oper_refusal("192.0.2.1", T0) is None
    lines = [policy.wrong_oper("192.0.2.1", T0) for _ in range(4)]
    assert lines[-1] == "audit: wrong operator name or password (4 in a row from 192.0.2.1)"
    assert policy.oper_refusal("192.0.2.1", T0) == Refusal(
        ErrorCode.OPER_THROTTLED, "too many wrong operator passwords from this address; "
        "try again in 1s", retry_after=1)
    assert policy.oper_refusal("192.0.2.1", T0 + 1) is None
