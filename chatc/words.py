"""Server errors as a person reads them: what happened and what to do, not a code.

Pure. Every decision hangs on the code (each has one meaning, PROTOCOL.txt 7), the error
line's fields (until, retry_after, max_line_bytes) and what chatc asked for; the server's
message is only shown, never read. The code stays available to the caller (shown dim at
the end of the line on a terminal, in parentheses in plain text): it is what one
searches for or reports.
"""

from __future__ import annotations

from chatd import protocol as p

E = p.ErrorCode

# What to do after each error whose server message says what happened well enough.
_ADVICE: dict[str, str] = {
    E.BAD_FIELD: "check the command with /help",
    E.BAD_ID: "give a message id, as /history shows them",
    E.BAD_UTF8: "that line was not sent",
    E.BAD_JSON: "that line was not sent",
    E.UNKNOWN_TYPE: "this chatc and the server do not agree on the protocol",
}

# Errors whose server message is for developers: the whole sentence is ours.
_SAID: dict[str, str] = {
    E.EXCESS_FLOOD: "you sent too many lines too fast, and the server disconnected you",
    E.AUTH_FAILED: "the server wants a password, and it was missing or wrong",
    E.SERVER_FULL: "the server is full; try again in a while",
    E.TOO_MANY_CONNECTIONS: "too many connections from your address; close another chatc "
                            "and try again",
    E.REGISTRATION_TIMEOUT: "the server waited too long for chatc to join",
    E.PING_TIMEOUT: "the server heard nothing from chatc for too long and hung up",
    E.UNAVAILABLE: "the server could not take that just now; send it again",
    E.INTERNAL: "the server failed on that line (its fault, and it is logged there); "
                "send it again",
    E.NOT_JOINED: "the server does not know you yet; reconnect",
    E.ALREADY_JOINED: "this connection has joined already",
    E.ALREADY_IN_ROOM: "you are in that room already",
}


def _wait(seconds: int | None) -> str:
    if not seconds:
        return "wait a while"
    return f"wait {seconds} second{'s' if seconds != 1 else ''}" if seconds < 90 else \
        f"wait {round(seconds / 60)} minutes"


def words(error: p.Error, *, name: str | None = None, to: str | None = None,
          limit: int | None = None, joining: bool = False, command: str | None = None) -> str:
    """What happened and what to do. `name`: the name asked for (nick); `to`: the user a
    private line was for; `limit`: the server's line limit in bytes, if known; `joining`:
    the answer to the connect line (then no /command can help); `command`: the command
    word typed, for unknown_command."""
    code, message = error.code, error.message
    if code in _SAID:
        return _SAID[code]
    if code == E.NAME_TAKEN:
        if name is None:
            return "that name is taken; try another with /nick NAME"
        return f"{name} is taken; try /nick {p.visible(name)[:30]}_"
    if code == E.SAME_NAME:
        return f"you are {name} already" if name else "that is your name already"
    if code == E.NAME_BANNED:
        return f"{message}; choose another name"
    if code == E.AUTH_THROTTLED:
        return f"too many wrong passwords from your address; {_wait(error.retry_after)}"
    if code == E.OPER_THROTTLED:
        return (f"too many wrong operator passwords from your address; "
                f"{_wait(error.retry_after)}, then try /oper again")
    if code == E.BAD_NAME:
        nick = "" if joining else "; try another with /nick NAME"
        return f"that name cannot be used: {message}{nick}"
    if code == E.BAD_ROOM:
        return f"cannot go there: {message}"
    if code == E.NO_SUCH_USER:
        who = f"nobody called {to}" if to else "nobody by that name"
        return f"{who} is online; see /who all"
    if code == E.UNKNOWN_COMMAND:
        if command is None:
            return "that is not a command; /help lists them"
        return f"{command} is not a command; /help lists them, and /{command} sends it as text"
    if code == E.LINE_TOO_LONG:
        # The server's own limit, when its error names it: it can be below what chatc
        # checked against (a server that does not announce its limit).
        limit = error.max_line_bytes or limit
        most = f" of {limit:,} bytes" if limit else ""
        return f"over the server's limit{most}; shorten it"
    if code == E.RATE_LIMITED:
        return "you are sending too fast; wait a moment and send it again"
    if code == "no_answer":  # chatc's own (chatc.session.NO_ANSWER)
        return f"{message}; it may not have arrived (check, then send it again)"
    advice = _ADVICE.get(code)
    return f"{message}; {advice}" if advice else message


def explain(error: p.Error, *, joining: bool = False) -> str:
    """`words` with the code at the end, for plain text (line mode, stderr)."""
    return f"{words(error, joining=joining)} ({error.code})"
