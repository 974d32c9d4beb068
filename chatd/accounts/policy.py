"""The decisions of PROTOCOL.txt 18.2, 18.3, 18.7 and 18.9, in their order, pure.

A hash takes tens of milliseconds and runs off the loop (chatd.passwords.Hasher), so
every request that needs one is split in two: a `..._plan` step that refuses what it
can before any hash (each refusal a ProtocolError with its code) and says what to hash
or verify, and a `..._done` step fed the hash's outcome. Between the two the hub waits
for the shell's hasher; the plan's checks are made again where a registration of a
look-alike may have landed meanwhile.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from chatd.accounts.markers import ReadMarkers
from chatd.accounts.registry import Account, Accounts, AccountsMode, RegistrationMode
from chatd.accounts.throttle import LoginThrottle, RegistrationThrottle
from chatd.accounts.tokens import LoginTokens
from chatd.passwords import check_password
from chatd.protocol import ErrorCode, ProtocolError, name_key


@dataclass(frozen=True, slots=True)
class Verify:
    """Verify the given password against `account.password`, then call `login_done`
    (or `password_done`, `unregister_done`) with the outcome."""

    account: Account


@dataclass(frozen=True, slots=True)
class Variant:
    """The name is an account's and no password came (--accounts optional): join under
    the first free variant, the welcome's notice saying why (18.3)."""

    account: Account


@dataclass(frozen=True, slots=True)
class Plain:
    """No account is involved: join as today."""


class AccountsPolicy:
    """The accounts of a server with its options and throttles."""

    __slots__ = ("accounts", "logins", "markers", "mode", "oper_keys", "registration",
                 "registrations", "tokens")

    def __init__(self, accounts: Accounts, markers: ReadMarkers, *,
                 mode: AccountsMode = AccountsMode.OPTIONAL,
                 registration: RegistrationMode = RegistrationMode.OPEN,
                 opers: Iterable[str] = (), logins: LoginThrottle | None = None,
                 registrations: RegistrationThrottle | None = None,
                 tokens: LoginTokens | None = None) -> None:
        self.accounts = accounts
        self.markers = markers
        self.mode = mode
        self.registration = registration
        self.oper_keys = frozenset(name_key(name) for name in opers)  # --oper's names
        self.logins = logins or LoginThrottle()
        self.registrations = registrations or RegistrationThrottle()
        self.tokens = tokens or LoginTokens()

    def is_operator(self, account: Account) -> bool:
        """18.8: flagged by an operator, or named by --oper / CHATD_OPERS."""
        return account.operator or account.key in self.oper_keys

    def registered(self, key: str) -> Account | None:
        """The account of a name key (the hub's variant picking skips these)."""
        return None if self.mode is AccountsMode.OFF else self.accounts.get(key)

    # ------------------------------------------------------------------ log in (18.3)

    def login_plan(self, name: str, login: str | None, ip: str, now: float
                   ) -> Verify | Variant | Plain:
        """What a connect asking for `name` (normalized, 5.1) with `login` leads to."""
        if self.mode is AccountsMode.OFF:
            return Plain()
        account = self.accounts.get(name_key(name))
        if login is not None:
            if account is None:
                raise ProtocolError(ErrorCode.LOGIN_FAILED,
                                    f"{name} is not a registered name")
            self.logins.check(ip, account.key, now)
            return Verify(account)
        if self.mode is AccountsMode.REQUIRED:
            raise ProtocolError(ErrorCode.ACCOUNT_REQUIRED,
                                f"this server needs an account: "
                                f"{'log in to' if account else 'register'} {name} first")
        return Plain() if account is None else Variant(account)

    def login_done(self, account: Account, ok: bool, ip: str, now: float) -> Account:
        """The verification of a login (or of a password change or unregister) came
        back: the account (touched), or login_failed (counted as a guess). Its audit
        line is `failed_line`. The account may have gone while the hash ran."""
        current = self.accounts.get(account.key)
        if not ok or current is None:
            raise ProtocolError(ErrorCode.LOGIN_FAILED, f"wrong password for {account.name}")
        self.logins.succeeded(ip, current.key)
        self.accounts.touch(current.key, now)
        return current

    def token_login(self, name: str, token: str, ip: str, now: float
                    ) -> tuple[Account, str] | Plain:
        """A connect carrying a login token instead of a password (18.3): the account
        and the token's digest (store its new use), with no hash to wait for. A token
        that is not one, or is another account's: login_failed, counted for the
        address only (a token cannot be guessed; the account's own devices must get in
        while someone guesses its password)."""
        if self.mode is AccountsMode.OFF:
            return Plain()
        self.logins.check(ip, None, now)
        found = self.tokens.check(token, now)
        account = self.accounts.get(found[0]) if found is not None else None
        if found is None or account is None or account.key != name_key(name):
            self.logins.failed_token(ip, now)
            raise ProtocolError(ErrorCode.LOGIN_FAILED,
                                "this login token is not valid (any more): log in with "
                                "the password")
        self.accounts.touch(account.key, now)
        return account, found[1]

    def failed_line(self, account: Account, ip: str, now: float) -> str:
        """Counts a wrong password for `account` from `ip`: the audit line."""
        return self.logins.failed(ip, account.key, now, account.name)

    # ------------------------------------------------------------------ register (18.2)

    def register_plan(self, name: str, password: str, ip: str, now: float, *,
                      logged_in: bool, operator: bool) -> str:
        """The key `name` would get; refusals in 18.2's order, before any hash (the
        name_taken check of an unjoined register, by the online names, is the hub's).
        An operator registers whatever --registration says, and is not throttled."""
        if self.mode is AccountsMode.OFF:
            raise ProtocolError(ErrorCode.ACCOUNTS_OFF, "this server has no accounts")
        if logged_in and not operator:
            raise ProtocolError(ErrorCode.ALREADY_REGISTERED,
                                "you are logged in to an account already")
        if not operator and self.registration is not RegistrationMode.OPEN:
            raise ProtocolError(ErrorCode.REGISTRATION_CLOSED,
                                "only operators register accounts here"
                                if self.registration is RegistrationMode.OPERATORS
                                else "this server takes no new accounts")
        name = unicodedata.normalize("NFC", name)
        key = self.accounts.check_register(name)  # name_registered, too_many_accounts
        if (why := check_password(password)) is not None:
            raise ProtocolError(ErrorCode.BAD_FIELD, why)
        if not operator:
            self.registrations.take(ip, now)  # registration_throttled
        return key

    def register_done(self, name: str, password_hash: str, now: float) -> Account:
        """The hash is made: the account (the checks of the plan again: a look-alike may
        have been registered meanwhile)."""
        return self.accounts.add(unicodedata.normalize("NFC", name), password_hash, now)

    # ------------------------------------------------------------------ password, drop

    def change_plan(self, key: str | None, new: str | None, ip: str, now: float) -> Verify:
        """A password change (new given) or an unregister (new None) by the account
        `key` (None: not logged in): verify the current password first."""
        if self.mode is AccountsMode.OFF:
            raise ProtocolError(ErrorCode.ACCOUNTS_OFF, "this server has no accounts")
        account = self.accounts.get(key) if key is not None else None
        if account is None:
            raise ProtocolError(ErrorCode.NOT_LOGGED_IN, "you are not logged in to an account")
        if new is not None and (why := check_password(new)) is not None:
            raise ProtocolError(ErrorCode.BAD_FIELD, why)
        self.logins.check(ip, account.key, now)
        return Verify(account)

    def password_done(self, account: Account, password_hash: str, keep: str | None
                      ) -> list[str]:
        """The new password's hash is made (after `change_plan`'s verification): stored,
        and the account's login tokens revoked but the asking device's (`keep`): the
        digests revoked, for the database."""
        self.accounts.set_password(account.key, password_hash)
        return self.tokens.revoke_account(account.key, keep=keep)

    def drop(self, key: str) -> Account | None:
        """The account goes, with its markers, tokens and throttle records (unregister,
        an operator's drop, expiry); the caller drops it from the database too."""
        account = self.accounts.remove(key)
        if account is not None:
            self.markers.drop(key)
            self.tokens.revoke_account(key)
            self.logins.forget(key)
        return account

    def rename(self, key: str, new_name: str) -> Account:
        """An operator renames an account; markers follow (18.8)."""
        account = self.accounts.rename(key, unicodedata.normalize("NFC", new_name))
        self.markers.rename(key, account.key)
        self.tokens.rename(key, account.key)
        self.logins.forget(key)
        return account

    def expire(self, now: float) -> list[Account]:
        """Accounts unused past --account-expiry, dropped with their markers."""
        gone = self.accounts.expire(now)
        for account in gone:
            self.markers.drop(account.key)
            self.tokens.revoke_account(account.key)
            self.logins.forget(account.key)
        return gone
