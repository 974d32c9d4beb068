"""What the command line decided, handed to the app (cli.py is the only reader of argv/env)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from chatc.connection import Target


@dataclass(frozen=True, slots=True)
class Options:
    host: str
    port: int
    name: str | None = None  # None: ask on a terminal, let the server pick in line mode
    room: str | None = None
    password: str | None = None
    reconnect: bool | None = None  # None: on in a terminal, off in line mode
    tls: ssl.SSLContext | None = None
    color: bool = True
    ack_timeout: float = 10.0  # for each own line; also how long line mode waits at the end
    login: str | None = None  # the account's password (--login with $CHATC_LOGIN)
    ask_login: bool = False  # --login without a password: ask on a terminal
    tokens: Path | None = None  # where login tokens are kept; None: nowhere
    bell: bool = True  # ring the terminal bell on a mention

    @property
    def target(self) -> Target:
        return Target(self.host, self.port, self.tls)
