"""`chatc` command line: argparse -> Options -> run. The only place that reads argv and env."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from collections.abc import Mapping, Sequence

from chatc import app
from chatc.commands import TERMINAL_HELP
from chatc.options import Options
from chatc.tokens import default_path
from chatd import __version__
from chatd.argtypes import Parser, port, seconds

EPILOG = """\
commands (in the chat):
{commands}

windows (in a terminal):
  One window per room and per private partner. /join ROOM opens one and shows it,
  /part [ROOM] leaves a room (in a private window: closes it); Alt-1..9 (Alt-0:
  10), Alt-Left/Right and /win N show another. The status bar lists the windows:
  "[1:lobby] 2:dev(3) 3:*bob*(!1)": the shown one in brackets, lines not read yet
  counted, "!" when one of them names you or is a private line. A private line
  opens its sender's window; /msg NAME TEXT opens NAME's.

accounts:
  /register PASSWORD makes your name an account. Later, chatc --name NAME --login
  logs in (the password from $CHATC_LOGIN, or asked for without echo); the server's
  login token is kept (readable by you only) and later runs and reconnects use it
  instead of the password; /logout forgets it. Without logging in, a registered name
  gets a variant (alice2). When logged in, what you have read is told to the server,
  and a window's unread count starts from what the account has not read yet. A
  line that names you rings the terminal bell (--no-bell: not).

line mode:
  When stdin or stdout is not a terminal, chatc reads lines from stdin and sends
  each as a chat line (commands work there too), prints every update as one plain
  line ("HH:MM:SS <alice> hi", "HH:MM:SS * bob joined"; "[dev] HH:MM:SS <bob> hi"
  for a line of another of your rooms than the current one), and exits once its input
  has ended and the server has acknowledged every line (waiting --ack-timeout at
  most, then naming the lines that were not sent). Example:
    printf 'hi\\n' | chatc 127.0.0.1 5000 --name bot

environment:
  NO_COLOR        set (and not empty): no colours
  CHATC_PASSWORD  the server password, if --password is not given
  CHATC_LOGIN     your account's password (logs in, as --login does)
  XDG_STATE_HOME  login tokens are kept in $XDG_STATE_HOME/chatc/tokens.json
                  (default ~/.local/state/chatc/tokens.json), readable by you only

exit status:
  0 after /quit, Ctrl-D or the end of input; 1 when the server cannot be reached,
  refuses to let you in, or goes away (and reconnecting is off), or when a line of
  yours was not sent (chatc names it); 2 for bad usage; 3 when an operator removed
  you (kicked or banned: chatc says so once, in the server's words, and does not
  reconnect) or a ban keeps you out.
"""


_port = port(lowest=1)
_seconds = seconds(most=3600)


def build_parser() -> argparse.ArgumentParser:
    width = max(len(usage) for usage, _ in TERMINAL_HELP)
    commands = "\n".join(f"  {usage:<{width}} {what}" for usage, what in TERMINAL_HELP)
    ap = Parser(
        prog="chatc",
        description="The terminal client for chatd. In a terminal the conversation scrolls\n"
                    "above a status bar and an input line (line editing, up-arrow history);\n"
                    "Ctrl-D or /quit leaves. In pipes and scripts it runs in line mode.",
        epilog=EPILOG.format(commands=commands),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("host", metavar="HOST", help="the chatd server (name or address)")
    ap.add_argument("port", metavar="PORT", type=_port, nargs="?", default=5000,
                    help="its TCP port (default: 5000)")
    ap.add_argument("--name", metavar="NAME",
                    help="your nickname; without it chatc asks (on a terminal) and a blank "
                         "answer lets the server call you 익명")
    ap.add_argument("--room", metavar="ROOM", help="room to start in (default: the "
                    "server's, lobby)")
    ap.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=None,
                    help="when the connection is lost, try again after growing delays of "
                         "at most 2 s (3-6 s after the server refused an attempt) and "
                         "resume without losing a line (default: on in a terminal, off in "
                         "line mode)")
    ap.add_argument("--ack-timeout", metavar="SECONDS", type=_seconds, default=10.0,
                    help="how long to wait for the server to take a line before saying it "
                         "was not answered and sending the next (default: 10); line mode "
                         "also waits this long for the last lines before giving up on them")
    sec = ap.add_argument_group("TLS and password")
    sec.add_argument("--tls", action="store_true", help="connect with TLS")
    sec.add_argument("--cafile", metavar="FILE",
                     help="trust the CA certificates in FILE (PEM); implies --tls")
    sec.add_argument("--insecure", action="store_true",
                     help="do not verify the server's certificate (self-signed servers); "
                          "implies --tls")
    sec.add_argument("--password", metavar="PASS",
                     help="the server password (also $CHATC_PASSWORD); on a terminal "
                          "chatc asks for it when the server wants one")
    sec.add_argument("--login", action="store_true",
                     help="log in to the account of --name: the password comes from "
                          "$CHATC_LOGIN or is asked for (no echo) on a terminal; the login "
                          "token the server gives is kept, so later runs with the same "
                          "--name log in without it")
    ap.add_argument("--bell", action=argparse.BooleanOptionalAction, default=True,
                    help="ring the terminal bell when a line names you (default: on)")
    ap.add_argument("--version", action="version", version=f"chatc {__version__}")
    return ap


def tls_context(cafile: str | None, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def options_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Options:
    tls = None
    if args.tls or args.cafile or args.insecure:
        try:
            tls = tls_context(args.cafile, args.insecure)
        except (OSError, ssl.SSLError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise SystemExit(f"chatc: --cafile {args.cafile}: {why}") from None
    return Options(
        host=args.host,
        port=args.port,
        name=args.name,
        room=args.room,
        password=args.password if args.password is not None
        else environ.get("CHATC_PASSWORD") or None,
        reconnect=args.reconnect,
        tls=tls,
        color=not environ.get("NO_COLOR"),
        ack_timeout=args.ack_timeout,
        login=environ.get("CHATC_LOGIN") or None,
        ask_login=args.login and not environ.get("CHATC_LOGIN"),
        tokens=default_path(environ),
        bell=args.bell,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = options_from(args, os.environ)
    try:
        return asyncio.run(app.run(options))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
