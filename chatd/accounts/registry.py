"""The accounts a server knows (PROTOCOL.txt 18): pure state, the clock passed in.

An account is a name key (5.1) with the name as registered, a stored password hash
(chatd.passwords: never the password), its operator flag and when it was made and last
used. The registry checks what may be registered and keeps the bounds; hashing, the
database and the wire are the caller's. Times are wall-clock seconds (time.time()):
expiry must outlast a restart.

Bounds (18.8): `max_accounts` accounts and `max_bytes` of them (counted by
`Account.cost`); at either, a registration is refused with too_many_accounts: an
account is never pushed out by a newer one. What shrinks the table is expiry (accounts
unused for `expiry` seconds, operators excepted) and dropping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Final

from chatd.protocol import DEFAULT_NAME, ErrorCode, ProtocolError, name_key

# What one account costs in memory besides its strings (measured with tracemalloc in
# tests/unit/test_accounts.py: the object, its slot in the table, the float times).
ACCOUNT_BYTES: Final = 270
DEFAULT_EXPIRY: Final = 365 * 86400.0
DEFAULT_MAX_ACCOUNTS: Final = 100_000


class AccountsMode(Enum):
    """--accounts (18.7)."""

    OFF = "off"  # no account lines; names are first come, first served, as before
    OPTIONAL = "optional"  # accounts may be used; a name never registered is as before
    REQUIRED = "required"  # only logged-in accounts may join


class RegistrationMode(Enum):
    """--registration (18.7)."""

    OPEN = "open"  # anyone (joined, or before connect under --accounts required)
    OPERATORS = "operators"  # an operator registers accounts for others
    CLOSED = "closed"  # nobody: the accounts there are (from the database) stay


@dataclass(slots=True)
class Account:
    name: str  # as registered (NFC), what everyone sees
    key: str  # name_key(name): what logins and uniqueness compare
    password: str  # the stored hash (chatd.passwords), never a password
    created: float
    used: float  # last login or last device leaving
    operator: bool = False

    def cost(self) -> int:
        """Bytes this account holds in memory, about (the bound of 18.8)."""
        return (ACCOUNT_BYTES + len(self.name.encode()) + len(self.key.encode())
                + len(self.password))


class Accounts:
    """Every account, by key, least recently used first (expiry takes from the front)."""

    __slots__ = ("_by_key", "bytes", "expiry", "max_accounts", "max_bytes")

    def __init__(self, *, max_accounts: int = DEFAULT_MAX_ACCOUNTS,
                 max_bytes: int = 64 * 1024 * 1024, expiry: float = DEFAULT_EXPIRY) -> None:
        self.max_accounts = max_accounts  # 0: no bound by count
        self.max_bytes = max_bytes
        self.expiry = expiry  # seconds unused after which an account goes; 0: never
        self._by_key: dict[str, Account] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._by_key.values()))

    def get(self, key: str) -> Account | None:
        return self._by_key.get(key)

    def load(self, accounts: Iterable[Account]) -> None:
        """The accounts of the database at start: all of them, even past the bounds (a
        lowered --max-accounts stops new registrations, it deletes nobody)."""
        for account in sorted(accounts, key=lambda a: a.used):
            self._put(account)

    def check_register(self, name: str) -> str:
        """The key `name` would be registered under, or ProtocolError: call it before
        hashing (a refusal costs no hash) and `add` re-checks after."""
        key = name_key(name)
        if name == DEFAULT_NAME or key == name_key(DEFAULT_NAME):
            raise ProtocolError(ErrorCode.NAME_REGISTERED,
                                f"{DEFAULT_NAME} is everyone's name and cannot be registered")
        if key in self._by_key:
            raise ProtocolError(ErrorCode.NAME_REGISTERED,
                                f"{self._by_key[key].name} is registered already")
        if self.max_accounts and len(self._by_key) >= self.max_accounts:
            raise ProtocolError(ErrorCode.TOO_MANY_ACCOUNTS,
                                f"the server has its maximum of {self.max_accounts} accounts")
        if self.bytes + Account(name, key, "", 0, 0).cost() + 100 > self.max_bytes:
            raise ProtocolError(ErrorCode.TOO_MANY_ACCOUNTS,
                                "the server has no room for more accounts")
        return key

    def add(self, name: str, password_hash: str, now: float, *,
            operator: bool = False) -> Account:
        """Register `name` with an already computed hash; ProtocolError as check_register
        (a registration of a look-alike may have landed while the hash ran)."""
        key = self.check_register(name)
        account = Account(name, key, password_hash, now, now, operator)
        self._put(account)
        return account

    def set_password(self, key: str, password_hash: str) -> Account:
        account = self._get(key)
        self.bytes += len(password_hash) - len(account.password)
        account.password = password_hash
        return account

    def set_operator(self, key: str, operator: bool) -> Account:
        account = self._get(key)
        account.operator = operator
        return account

    def rename(self, key: str, new_name: str) -> Account:
        """An operator renames an account (18.6); its markers move with it (the caller's).
        A new name that is the same key (a change of case) is allowed."""
        account = self._get(key)
        new_key = name_key(new_name)
        if new_key != key:
            self.check_register(new_name)
        self.remove(key)
        account.name, account.key = new_name, new_key
        self._put(account)
        return account

    def remove(self, key: str) -> Account | None:
        account = self._by_key.pop(key, None)
        if account is not None:
            self.bytes -= account.cost()
        return account

    def touch(self, key: str, now: float) -> None:
        """The account was used (a login, its last device leaving): it expires later."""
        account = self._by_key.pop(key, None)
        if account is not None:
            account.used = max(account.used, now)
            self._by_key[key] = account

    def expire(self, now: float) -> list[Account]:
        """The accounts unused for `expiry` seconds, removed (operators stay): the caller
        drops them from the database and logs them. Costs what expires, not the table."""
        gone: list[Account] = []
        if self.expiry <= 0:
            return gone
        kept: list[Account] = []
        for account in self._by_key.values():
            if account.used > now - self.expiry:
                break
            (kept if account.operator else gone).append(account)
        for account in gone + kept:
            del self._by_key[account.key]
        for account in kept:  # to the back, skipped by the next looks (never expires)
            self._by_key[account.key] = account
        self.bytes -= sum(account.cost() for account in gone)
        return gone

    def _get(self, key: str) -> Account:
        account = self._by_key.get(key)
        if account is None:
            raise ProtocolError(ErrorCode.NO_SUCH_ACCOUNT, "no such account")
        return account

    def _put(self, account: Account) -> None:
        self._by_key[account.key] = account
        self.bytes += account.cost()
