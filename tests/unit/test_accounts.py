"""chatd.accounts: the registry, its bounds and expiry, and the throttles of guessing and
registering (PROTOCOL.txt 18.1, 18.6-18.8). Pure: the clock is passed in."""

from __future__ import annotations

import tracemalloc

import pytest

from chatd.accounts import Account, Accounts, LoginThrottle, RegistrationThrottle
from chatd.protocol import DEFAULT_NAME, ErrorCode, ProtocolError, name_key

HASH = "$scrypt$ln=14,r=8,p=1$" + "A" * 22 + "$" + "B" * 43  # the length of a real one
DAY = 86400.0


def _code(exc: pytest.ExceptionInfo[ProtocolError]) -> str:
    return exc.value.code


def test_a_name_and_its_look_alikes_are_one_account() -> None:
    accounts = Accounts()
    alice = accounts.add("Alice", HASH, now=100.0)
    assert alice.key == name_key("alice") and alice.name == "Alice"
    for other in ("alice", "ALICE", "\u0430lice", "ａｌｉｃｅ"):
        with pytest.raises(ProtocolError) as exc:
            accounts.check_register(other)
        assert _code(exc) == ErrorCode.NAME_REGISTERED and "Alice" in exc.value.message
    assert accounts.get(name_key("ＡＬＩＣＥ")) is alice
    assert len(accounts) == 1


def test_the_blank_name_cannot_be_registered() -> None:
    """PROTOCOL.txt 5.1 / issue 26.10: 익명 is everyone's."""
    with pytest.raises(ProtocolError) as exc:
        Accounts().check_register(DEFAULT_NAME)
    assert _code(exc) == ErrorCode.NAME_REGISTERED


def test_the_count_bound_refuses_registrations_and_pushes_nobody_out() -> None:
    accounts = Accounts(max_accounts=2)
    accounts.add("a1", HASH, 1.0)
    accounts.add("a2", HASH, 2.0)
    with pytest.raises(ProtocolError) as exc:
        accounts.add("a3", HASH, 3.0)
    assert _code(exc) == ErrorCode.TOO_MANY_ACCOUNTS
    assert [a.name for a in accounts] == ["a1", "a2"]
    accounts.remove(name_key("a1"))  # dropping makes room
    accounts.add("a3", HASH, 4.0)


def test_the_byte_bound_refuses_registrations() -> None:
    one = Account("a1", "a1", HASH, 0, 0).cost()
    accounts = Accounts(max_accounts=0, max_bytes=3 * one + 200)
    for i in range(3):
        accounts.add(f"a{i}", HASH, float(i))
    with pytest.raises(ProtocolError) as exc:
        accounts.add("a9", HASH, 9.0)
    assert _code(exc) == ErrorCode.TOO_MANY_ACCOUNTS
    assert accounts.bytes == sum(a.cost() for a in accounts) <= accounts.max_bytes


def test_the_byte_count_follows_every_change() -> None:
    accounts = Accounts()
    accounts.add("bob", HASH, 1.0)
    accounts.add("carol", HASH, 1.0)
    accounts.set_password(name_key("bob"), HASH + "longer")
    accounts.rename(name_key("carol"), "Caroline")
    accounts.remove(name_key("bob"))
    assert accounts.bytes == sum(a.cost() for a in accounts)
    assert accounts.get(name_key("carol")) is None
    assert accounts.get(name_key("caroline")) is not None


def test_cost_per_account_is_what_memory_says() -> None:
    """ACCOUNT_BYTES is measured: 10,000 accounts, as loaded from the database (their
    names and hashes new strings), take about what their costs add to."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        accounts = Accounts(max_accounts=0)
        for i in range(10_000):
            accounts.add(f"user{i:05d}", HASH[:-6] + f"{i:06d}", 1.0)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.8 * used <= accounts.bytes <= 1.25 * used, (used, accounts.bytes)


def test_operator_flag_rename_and_password() -> None:
    accounts = Accounts()
    bob = accounts.add("bob", HASH, 1.0)
    accounts.set_operator(bob.key, True)
    assert accounts.get(bob.key) is not None and bob.operator
    accounts.add("dave", HASH, 1.0)
    with pytest.raises(ProtocolError) as exc:
        accounts.rename(bob.key, "Dave")
    assert _code(exc) == ErrorCode.NAME_REGISTERED
    assert accounts.rename(bob.key, "BOB").name == "BOB"  # same key: a change of case
    with pytest.raises(ProtocolError) as exc:
        accounts.set_password("nobody", HASH)
    assert _code(exc) == ErrorCode.NO_SUCH_ACCOUNT


def test_expiry_takes_unused_accounts_and_spares_operators() -> None:
    accounts = Accounts(expiry=30 * DAY)
    accounts.add("old", HASH, 0.0)
    accounts.add("oper", HASH, 0.0, operator=True)
    accounts.add("used", HASH, 0.0)
    accounts.add("new", HASH, 20 * DAY)
    accounts.touch(name_key("used"), 25 * DAY)
    assert accounts.expire(29 * DAY) == []
    gone = accounts.expire(31 * DAY)
    assert [a.name for a in gone] == ["old"]
    assert {a.name for a in accounts} == {"oper", "used", "new"}
    assert [a.name for a in accounts.expire(56 * DAY)] == ["new", "used"]
    assert [a.name for a in accounts] == ["oper"]
    assert accounts.bytes == accounts.get(name_key("oper")).cost()  # type: ignore[union-attr]
    assert Accounts(expiry=0).expire(1e12) == []


def test_load_orders_by_last_use_and_ignores_the_bounds() -> None:
    """A lowered --max-accounts stops registrations; it deletes nobody."""
    rows = [Account(f"u{i}", f"u{i}", HASH, 0.0, float(10 - i)) for i in range(5)]
    accounts = Accounts(max_accounts=2)
    accounts.load(rows)
    assert [a.name for a in accounts] == ["u4", "u3", "u2", "u1", "u0"]
    with pytest.raises(ProtocolError):
        accounts.check_register("u9")


# ---------------------------------------------------------------- guessing passwords


def _wait(throttle: LoginThrottle, ip: str, key: str, now: float) -> int:
    try:
        throttle.check(ip, key, now)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.LOGIN_THROTTLED and exc.retry_after is not None
        return exc.retry_after
    return 0


def test_one_address_guessing_waits_longer_after_each_wrong_password() -> None:
    throttle = LoginThrottle(per_address=3, per_account=100)
    waits = []
    for _ in range(6):
        throttle.failed("192.0.2.1", "alice", 0.0)
        waits.append(_wait(throttle, "192.0.2.1", "alice", 0.0))
    assert waits == [0, 0, 0, 1, 2, 4]  # three are free (as 11.2)
    assert _wait(throttle, "192.0.2.1", "bob", 0.0) == 4  # the address, whatever account
    assert _wait(throttle, "192.0.2.2", "alice", 0.0) == 0  # another address may try


def test_many_addresses_guessing_one_account_get_nowhere_fast() -> None:
    """Each wrong password from anywhere counts for the account: a thousand addresses
    get the few tries one would, then wait (issue 26.8)."""
    throttle = LoginThrottle(per_address=3, per_account=5, max_wait=300.0)
    now = 0.0
    tries = 0
    for i in range(1000):  # each address guesses once, in turn, as soon as it may
        ip = f"10.{i // 250}.{i % 250}.1"
        wait = _wait(throttle, ip, "alice", now)
        if wait:
            now += wait
        throttle.failed(ip, "alice", now)
        tries += 1
        if now > 3600:
            break
    # 5 free, then 1 s, 2 s, 4 s ... up to 300 s a try: about 25 tries in the hour.
    assert 20 <= tries <= 30, tries  # about 25: PROTOCOL.txt 18.10
    assert _wait(throttle, "198.51.100.1", "alice", now) > 0  # a new address waits too
    assert _wait(throttle, "198.51.100.1", "bob", now) == 0  # other accounts do not


def test_the_owner_logs_in_from_a_trusted_address_while_others_guess() -> None:
    throttle = LoginThrottle(per_address=3, per_account=2)
    throttle.succeeded("192.0.2.7", "alice")  # the owner's address, earlier
    for i in range(10):
        throttle.failed(f"10.0.0.{i}", "alice", 0.0)
    assert _wait(throttle, "10.0.0.99", "alice", 0.0) > 0
    assert _wait(throttle, "192.0.2.7", "alice", 0.0) == 0
    # An IPv6 owner is trusted by its /64, as 8.4 groups addresses.
    throttle.succeeded("2001:db8::1", "alice")
    assert _wait(throttle, "2001:db8::2", "alice", 0.0) == 0
    throttle.succeeded("192.0.2.7", "alice")  # a right password: the count starts again
    assert _wait(throttle, "10.0.0.99", "alice", 0.0) == 0


def test_an_account_trusts_its_last_four_groups_only() -> None:
    throttle = LoginThrottle(per_account=1)
    for i in range(5):
        throttle.succeeded(f"192.0.2.{i}", "alice")
    throttle.failed("10.0.0.1", "alice", 0.0)
    throttle.failed("10.0.0.1", "alice", 0.0)
    assert _wait(throttle, "192.0.2.0", "alice", 0.0) > 0  # the oldest was forgotten
    assert _wait(throttle, "192.0.2.4", "alice", 0.0) == 0
    throttle.forget("alice")
    assert _wait(throttle, "10.0.0.2", "alice", 0.0) == 0


def test_the_throttle_tables_are_bounded() -> None:
    throttle = LoginThrottle(table_bytes=30_000)
    for i in range(5000):
        throttle.failed(f"10.{i // 250}.{i % 250}.1", f"user{i}", float(i))
        throttle.succeeded(f"10.{i // 250}.{i % 250}.1", f"user{i}")
    assert len(throttle.addresses.failures) <= 30_000 // 3 // 300
    assert len(throttle.accounts.failures) <= 30_000 // 3 // 300
    assert len(throttle.trusted) <= 30_000 // 3 // 500


def test_the_audit_line_names_no_password() -> None:
    line = LoginThrottle().failed("192.0.2.1", "alice", 0.0, "Alice")
    assert line.startswith("audit: wrong password for account Alice from 192.0.2.1")


# ---------------------------------------------------------------- registering


def test_an_address_registers_a_few_names_a_minute() -> None:
    throttle = RegistrationThrottle(per_window=3, window=60.0)
    for now in (0.0, 1.0, 2.0):
        throttle.take("192.0.2.1", now)
    with pytest.raises(ProtocolError) as exc:
        throttle.take("192.0.2.1", 10.0)
    assert exc.value.code == ErrorCode.REGISTRATION_THROTTLED
    assert exc.value.retry_after == 50  # when the first leaves the window
    throttle.take("192.0.2.2", 10.0)  # another address
    with pytest.raises(ProtocolError):
        throttle.take("192.0.2.1", 59.0)
    throttle.take("192.0.2.1", 60.5)


def test_an_ipv6_subscriber_is_one_address_for_registrations() -> None:
    throttle = RegistrationThrottle(per_window=2)
    throttle.take("2001:db8::1", 0.0)
    throttle.take("2001:db8::2", 0.0)
    with pytest.raises(ProtocolError):
        throttle.take("2001:db8::ffff", 0.0)
