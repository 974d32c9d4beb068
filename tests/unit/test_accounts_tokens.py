"""chatd.accounts.tokens (PROTOCOL.txt 18.3, 18.10): login tokens, kept as digests only,
bounded per account and in all; their use through the policy and the database."""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path

import pytest

from chatd.accounts import Accounts, AccountsPolicy, LoginTokens, ReadMarkers
from chatd.accounts.tokens import TOKEN_ENTRY_BYTES, digest
from chatd.hub import id_key
from chatd.passwords import ScryptParams, hash_password
from chatd.protocol import ErrorCode, ProtocolError
from chatd.store import SqliteHistory

IP = "192.0.2.1"


def test_a_token_logs_its_account_in_and_the_server_keeps_only_its_digest() -> None:
    tokens = LoginTokens()
    token, key = tokens.issue("alice", 1.0)
    assert len(token) >= 43 and key == digest(token) and token not in key
    assert tokens.check(token, 2.0) == ("alice", key)
    assert tokens.check(token + "x", 2.0) is None
    assert tokens.rows() == [(key, "alice", 2.0)]  # marked used
    assert tokens.revoke(key) == "alice"
    assert tokens.check(token, 3.0) is None and tokens.bytes == 0


def test_tokens_are_bounded_per_account_the_least_recently_used_going() -> None:
    tokens = LoginTokens(per_account=2)
    first, _ = tokens.issue("alice", 1.0)
    second, _ = tokens.issue("alice", 2.0)
    tokens.check(first, 3.0)  # used again: now the most recent
    tokens.issue("alice", 4.0)
    assert tokens.check(second, 5.0) is None
    assert tokens.check(first, 5.0) is not None
    assert len(tokens.of("alice")) == 2


def test_tokens_are_bounded_in_bytes() -> None:
    one = TOKEN_ENTRY_BYTES + len("user0")
    tokens = LoginTokens(max_bytes=3 * one)
    issued = [tokens.issue(f"user{i}", float(i))[0] for i in range(5)]
    assert len(tokens) == 3 and tokens.bytes <= 3 * one
    assert [tokens.check(t, 9.0) is not None for t in issued] == [False, False, True, True, True]


def test_revoking_an_account_keeps_the_asking_devices_token() -> None:
    tokens = LoginTokens()
    mine, my_key = tokens.issue("alice", 1.0)
    other, _ = tokens.issue("alice", 1.0)
    bobs, _ = tokens.issue("bob", 1.0)
    assert len(tokens.revoke_account("alice", keep=my_key)) == 1
    assert tokens.check(mine, 2.0) and not tokens.check(other, 2.0) and tokens.check(bobs, 2.0)
    tokens.rename("alice", "alicia")
    assert tokens.check(mine, 3.0) == ("alicia", my_key)


def test_cost_per_token_is_what_memory_says() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tokens = LoginTokens(max_bytes=1 << 30)
        for i in range(10_000):
            tokens.issue(f"user{i // 2:05d}", float(i))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.8 * used <= tokens.bytes <= 1.25 * used, (used, tokens.bytes, used / 10_000)


def _policy() -> AccountsPolicy:
    policy = AccountsPolicy(Accounts(), ReadMarkers(id_key))
    policy.accounts.add("alice", hash_password("correct horse", ScryptParams(log_n=8)), 0.0)
    return policy


def test_a_token_login_needs_no_hash_and_is_checked_against_the_name() -> None:
    policy = _policy()
    token, key = policy.tokens.issue("alice", 0.0)
    found = policy.token_login("ALICE", token, IP, 10.0)
    assert found == (policy.accounts.get("alice"), key)
    with pytest.raises(ProtocolError) as exc:
        policy.token_login("bob", token, IP, 10.0)  # another name: not its token
    assert exc.value.code == ErrorCode.LOGIN_FAILED


def test_guessers_of_the_password_do_not_lock_out_the_owners_tokens() -> None:
    policy = _policy()
    token, _ = policy.tokens.issue("alice", 0.0)
    account = policy.accounts.get("alice")
    assert account is not None
    for i in range(50):
        policy.failed_line(account, f"10.0.{i}.1", 0.0)
    with pytest.raises(ProtocolError):
        policy.login_plan("alice", "guess", "10.9.9.9", 0.0)  # the account waits
    assert policy.token_login("alice", token, "10.9.9.9", 0.0)  # its devices do not


def test_wrong_tokens_make_their_address_wait() -> None:
    policy = _policy()
    for _ in range(4):
        with pytest.raises(ProtocolError):
            policy.token_login("alice", "not a token", IP, 0.0)
    with pytest.raises(ProtocolError) as exc:
        policy.token_login("alice", "not a token", IP, 0.0)
    assert exc.value.code == ErrorCode.LOGIN_THROTTLED


def test_a_password_change_revokes_the_other_devices_tokens() -> None:
    policy = _policy()
    mine, my_key = policy.tokens.issue("alice", 0.0)
    other, other_key = policy.tokens.issue("alice", 0.0)
    account = policy.change_plan("alice", "new secret", IP, 0.0).account
    assert policy.password_done(account, "$scrypt$new", keep=my_key) == [other_key]
    assert policy.token_login("alice", mine, IP, 1.0)
    with pytest.raises(ProtocolError):
        policy.token_login("alice", other, IP, 1.0)
    assert policy.drop("alice") is not None and len(policy.tokens) == 0


def test_tokens_survive_a_restart_as_digests(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteHistory(path, keep=100, tokens_per_account=2)
    tokens = LoginTokens(per_account=2)
    issued = []
    for now in (1.0, 2.0, 3.0):
        token, key = tokens.issue("alice", now)
        store.save_token(key, "alice", now)
        issued.append(token)
    revoked = tokens.issue("bob", 4.0)[1]
    store.save_token(revoked, "bob", 4.0)
    tokens.revoke(revoked)
    store.drop_token(revoked)
    store.close()
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT digest FROM login_tokens").fetchall()
    assert all(token not in str(stored) for token in issued)
    again = SqliteHistory(path, keep=100)
    loaded = LoginTokens(per_account=2)
    loaded.load(again.load_tokens())
    again.close()
    assert loaded.rows() == tokens.rows()
    assert [loaded.check(t, 9.0) is not None for t in issued] == [False, True, True]


def test_a_rename_in_the_database_takes_markers_and_tokens_along(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteHistory(path, keep=100)
    policy = _policy()
    account = policy.accounts.get("alice")
    assert account is not None
    store.save_account(account)
    store.save_token("d1", "alice", 1.0)
    store.save_marker("alice", "dev", "5")
    renamed = policy.rename("alice", "Alicia")
    store.rename_account("alice", renamed)
    store.close()
    again = SqliteHistory(path, keep=100)
    assert [a.key for a in again.load_accounts()] == ["alicia"]
    assert again.load_markers() == [("alicia", "dev", "5")]
    assert [row[:2] for row in again.load_tokens()] == [("d1", "alicia")]
    again.close()
