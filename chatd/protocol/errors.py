"""Errors: the stable codes a client sees (PROTOCOL.txt section 7), each declared once
with its one meaning (`ERRORS`: PROTOCOL.txt's table, /commands.js and the clients read
it), and the exception that carries one from wherever a client line is refused to the
line that answers it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
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
    (PROTOCOL.txt 7, declared in `ERRORS`), so a client decides on them, never on the
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


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """An error code with its one meaning (PROTOCOL.txt 7); `closes`: the server closes
    the connection after it; `fields`: what its line carries besides code and message."""

    code: str
    meaning: str
    closes: bool = False
    fields: tuple[str, ...] = ()


ERRORS: Final[tuple[ErrorSpec, ...]] = (
    ErrorSpec(ErrorCode.BAD_UTF8, "the line is not valid UTF-8"),
    ErrorSpec(ErrorCode.BAD_JSON, "the line is not a JSON object"),
    ErrorSpec(ErrorCode.LINE_TOO_LONG, "the line is longer than the limit",
              fields=("max_line_bytes",)),
    ErrorSpec(ErrorCode.UNKNOWN_TYPE, "the type is not a client line"),
    ErrorSpec(ErrorCode.UNKNOWN_COMMAND, "text mode: an unknown /command"),
    ErrorSpec(ErrorCode.BAD_FIELD, "a field is missing, of the wrong type or out of range"),
    ErrorSpec(ErrorCode.BAD_NAME, "the name is not a valid name"),
    ErrorSpec(ErrorCode.SAME_NAME, "nick to the name one has already"),
    ErrorSpec(ErrorCode.BAD_ROOM, "the room is not a valid room name"),
    ErrorSpec(ErrorCode.ALREADY_IN_ROOM, "the user is in that room already"),
    ErrorSpec(ErrorCode.NOT_IN_ROOM, "the user is not in that room (or in none)"),
    ErrorSpec(ErrorCode.TOO_MANY_ROOMS, "a join past the server's rooms per user"),
    ErrorSpec(ErrorCode.BAD_ID, "not a message id"),
    ErrorSpec(ErrorCode.NOT_JOINED, "a line before connect"),
    ErrorSpec(ErrorCode.ALREADY_JOINED, "connect on a connection that has joined"),
    ErrorSpec(ErrorCode.NAME_TAKEN, "the name is in use"),
    ErrorSpec(ErrorCode.NO_SUCH_USER, "nobody has that name"),
    ErrorSpec(ErrorCode.RATE_LIMITED, "over flood control; the line was dropped"),
    ErrorSpec(ErrorCode.EXCESS_FLOOD, "kept flooding", closes=True),
    ErrorSpec(ErrorCode.AUTH_FAILED, "wrong or missing password", closes=True),
    ErrorSpec(ErrorCode.AUTH_THROTTLED, "too many wrong passwords from this address: wait",
              closes=True, fields=("retry_after",)),
    ErrorSpec(ErrorCode.SERVER_FULL, "the server has its maximum of connections",
              closes=True),
    ErrorSpec(ErrorCode.TOO_MANY_CONNECTIONS, "the address has its maximum of connections",
              closes=True),
    ErrorSpec(ErrorCode.REGISTRATION_TIMEOUT, "no connect in time", closes=True),
    ErrorSpec(ErrorCode.PING_TIMEOUT, "no answer to a keepalive ping", closes=True),
    ErrorSpec(ErrorCode.UNAVAILABLE, "the server cannot take the line now; try again"),
    ErrorSpec(ErrorCode.INTERNAL, "the server failed on this line"),
    ErrorSpec(ErrorCode.NOT_OPERATOR, "a moderation line from someone not an operator"),
    ErrorSpec(ErrorCode.OPER_FAILED, "wrong operator name or password"),
    ErrorSpec(ErrorCode.OPER_THROTTLED, "too many wrong operator passwords: wait",
              fields=("retry_after",)),
    ErrorSpec(ErrorCode.KICKED, "an operator removed you from the server", closes=True),
    ErrorSpec(ErrorCode.BANNED, "the name or address is banned", closes=True,
              fields=("until",)),
    ErrorSpec(ErrorCode.NAME_BANNED, "nick to a banned name", fields=("until",)),
    ErrorSpec(ErrorCode.MUTED, "muted in this room; the line was not sent"),
    ErrorSpec(ErrorCode.NO_SUCH_BAN, "unban of a ban not in force"),
    ErrorSpec(ErrorCode.NOT_MUTED, "unmute of someone not muted"),
    ErrorSpec(ErrorCode.LOGIN_FAILED, "wrong password, or no such account"),
    ErrorSpec(ErrorCode.LOGIN_THROTTLED, "too many wrong account passwords: wait",
              fields=("retry_after",)),
    ErrorSpec(ErrorCode.ACCOUNT_REQUIRED, "only logged-in accounts may join"),
    ErrorSpec(ErrorCode.NAME_REGISTERED, "the name is an account's"),
    ErrorSpec(ErrorCode.ALREADY_REGISTERED, "register while logged in"),
    ErrorSpec(ErrorCode.NOT_LOGGED_IN, "an account line without an account"),
    ErrorSpec(ErrorCode.ACCOUNT_NAME, "nick while logged in"),
    ErrorSpec(ErrorCode.REGISTRATION_CLOSED, "registration is closed here"),
    ErrorSpec(ErrorCode.REGISTRATION_THROTTLED, "too many registrations from this address",
              fields=("retry_after",)),
    ErrorSpec(ErrorCode.TOO_MANY_ACCOUNTS, "the server has its most accounts"),
    ErrorSpec(ErrorCode.TOO_MANY_DEVICES, "the account has its most devices"),
    ErrorSpec(ErrorCode.LOGGED_OUT, "the account was dropped: this device is closed",
              closes=True),
    ErrorSpec(ErrorCode.ACCOUNTS_OFF, "the server has no accounts"),
    ErrorSpec(ErrorCode.NO_SUCH_ACCOUNT, "an operator's account line for no account"),
    ErrorSpec(ErrorCode.ACCOUNTS_BUSY, "too many password hashes at once: wait",
              fields=("retry_after",)),
)

ERROR_BY_CODE: Final = {e.code: e for e in ERRORS}
