"""`chatd` command line: argparse -> ServerConfig -> run. The only place that reads argv."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from chatd import __version__
from chatd import protocol as p
from chatd.hub import Config as HubConfig
from chatd.server import ServerConfig, serve
from chatd.serverlog import LEVELS, ServerLog


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"chatd: {message} (see chatd --help)\n")


def _size(text: str) -> int:
    """Bytes, with an optional K/M suffix (binary units)."""
    units = {"k": 1024, "m": 1024 * 1024}
    scale = units.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 65536, 64K or 1M")
    return int(digits) * scale


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("seconds cannot be negative")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="chatd",
        description="A chat server speaking newline-delimited JSON (see PROTOCOL.txt). "
        "Plain `nc HOST PORT` works too: type a name, then chat.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"chatd {__version__}")
    net = ap.add_argument_group("network")
    net.add_argument("--host", action="append", metavar="ADDR",
                     help="address to listen on; repeat for several "
                          "(default: every interface, IPv4 and IPv6)")
    net.add_argument("--port", type=_port, default=5000,
                     help="TCP port (0 picks a free one; the log says which)")
    lim = ap.add_argument_group("limits")
    lim.add_argument("--max-line-bytes", type=_size, default=p.DEFAULT_MAX_LINE_BYTES,
                     metavar="BYTES", help="longest accepted line; longer ones get line_too_long")
    lim.add_argument("--max-send-queue", type=_size, default=256 * 1024, metavar="BYTES",
                     help="unsent output a client may have before it is disconnected")
    chat = ap.add_argument_group("chat")
    chat.add_argument("--history", type=_count, default=1000, metavar="N",
                      help="chat lines kept per room")
    chat.add_argument("--history-on-join", type=_count, default=50, metavar="N",
                      help="lines of history a joiner receives")
    chat.add_argument("--resume-grace", type=_seconds, default=120.0, metavar="SECONDS",
                      help="how long a broken JSON session waits for its client to resume "
                           "(0: leave at once)")
    log = ap.add_argument_group("logging")
    log.add_argument("--log-level", choices=list(LEVELS), default="info",
                     help="info logs every join, leave, message and error")
    log.add_argument("--quiet", action="store_true", help="same as --log-level warning")
    run = ap.add_argument_group("runtime")
    run.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                     help="event loop; auto uses uvloop when it is installed")
    return ap


def config_from(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        hosts=tuple(args.host) if args.host else None,
        port=args.port,
        max_line_bytes=args.max_line_bytes,
        max_send_queue=args.max_send_queue,
        hub=HubConfig(
            history_size=args.history,
            history_on_join=args.history_on_join,
            resume_grace=args.resume_grace,
            server_name=f"chatd {__version__}",
        ),
    )


def _run(coro_factory: object, loop_kind: str) -> int:
    if loop_kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop_kind == "uvloop":
                print("chatd: --loop uvloop: uvloop is not installed", file=sys.stderr)
                return 2
        else:
            return uvloop.run(coro_factory())  # type: ignore[operator,no-any-return]
    return asyncio.run(coro_factory())  # type: ignore[operator,no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = "warning" if args.quiet else args.log_level
    config = config_from(args)
    log = ServerLog(level)
    try:
        return _run(lambda: serve(config, log), args.loop)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


if __name__ == "__main__":
    sys.exit(main())
