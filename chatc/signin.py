"""Before the chat, in a terminal: connecting and joining, asking the user (with rich's
prompts) for what is missing or what the server refused: a nickname, the server's
password, an account's password. A saved login the server no longer takes is
forgotten, and its password asked for instead.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.prompt import Prompt

from chatc.connection import Client, ConnectFailed, Refused
from chatc.options import Options
from chatc.reconnect import refused_status
from chatc.tokens import Saved
from chatd import protocol as p

NICKNAME = "Nickname [dim](blank: 익명)[/]"


def fail(message: str) -> int:
    print(f"chatc: {message}", file=sys.stderr)
    return 1


async def sign_in(options: Options) -> Client | int:
    """A joined client, or the exit status if the user gave up or the server refused."""
    ask = Console(no_color=not options.color, highlight=False)
    name, password, login = options.name, options.password, options.login
    if name is None:
        name = _ask(ask, NICKNAME)
    while name is not None:
        saved = Saved(options.tokens, options.host, options.port, name)
        if saved.token is None and login is None and options.ask_login:
            login = _ask(ask, f"Password of {name}", password=True)
            if login is None:
                return 1
        client = Client(options.target, name, room=options.room,
                        password=password, login=login, login_token=saved.token,
                        on_token=saved.changed,
                        reconnect=options.reconnect is not False,
                        ack_timeout=options.ack_timeout)
        try:
            await client.open()
            return client
        except Refused as exc:
            code = exc.error.code
            if code == p.ErrorCode.AUTH_FAILED:
                ask.print(f"chatc: {exc}", style="red", markup=False)
                password = _ask(ask, "Password", password=True)
            elif code == p.ErrorCode.BAD_NAME:
                ask.print(f"chatc: {exc}", style="red", markup=False)
                name = _ask(ask, NICKNAME)
            elif code == p.ErrorCode.LOGIN_FAILED:
                if saved.token is not None:  # revoked: ask for the password instead
                    saved.changed(None)
                    ask.print("chatc: the saved login is no longer valid",
                              style="red", markup=False)
                else:
                    ask.print(f"chatc: {exc}", style="red", markup=False)
                login = _ask(ask, f"Password of {name}", password=True)
                if login is None:
                    return 1
            else:
                fail(str(exc))
                return refused_status(exc.error)
        except ConnectFailed as exc:
            return fail(str(exc))
    return 1


def _ask(console: Console, question: str, password: bool = False) -> str | None:
    """A question before the chat starts; None if the user gives up (Ctrl-D)."""
    try:
        return Prompt.ask(question, console=console, password=password, default="",
                          show_default=False)
    except EOFError:
        return None
