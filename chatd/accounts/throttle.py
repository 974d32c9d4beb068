"""Guessing and registering, throttled (PROTOCOL.txt 18.8): pure, the clock passed in.

Wrong account passwords are counted twice, per address group (8.4's groups: an IPv4
address, an IPv6 /64) and per account, each with chatd.admission.PasswordThrottle's
backoff. The per-account count is what stops many addresses guessing one account: it
grows with every wrong password from anywhere, so a botnet gets the same few tries an
hour as one address. The price of that would be that a guesser locks the owner out, so
an account trusts the address groups it last logged in from (TRUSTED_GROUPS of them,
in memory): a try from one of those waits only for its own address's wrong passwords.

Registrations are counted per address group in a sliding window, with
chatd.admission.Admission's connect throttle (the same table, bounded in bytes).

Every table here is bounded in bytes and forgets what is old (forget_after, window), so
none grows with the number of addresses or names tried.
"""

from __future__ import annotations

import math
from typing import Final

from chatd.admission import Admission, PasswordThrottle
from chatd.protocol import ErrorCode, ProtocolError

TRUSTED_GROUPS: Final = 4  # address groups an account remembers logging in from
# What one entry of a PasswordThrottle table costs (its key, a list of three numbers,
# the dict slot) and one account's trusted groups (a tuple of up to four groups).
FAILURE_ENTRY_BYTES: Final = 300
TRUSTED_ENTRY_BYTES: Final = 500


class LoginThrottle:
    """Wrong passwords per address group and per account; the trusted groups."""

    __slots__ = ("accounts", "addresses", "groups", "trusted", "trusted_size")

    def __init__(self, *, ipv6_prefix: int = 64, per_address: int = 3, per_account: int = 5,
                 max_wait: float = 300.0, forget_after: float = 3600.0,
                 table_bytes: int = 8 * 1024 * 1024) -> None:
        size = max(1, table_bytes // 3 // FAILURE_ENTRY_BYTES)
        self.addresses = PasswordThrottle(per_address, max_wait, forget_after, size)
        self.accounts = PasswordThrottle(per_account, max_wait, forget_after, size)
        self.trusted: dict[str, tuple[str, ...]] = {}  # account key -> groups, newest last
        self.trusted_size = max(1, table_bytes // 3 // TRUSTED_ENTRY_BYTES)
        self.groups = Admission(0, 0, ipv6_prefix=ipv6_prefix, throttle=0)  # group() only

    def check(self, ip: str, key: str | None, now: float) -> None:
        """Before a password of account `key` from `ip` is even hashed: ProtocolError
        login_throttled (with retry_after) when either must still wait. `key` None: the
        address only (a login token: it cannot be guessed, and the owner's devices must
        get in while others guess the password)."""
        group = self.groups.group(ip)
        wait = self.addresses.wait(group, now)
        if key is not None and group not in self.trusted.get(key, ()):
            wait = max(wait, self.accounts.wait(key, now))
        if wait > 0:
            seconds = math.ceil(wait)
            raise ProtocolError(ErrorCode.LOGIN_THROTTLED,
                                f"too many wrong passwords; try again in {seconds}s",
                                retry_after=seconds)

    def failed(self, ip: str, key: str, now: float, name: str | None = None) -> str:
        """A wrong password for account `key` (shown as `name`): counted for both; the
        audit line (never the password)."""
        group = self.groups.group(ip)
        by_address = self.addresses.failed(group, now)
        by_account = self.accounts.failed(key, now)
        return (f"audit: wrong password for account {name or key} from {group} ({by_address} in a "
                f"row from there, {by_account} for the account)")

    def failed_token(self, ip: str, now: float) -> str:
        """A login token that is not one: counted for the address; the audit line."""
        group = self.groups.group(ip)
        count = self.addresses.failed(group, now)
        return f"audit: unknown login token from {group} ({count} wrong in a row from there)"

    def succeeded(self, ip: str, key: str) -> None:
        """A right password: the account's count starts again and it trusts the group.
        The address's count stays: a right password for one account says nothing of the
        guesses it made at others."""
        group = self.groups.group(ip)
        self.accounts.failures.pop(key, None)
        groups = tuple(g for g in self.trusted.pop(key, ()) if g != group)
        if len(self.trusted) >= self.trusted_size:
            del self.trusted[next(iter(self.trusted))]
        self.trusted[key] = (*groups, group)[-TRUSTED_GROUPS:]

    def forget(self, key: str) -> None:
        """The account is gone (dropped, renamed, expired)."""
        self.accounts.failures.pop(key, None)
        self.trusted.pop(key, None)


class RegistrationThrottle:
    """At most `per_window` registrations per address group in any `window` seconds."""

    __slots__ = ("admission",)

    def __init__(self, *, per_window: int = 3, window: float = 60.0, ipv6_prefix: int = 64,
                 table_bytes: int = 4 * 1024 * 1024) -> None:
        self.admission = Admission(0, 0, ipv6_prefix=ipv6_prefix, throttle=per_window,
                                   window=window, table_bytes=table_bytes)

    def take(self, ip: str, now: float) -> None:
        """One registration from `ip`, or ProtocolError registration_throttled (with
        retry_after: when the oldest registration of the window leaves it)."""
        if self.admission.throttled(ip, now) is None:
            return
        recent = self.admission.recent.get(self.admission.group(ip), [])
        wait = (recent[0] + self.admission.window - now) if recent else self.admission.window
        seconds = max(1, math.ceil(wait))
        raise ProtocolError(ErrorCode.REGISTRATION_THROTTLED,
                            f"too many registrations from this address; try again in "
                            f"{seconds}s", retry_after=seconds)
