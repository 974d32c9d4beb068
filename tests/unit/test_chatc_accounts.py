"""Unit tests of chatc's account parts (PROTOCOL.txt 18.3): the token store on a real
file in tmp_path, and the session's connect fields."""

from __future__ import annotations

import stat
from pathlib import Path

from chatc import events as e
from chatc.actions import Show
from chatc.session import Session
from chatc.tokens import MAX_TOKENS, Saved, TokenStore, default_path
from chatd import protocol as p


def test_tokens_are_kept_readable_by_the_user_only_per_server_and_account(
        tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "state" / "chatc" / "tokens.json")
    assert store.get("h", 5000, "alice") is None  # no file yet
    store.put("h", 5000, "alice", "t1")
    store.put("h", 5001, "alice", "t2")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.get("h", 5000, "ALICE") == "t1"  # the account's name key (5.1)
    assert store.get("h", 5001, "alice") == "t2"
    store.forget("h", 5000, "alice")
    assert store.get("h", 5000, "alice") is None
    assert store.get("h", 5001, "alice") == "t2"


def test_the_store_is_bounded_and_a_garbled_file_counts_as_empty(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    for n in range(MAX_TOKENS + 5):
        store.put("h", 1000 + n, "alice", f"t{n}")
    assert store.get("h", 1000, "alice") is None  # the oldest went first
    assert store.get("h", 1000 + MAX_TOKENS + 4, "alice") == f"t{MAX_TOKENS + 4}"
    store.path.write_text("{not json")
    assert store.get("h", 1000, "alice") is None
    saved = Saved(store.path, "h", 1, "bob")
    saved.changed("tb")
    assert Saved(store.path, "h", 1, "bob").token == "tb"


def test_default_path_follows_xdg_state_home() -> None:
    assert default_path({"XDG_STATE_HOME": "/s", "HOME": "/h"}) == Path("/s/chatc/tokens.json")
    assert default_path({"HOME": "/h"}) == Path("/h/.local/state/chatc/tokens.json")


def test_connect_carries_the_password_until_a_token_replaces_it() -> None:
    session = Session("alice", login="secret")
    first = session.hello(resume=False)
    assert (first.login, first.login_token) == ("secret", None)
    welcome = p.Welcome("alice", "lobby", ("alice",), resume="r1", account="alice",
                        login_token="tok")
    session.welcomed(welcome, 0.0)
    again = session.hello(resume=True)
    assert (again.login, again.login_token, again.resume) == (None, "tok", "r1")
    assert session.login is None  # the password is not kept past the welcome


def test_a_refused_token_on_reconnect_is_forgotten_and_the_session_ends() -> None:
    session = Session("alice", login_token="old", reconnect=True)
    assert session.hello(resume=False).login_token == "old"
    session.welcomed(p.Welcome("alice", "lobby", ("alice",), resume="r1"), 0.0)
    session.connection_lost("reset", 1.0)
    actions = session.attempt_refused(p.Error(p.ErrorCode.LOGIN_FAILED,
                                              "wrong password for alice"), 2.0)
    assert session.login_token is None
    gone = [a.event for a in actions if isinstance(a, Show) and isinstance(a.event, e.Gone)]
    assert gone and "--login" in (gone[0].reason or "")


def test_logout_forgets_the_token() -> None:
    session = Session("alice", login_token="old")
    session.command(p.Logout(), 0.0)
    assert session.login_token is None
