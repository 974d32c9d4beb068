"""chatd.accounts.policy: what a connect, a register, a password change and a drop lead
to under --accounts and --registration (PROTOCOL.txt 18.2, 18.3, 18.7-18.9), before
and after the hash (which the tests make with cheap parameters)."""

from __future__ import annotations

import pytest

from chatd.accounts import Accounts, AccountsMode, ReadMarkers, RegistrationMode
from chatd.accounts.policy import AccountsPolicy, Plain, Variant, Verify
from chatd.hub import id_key
from chatd.passwords import ScryptParams, hash_password, verify_password
from chatd.protocol import ErrorCode, ProtocolError, name_key

FAST = ScryptParams(log_n=8)
IP = "192.0.2.1"


def _policy(**options: object) -> AccountsPolicy:
    return AccountsPolicy(Accounts(), ReadMarkers(id_key), **options)  # type: ignore[arg-type]


def _code(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ProtocolError) as exc:
        call(*args, **kwargs)  # type: ignore[operator]
    return exc.value.code


def _register(policy: AccountsPolicy, name: str, password: str, now: float = 0.0) -> None:
    policy.register_plan(name, password, IP, now, logged_in=False, operator=False)
    policy.register_done(name, hash_password(password, FAST), now)


def _login(policy: AccountsPolicy, name: str, password: str, ip: str = IP,
           now: float = 0.0) -> object:
    plan = policy.login_plan(name, password, ip, now)
    assert isinstance(plan, Verify)
    ok = verify_password(password, plan.account.password)  # the hasher's work
    if not ok:
        policy.failed_line(plan.account, ip, now)
    return policy.login_done(plan.account, ok, ip, now)


def test_a_registered_name_logs_in_under_any_look_alike() -> None:
    policy = _policy()
    _register(policy, "Alice", "correct horse")
    account = _login(policy, "ａｌｉｃｅ", "correct horse", now=50.0)
    assert account is policy.accounts.get("alice")
    assert policy.accounts.get("alice").used == 50.0  # type: ignore[union-attr]


def test_a_wrong_password_is_login_failed_and_a_guess() -> None:
    policy = _policy()
    _register(policy, "alice", "correct horse")
    for _ in range(3):
        assert _code(_login, policy, "alice", "wrong one") == ErrorCode.LOGIN_FAILED
    assert _code(_login, policy, "alice", "wrong one") == ErrorCode.LOGIN_FAILED
    # The fourth wrong one from this address: the next try waits, unchecked.
    assert _code(policy.login_plan, "alice", "correct horse", IP, 0.0) == \
        ErrorCode.LOGIN_THROTTLED
    assert _login(policy, "alice", "correct horse", ip="198.51.100.1") is not None


def test_a_login_for_a_name_nobody_registered_fails() -> None:
    assert _code(_policy().login_plan, "bob", "pw", IP, 0.0) == ErrorCode.LOGIN_FAILED


def test_without_a_login_an_account_name_gives_a_variant_or_is_required() -> None:
    optional = _policy()
    _register(optional, "alice", "correct horse")
    assert isinstance(optional.login_plan("Alice", None, IP, 0.0), Variant)
    assert isinstance(optional.login_plan("bob", None, IP, 0.0), Plain)  # seed behaviour
    required = _policy(mode=AccountsMode.REQUIRED)
    _register(required, "alice", "correct horse")
    assert _code(required.login_plan, "alice", None, IP, 0.0) == ErrorCode.ACCOUNT_REQUIRED
    assert _code(required.login_plan, "bob", None, IP, 0.0) == ErrorCode.ACCOUNT_REQUIRED


def test_accounts_off_is_todays_chat() -> None:
    off = _policy(mode=AccountsMode.OFF)
    off.accounts.add("alice", "x", 0.0)  # in the database from before
    assert isinstance(off.login_plan("alice", "pw", IP, 0.0), Plain)
    assert off.registered("alice") is None
    assert _code(off.register_plan, "bob", "secret!", IP, 0.0, logged_in=False,
                 operator=False) == ErrorCode.ACCOUNTS_OFF


def test_register_refusals() -> None:
    policy = _policy()
    _register(policy, "alice", "correct horse")
    plan = policy.register_plan
    assert _code(plan, "bob", "secret!", IP, 0.0, logged_in=True, operator=False) == \
        ErrorCode.ALREADY_REGISTERED
    assert _code(plan, "ALICE", "secret!", IP, 0.0, logged_in=False, operator=False) == \
        ErrorCode.NAME_REGISTERED
    assert _code(plan, "익명", "secret!", IP, 0.0, logged_in=False, operator=False) == \
        ErrorCode.NAME_REGISTERED
    assert _code(plan, "bob", "short", IP, 0.0, logged_in=False, operator=False) == \
        "bad_field"
    for name in ("bob", "carol"):  # with alice: three from this address in the minute
        _register(policy, name, "secret!")
    assert _code(plan, "dave", "secret!", IP, 1.0, logged_in=False, operator=False) == \
        ErrorCode.REGISTRATION_THROTTLED
    # An operator registers for someone, unthrottled, whatever --registration says.
    assert policy.register_plan("dave", "secret!", IP, 1.0, logged_in=True,
                                operator=True) == "dave"


@pytest.mark.parametrize(("mode", "code"), [(RegistrationMode.OPERATORS,
                                             ErrorCode.REGISTRATION_CLOSED),
                                            (RegistrationMode.CLOSED,
                                             ErrorCode.REGISTRATION_CLOSED)])
def test_registration_can_be_closed(mode: RegistrationMode, code: str) -> None:
    policy = _policy(registration=mode)
    assert _code(policy.register_plan, "bob", "secret!", IP, 0.0, logged_in=False,
                 operator=False) == code
    assert policy.register_plan("bob", "secret!", IP, 0.0, logged_in=False,
                                operator=True) == "bob"


def test_a_look_alike_registered_while_the_hash_ran_wins() -> None:
    policy = _policy()
    policy.register_plan("alice", "secret!", IP, 0.0, logged_in=False, operator=False)
    policy.register_plan("аlice", "secret!", "192.0.2.9", 0.0, logged_in=False,
                         operator=False)
    policy.register_done("alice", hash_password("secret!", FAST), 0.0)
    assert _code(policy.register_done, "аlice", "x", 0.0) == ErrorCode.NAME_REGISTERED


def test_operators_are_accounts_named_by_oper_or_flagged() -> None:
    policy = _policy(opers=["Root"])
    _register(policy, "root", "correct horse")
    _register(policy, "bob", "correct horse")
    root, bob = policy.accounts.get("root"), policy.accounts.get("bob")
    assert root is not None and bob is not None
    assert policy.is_operator(root) and not policy.is_operator(bob)
    policy.accounts.set_operator(bob.key, True)
    assert policy.is_operator(bob)


def test_password_change_and_unregister_verify_the_current_password_first() -> None:
    policy = _policy()
    _register(policy, "alice", "correct horse")
    assert _code(policy.change_plan, None, "new secret", IP, 0.0) == ErrorCode.NOT_LOGGED_IN
    assert _code(policy.change_plan, "alice", "short", IP, 0.0) == "bad_field"
    plan = policy.change_plan("alice", "new secret", IP, 0.0)
    assert plan.account.key == "alice"
    policy.markers.advance("alice", "dev", "5")
    policy.logins.succeeded(IP, "alice")
    assert policy.drop("alice") is not None
    assert policy.markers.of("alice") == {} and "alice" not in policy.logins.trusted
    assert policy.drop("alice") is None


def test_rename_and_expiry_take_markers_along() -> None:
    policy = _policy()
    _register(policy, "bob", "correct horse", now=0.0)
    policy.markers.advance("bob", "dev", "5")
    account = policy.rename("bob", "Robert")
    assert account.key == name_key("robert") and policy.markers.of(account.key) == {"dev": "5"}
    policy.accounts.expiry = 10.0
    assert [a.name for a in policy.expire(100.0)] == ["Robert"]
    assert len(policy.markers) == 0
