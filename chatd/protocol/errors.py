"""Errors: the stable codes a client sees (PROTOCOL.txt section 7) and the exception that
carries one from wherever a client line is refused to the line that answers it."""

from __future__ import annotations

from collections import Counter
from typing import Final

# Error lines encoded for clients, by code (chatd.metrics reads it). Counted where an error
# is encoded, which is where it is sent: the hub encodes an answer on its origin node only.
ERRORS_SENT: Counter[str] = Counter()


class ErrorCode:
    """Stable error codes (PROTOCOL.txt section 7)."""

    BAD_UTF8: Final = "bad_utf8"
    BAD_JSON: Final = "bad_json"
    LINE_TOO_LONG: Final = "line_too_long"
    UNKNOWN_TYPE: Final = "unknown_type"
    UNKNOWN_COMMAND: Final = "unknown_command"
    BAD_FIELD: Final = "bad_field"
    BAD_NAME: Final = "bad_name"
    BAD_ROOM: Final = "bad_room"
    ALREADY_IN_ROOM: Final = "already_in_room"
    NOT_IN_ROOM: Final = "not_in_room"
    TOO_MANY_ROOMS: Final = "too_many_rooms"
    SAME_NAME: Final = "same_name"
    NOT_JOINED: Final = "not_joined"
    ALREADY_JOINED: Final = "already_joined"
    NAME_TAKEN: Final = "name_taken"
    NO_SUCH_USER: Final = "no_such_user"
    BAD_ID: Final = "bad_id"
    RATE_LIMITED: Final = "rate_limited"
    EXCESS_FLOOD: Final = "excess_flood"
    AUTH_FAILED: Final = "auth_failed"
    AUTH_THROTTLED: Final = "auth_throttled"
    SERVER_FULL: Final = "server_full"
    TOO_MANY_CONNECTIONS: Final = "too_many_connections"
    REGISTRATION_TIMEOUT: Final = "registration_timeout"
    PING_TIMEOUT: Final = "ping_timeout"
    UNAVAILABLE: Final = "unavailable"
    NOT_OPERATOR: Final = "not_operator"
    OPER_FAILED: Final = "oper_failed"
    OPER_THROTTLED: Final = "oper_throttled"
    BANNED: Final = "banned"
    NAME_BANNED: Final = "name_banned"
    KICKED: Final = "kicked"
    MUTED: Final = "muted"
    NO_SUCH_BAN: Final = "no_such_ban"
    NOT_MUTED: Final = "not_muted"
    INTERNAL: Final = "internal_error"
    # Accounts (PROTOCOL.txt 18.12)
    LOGIN_FAILED: Final = "login_failed"
    LOGIN_THROTTLED: Final = "login_throttled"
    ACCOUNT_REQUIRED: Final = "account_required"
    NAME_REGISTERED: Final = "name_registered"
    ALREADY_REGISTERED: Final = "already_registered"
    NOT_LOGGED_IN: Final = "not_logged_in"
    ACCOUNT_NAME: Final = "account_name"
    REGISTRATION_CLOSED: Final = "registration_closed"
    REGISTRATION_THROTTLED: Final = "registration_throttled"
    TOO_MANY_ACCOUNTS: Final = "too_many_accounts"
    TOO_MANY_DEVICES: Final = "too_many_devices"
    LOGGED_OUT: Final = "logged_out"
    ACCOUNTS_OFF: Final = "accounts_off"
    ACCOUNTS_BUSY: Final = "accounts_busy"
    NO_SUCH_ACCOUNT: Final = "no_such_account"


class ProtocolError(Exception):
    """A client line the server cannot accept; answered with an error update.

    `until`, `retry_after` and `max_line_bytes` are the error line's structured fields
    (PROTOCOL.txt 7, declared in spec.py), so a client decides on them, never on the
    message."""

    def __init__(self, code: str, message: str, ref: str | None = None, *,
                 until: str | None = None, retry_after: int | None = None,
                 max_line_bytes: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref
        self.until = until
        self.retry_after = retry_after
        self.max_line_bytes = max_line_bytes

    def _key(self) -> tuple[str, str, str | None, str | None, int | None, int | None]:
        return (self.code, self.message, self.ref, self.until, self.retry_after,
                self.max_line_bytes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProtocolError) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())
