"""Server errors as a person reads them: what happened and what to do, not a code.

Pure. The code stays available to the caller (shown dim at the end of the line on a
terminal, in parentheses in plain text): it is what one searches for or reports.
"""

from __future__ import annotations

import re

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
}


def words(error: p.Error, *, name: str | None = None, to: str | None = None,
          limit: int | None = None, joining: bool = False) -> str:
    """What happened and what to do. `name`: the name asked for (nick); `to`: the user a
    private line was for; `limit`: the server's line limit in bytes, if known; `joining`:
    the answer to the connect line (then no /command can help)."""
    code, message = error.code, error.message
    if code in _SAID:
        return _SAID[code]
    if code == E.NAME_TAKEN:
        taken = name or message.removesuffix(" is taken")
        return f"{taken} is taken; try /nick {p.visible(taken)[:30]}_"
    if code == E.BAD_NAME:
        nick = "" if joining else "; try another with /nick NAME"
        return f"that name cannot be used: {message}{nick}"
    if code == E.BAD_ROOM:
        return f"cannot go there: {message}"
    if code == E.NO_SUCH_USER:
        who = to or message.removeprefix("no user named ")
        return f"nobody called {who} is online; see /who all"
    if code == E.UNKNOWN_COMMAND:
        command = message.removeprefix("unknown command ").split(" (")[0]
        return f"{command} is not a command; /help lists them, and /{command} sends it as text"
    if code == E.LINE_TOO_LONG:
        # The server's own limit, if its message names it: it can be below what chatc
        # checked against (a server that does not announce its limit).
        number = re.search(r"\d+", message)
        if number:
            limit = int(number.group())
        most = f" of {limit:,} bytes" if limit else ""
        return f"over the server's limit{most}; shorten it"
    if code == E.RATE_LIMITED:
        return "you are sending too fast; wait a moment and send it again"
    if code == "no_answer":  # chatc's own (chatc.connection.NO_ANSWER)
        return f"{message}; it may not have arrived (check, then send it again)"
    advice = _ADVICE.get(code)
    return f"{message}; {advice}" if advice else message


def explain(error: p.Error, *, joining: bool = False) -> str:
    """`words` with the code at the end, for plain text (line mode, stderr)."""
    return f"{words(error, joining=joining)} ({error.code})"
