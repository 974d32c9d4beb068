"""The accounts a hub holds (PROTOCOL.txt 18), and where they are kept: the state part
of chatd.hub.accounts, which holds the handlers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from chatd.accounts import (
    Account,
    Accounts,
    AccountsMode,
    AccountsPolicy,
    LoginTokens,
    ReadMarkers,
    RegistrationMode,
)
from chatd.hub.base import HubConfig, id_key
from chatd.protocol import name_key


class AccountsSink(Protocol):
    """Where accounts are kept across a restart (chatd.store.SqliteHistory)."""

    def save_account(self, account: Account) -> None: ...

    def drop_account(self, key: str) -> None: ...

    def rename_account(self, old: str, account: Account) -> None: ...

    def save_marker(self, account: str, room: str, id_: str) -> None: ...

    def save_token(self, digest: str, account: str, used: float) -> None: ...

    def drop_token(self, digest: str) -> None: ...


class AccountsPart:
    """The accounts a hub holds, and what is on its way for them."""

    __slots__ = ("expired_at", "issued", "policy", "sink", "waiting")

    def __init__(self, config: HubConfig) -> None:
        self.policy = AccountsPolicy(
            Accounts(max_accounts=config.max_accounts, expiry=config.account_expiry),
            ReadMarkers(id_key), mode=AccountsMode(config.accounts),
            registration=RegistrationMode(config.registration),
            opers=(name for name, _ in config.opers))
        self.sink: AccountsSink | None = None
        # Connections not joined whose registration is on its way through the log (one
        # each at most: they wait for its answer).
        self.waiting: dict[int, Any] = {}
        # Login tokens issued on this node, by connection, until their welcome (18.3).
        self.issued: dict[int, str] = {}
        self.expired_at = 0.0

    def reload(self, config: HubConfig) -> None:
        """The accounts named by --oper / CHATD_OPERS may change with a reload."""
        self.policy.oper_keys = frozenset(name_key(name) for name, _ in config.opers)

    @property
    def on(self) -> bool:
        return self.policy.mode is not AccountsMode.OFF

    def load(self, accounts: Iterable[Account],
             markers: Iterable[tuple[str, str, str]] = (),
             tokens: Iterable[tuple[str, str, float]] = ()) -> None:
        """The accounts and read markers of the database at start (not read with
        --accounts off)."""
        if self.on:
            self.policy.accounts.load(accounts)
            self.policy.markers.load(markers)
            self.policy.tokens.load(tokens)

    def save_token(self, digest: str, account: str, used: float) -> None:
        if self.sink is not None:
            self.sink.save_token(digest, account, used)

    def save(self, account: Account) -> None:
        if self.sink is not None:
            self.sink.save_account(account)

    def registered(self, key: str) -> bool:
        return self.policy.registered(key) is not None

    # ------------------------------------------------------------------ snapshot (14)

    def snapshot(self) -> list[list[Any]]:
        return [[a.key, a.name, a.password, a.created, a.used, a.operator]
                for a in self.policy.accounts]

    def restore_tokens(self, rows: list[list[Any]]) -> None:
        self.policy.tokens = LoginTokens()
        self.policy.tokens.load((digest, account, used) for digest, account, used in rows)

    def restore_markers(self, rows: list[list[str]]) -> None:
        self.policy.markers = ReadMarkers(id_key)
        self.policy.markers.load((account, room, id_) for account, room, id_ in rows)

    def restore(self, records: list[list[Any]]) -> None:
        accounts = self.policy.accounts
        for account in list(accounts):
            accounts.remove(account.key)
        accounts.load(Account(name, key, password, created, used, bool(operator))
                      for key, name, password, created, used, operator in records)
