"""Accounts (PROTOCOL.txt 18): names that are yours on every device, read markers and
mentions, as pure parts the hub calls; password hashing is chatd.passwords, storage
chatd.store.

- registry.py  the accounts (register, password, operator flag, rename, drop, expiry),
               the policy enums of --accounts and --registration, the error codes
- throttle.py  wrong passwords per address and per account, registrations per address
- markers.py   read markers per account and room, moving forward only
- mention.py   whether a line names its reader, costing the line's words, not its readers
- tokens.py    login tokens: a device logs in again without the slow hash
- policy.py    the decisions of register, login, password change and drop, split around
               the hash (a plan before it, a result after)
"""

from chatd.accounts.markers import ReadMarkers
from chatd.accounts.mention import mention_key, mention_words, mentioned, mentions
from chatd.accounts.policy import AccountsPolicy, Plain, Variant, Verify
from chatd.accounts.registry import (
    Account,
    Accounts,
    AccountsMode,
    RegistrationMode,
)
from chatd.accounts.throttle import LoginThrottle, RegistrationThrottle
from chatd.accounts.tokens import LoginTokens

__all__ = [
    "Account",
        "Accounts",
    "AccountsMode",
    "AccountsPolicy",
    "LoginThrottle",
    "LoginTokens",
    "Plain",
    "ReadMarkers",
    "RegistrationMode",
    "RegistrationThrottle",
    "Variant",
    "Verify",
    "mention_key",
    "mention_words",
    "mentioned",
    "mentions",
]
