"""A person at nc logging in: the conversation before a text-mode connection joins.

A JSON client says everything in one connect line. A person at nc is greeted, types a
name, then, on a server with --password, the server's password at a prompt (PROTOCOL.txt
6.1, 11.2), and when the name is an account's, that account's password (18.3). Where
that conversation stands is `TextLogin`'s, one per text-mode link (chatd.link makes it
once a connection turns out to be in text mode; JSON links, most of them, never do).
Pure: typed lines in, the connect they make out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from chatd import protocol as p

PASSWORD_PROMPT: Final = b"* password:\n"  # text mode asks for the password (11.2)
# For a person at nc, who sees nothing until they type (6.1); JSON clients send their
# connect at once, long before this.
GREETING: Final = b"* welcome to chatd! Type your name and press Enter to join.\n"
GREETING_PASSWORD: Final = (b"* welcome to chatd! Type your name and press Enter; "
                            b"the server then asks for its password.\n")


def sent_privately(to: str, message: str) -> bytes:
    """What a person at nc sees of their own /msg (6.2): text mode has no acks, and
    without it the line would vanish from their screen."""
    return f"-> *{p.visible(to)}* {p.visible(message)}\n".encode()


class TextLogin:
    """The name, the server's password, the account's password: what was typed so far."""

    __slots__ = ("server_password", "pending_name", "sent", "login_for")

    def __init__(self, server_password: bool) -> None:
        self.server_password = server_password  # --password: asked for after the name
        self.pending_name: str | None = None  # typed; waiting for the server's password
        # The last connect delivered, and the one whose account's password the next
        # line is (PROTOCOL.txt 18.3).
        self.sent: p.Connect | None = None
        self.login_for: p.Connect | None = None

    @property
    def asking(self) -> bool:
        """A password was asked for: a blank line answers it, rather than being skipped."""
        return self.pending_name is not None or self.login_for is not None

    def settled(self, login: bool) -> None:
        """The hub decided the connect sent last; `login`: the next line is the password
        of the name's account."""
        self.login_for = self.sent if login else None

    def line(self, text: str) -> p.Connect | None:
        """The connect a typed line makes; None: ask for the password (PASSWORD_PROMPT)."""
        if self.login_for is not None:  # the account's password, or blank: decline
            connect, self.login_for = self.login_for, None
            if not text.strip():
                return replace(connect, decline=True)
            return replace(connect, login=text)
        if not self.server_password:
            return p.Connect(name=text, text=True)
        if self.pending_name is None:
            p.normalize_name(text)  # a bad name is reported before the password is asked
            self.pending_name = text
            return None
        if not text.strip():
            return None  # Enter alone is no password: ask again
        return p.Connect(name=self.pending_name, password=text, text=True)
