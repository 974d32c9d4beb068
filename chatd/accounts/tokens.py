"""Login tokens (PROTOCOL.txt 18.3): a device that logged in with its password gets a
token to log in with from then on, as Matrix and Slack clients keep an access token.

Why: a password check costs a slow hash (about 50 ms of a CPU, chatd.passwords) on
purpose, so that guessing is slow. Devices reconnect far more often than people type
passwords (every restart of the server brings all of them back at once: 5,000 devices
would wait 250 s for one CPU), and a page reloaded or a chatc restarted would otherwise
have to keep the password itself. A token is 32 random bytes, so it cannot be guessed,
and needs no slow hash: the server keeps only its SHA-256 digest, looked up in a table.

Bounds (18.10): `per_account` tokens an account (the least recently used goes: a device
that has not come back for long logs in with the password again) and `max_bytes` in all
(the least recently used on the server goes). A password change or an unregister revokes
an account's tokens; a logout line its device's.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Final

TOKEN_BYTES: Final = 32
DEFAULT_PER_ACCOUNT: Final = 20
# One token in memory besides its account key: the digest (64 characters), the two
# table slots, the entry (measured with tracemalloc in tests/unit/test_accounts_tokens.py).
TOKEN_ENTRY_BYTES: Final = 330


def digest(token: str) -> str:
    """What the server keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class LoginTokens:
    __slots__ = ("_by_account", "_by_digest", "bytes", "max_bytes", "per_account")

    def __init__(self, *, per_account: int = DEFAULT_PER_ACCOUNT,
                 max_bytes: int = 16 * 1024 * 1024) -> None:
        self.per_account = max(1, per_account)
        self.max_bytes = max_bytes
        self._by_digest: dict[str, tuple[str, float]] = {}  # digest -> (account, used), LRU
        self._by_account: dict[str, dict[str, None]] = {}  # account -> digests, LRU
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._by_digest)

    def issue(self, account: str, now: float) -> tuple[str, str]:
        """A new token for a device of `account`: (the token, to send once; its digest,
        to store)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        key = digest(token)
        self._put(key, account, now)
        return token, key

    def check(self, token: str, now: float) -> tuple[str, str] | None:
        """(account, digest) of a valid token, marked used now; None if it is not one."""
        key = digest(token)
        entry = self._by_digest.get(key)
        if entry is None:
            return None
        account = entry[0]
        self._put(key, account, now)
        return account, key

    def revoke(self, key: str) -> str | None:
        """One token goes (a logout); its account, if it was one."""
        entry = self._by_digest.pop(key, None)
        if entry is None:
            return None
        account = entry[0]
        digests = self._by_account[account]
        del digests[key]
        if not digests:
            del self._by_account[account]
        self.bytes -= _cost(account)
        return account

    def revoke_account(self, account: str, *, keep: str | None = None) -> list[str]:
        """Every token of an account goes but `keep` (a password change keeps the
        device's own); the digests that went, for the database."""
        gone = [key for key in self._by_account.get(account, {}) if key != keep]
        for key in gone:
            self.revoke(key)
        return gone

    def rename(self, old: str, new: str) -> None:
        """An account's key changed: its tokens follow."""
        if old == new:
            return
        for key in list(self._by_account.get(old, {})):
            used = self._by_digest[key][1]
            self.revoke(key)
            self._put(key, new, used)

    def of(self, account: str) -> list[str]:
        return list(self._by_account.get(account, {}))

    def rows(self) -> list[tuple[str, str, float]]:
        """(digest, account, used), least recently used first (a snapshot, the tests)."""
        return [(key, account, used) for key, (account, used) in self._by_digest.items()]

    def load(self, rows: Iterable[tuple[str, str, float]]) -> None:
        """(digest, account, used) from the database, least recently used first."""
        for key, account, used in rows:
            self._put(key, account, used)

    def _put(self, key: str, account: str, now: float) -> None:
        if key in self._by_digest:
            self.revoke(key)
        self._by_digest[key] = (account, now)
        digests = self._by_account.setdefault(account, {})
        digests[key] = None
        self.bytes += _cost(account)
        while len(digests) > self.per_account:
            self.revoke(next(iter(digests)))
        while self.bytes > self.max_bytes and len(self._by_digest) > 1:
            self.revoke(next(iter(self._by_digest)))


def _cost(account: str) -> int:
    return TOKEN_ENTRY_BYTES + len(account.encode())
