"""`chatd` command line: argparse -> ServerConfig -> run. The only place that reads argv."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from chatd import __version__
from chatd.argtypes import Parser, port, seconds
from chatd.config import ConfigError, config_path, effective, layered, read_file
from chatd.hub import HubConfig
from chatd.moderation import parse_opers
from chatd.protocol import ProtocolError
from chatd.serverlog import LEVELS, ServerLog
from chatd.service import serve
from chatd.settings import ServerConfig


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _size(text: str) -> int:
    """Bytes, with an optional K/M suffix (binary units)."""
    units = {"k": 1024, "m": 1024 * 1024}
    scale = units.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 65536, 64K or 1M")
    return int(digits) * scale


_port = port()
_seconds = seconds()


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address like 127.0.0.1:9100")
    return text


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


# The one place the defaults are set is the configs' own (ServerConfig, which takes a
# connection's limits from LinkConfig, and HubConfig): --help shows them from there.
DEFAULTS: Final = ServerConfig()


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="chatd",
        description="A chat server speaking newline-delimited JSON (see PROTOCOL.txt). "
        "Plain `nc HOST PORT` works too: type a name, then chat.",
        formatter_class=_Formatter,
    )
    ap.add_argument("--version", action="version", version=f"chatd {__version__}")
    net = ap.add_argument_group("network")
    net.add_argument("--host", action="append", metavar="ADDR",
                     help="address to listen on; repeat for several "
                          "(default: every interface, IPv4 and IPv6)")
    net.add_argument("--port", type=_port, default=DEFAULTS.port,
                     help="TCP port (0 picks a free one; the log says which)")
    lim = ap.add_argument_group("limits")
    lim.add_argument("--max-line-bytes", type=_size, default=DEFAULTS.max_line_bytes,
                     metavar="BYTES", help="longest accepted line; longer ones get line_too_long")
    lim.add_argument("--max-send-queue", type=_size, default=DEFAULTS.max_send_queue,
                     metavar="BYTES",
                     help="unsent output a client may have before it is disconnected")
    lim.add_argument("--rate", type=_seconds, default=DEFAULTS.rate, metavar="LINES",
                     help="flood control: lines a second per connection after the burst "
                          "(0 turns flood control off)")
    lim.add_argument("--burst", type=_count, default=DEFAULTS.burst, metavar="LINES",
                     help="flood control: lines a connection may send at once")
    lim.add_argument("--byte-rate", type=_size, default=DEFAULTS.byte_rate, metavar="BYTES",
                     help="flood control: bytes a second per connection after the byte "
                          "burst, counted per line by its size (0: lines only)")
    lim.add_argument("--byte-burst", type=_size, default=DEFAULTS.byte_burst, metavar="BYTES",
                     help="flood control: bytes a connection may send at once")
    lim.add_argument("--max-clients", type=_count, default=DEFAULTS.max_clients, metavar="N",
                     help="connections in all (0: no limit)")
    lim.add_argument("--max-per-ip", type=_count, default=DEFAULTS.max_per_ip, metavar="N",
                     help="connections from one address (0: no limit)")
    lim.add_argument("--ipv6-prefix", type=_count, default=DEFAULTS.ipv6_prefix, metavar="BITS",
                     help="IPv6 addresses count as one address per prefix of this length, "
                          "for --max-per-ip and --connect-throttle")
    lim.add_argument("--connect-throttle", type=_count, default=DEFAULTS.connect_throttle,
                     metavar="N",
                     help="new connections one address may open per --connect-window "
                          "(0: no limit)")
    lim.add_argument("--connect-window", type=_seconds, default=DEFAULTS.connect_window,
                     metavar="SECONDS",
                     help="the window of --connect-throttle")
    lim.add_argument("--registration-timeout", type=_seconds,
                     default=DEFAULTS.registration_timeout, metavar="SECONDS",
                     help="close connections that have not joined by then")
    lim.add_argument("--greet-after", type=_seconds, default=DEFAULTS.greet_after,
                     metavar="SECONDS",
                     help="a new connection silent this long gets a line telling a person "
                          "at nc what to type (0: never)")
    lim.add_argument("--ping-interval", type=_seconds, default=DEFAULTS.ping_interval,
                     metavar="SECONDS",
                     help="ping JSON clients silent this long (0: no pings)")
    lim.add_argument("--ping-timeout", type=_seconds, default=DEFAULTS.ping_timeout,
                     metavar="SECONDS",
                     help="close a pinged client that stays silent this long")
    cluster = ap.add_argument_group("cluster")
    cluster.add_argument("--redis", metavar="URL",
                         help="join a cluster of chatd processes sharing this Redis, e.g. "
                              "redis://localhost:6379/0 (rediss:// for TLS; the password "
                              "goes in the URL: redis://:PASSWORD@host:6379/0)")
    cluster.add_argument("--snapshot-every", type=_seconds, default=DEFAULTS.snapshot_every,
                         metavar="SECONDS",
                         help="how often the cluster's state is saved in Redis for nodes "
                              "that start later")
    cluster.add_argument("--redis-log-bytes", type=_size, default=DEFAULTS.redis_log_bytes,
                         metavar="BYTES",
                         help="the command log in Redis keeps its newest entries within "
                              "this; the state is saved sooner when it fills")
    cluster.add_argument("--redis-history-bytes", type=_size, default=DEFAULTS.redis_history_bytes,
                         metavar="BYTES",
                         help="the room history streams in Redis, in all; past it the least "
                              "recently active rooms lose their oldest lines first")
    cluster.add_argument("--redis-hold-bytes", type=_size, default=DEFAULTS.redis_hold_bytes,
                         metavar="BYTES",
                         help="chat lines held while Redis is unreachable, in all; past it "
                              "new lines are refused with unavailable")
    web = ap.add_argument_group("web")
    web.add_argument("--web", type=_port, metavar="PORT",
                     help="also serve the chat page and its WebSocket (/ws) on this port")
    web.add_argument("--web-origin", action="append", default=[], metavar="ORIGIN",
                     help="allow WebSocket connections from this Origin too "
                          "(e.g. https://chat.example.org); repeat for several")
    web.add_argument("--web-host", action="append", default=[], metavar="NAME",
                     help="a host name the page is served under (e.g. chat.example.org); "
                          "requests for other names are refused, except IP addresses and "
                          "localhost; repeat for several")
    web.add_argument("--web-request-timeout", type=_seconds, default=DEFAULTS.web_request_timeout,
                     metavar="SECONDS",
                     help="close a web connection that has not sent its HTTP request "
                          "(or finished its WebSocket upgrade) by then")
    web.add_argument("--web-reload-grace", type=_seconds, default=DEFAULTS.web_reload_grace,
                     metavar="SECONDS",
                     help="how long the session of a page that was unloaded (a reload, or "
                          "a closed tab) waits for it to come back, at most the resume grace")
    sec = ap.add_argument_group("security")
    sec.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this certificate (PEM)")
    sec.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    sec.add_argument("--tls-handshake-timeout", type=_seconds,
                     default=DEFAULTS.tls_handshake_timeout, metavar="SECONDS",
                     help="close a TLS connection that has not finished its handshake by then")
    sec.add_argument("--password", metavar="PASSWORD",
                     help="require this password on connect; better: set CHATD_PASSWORD, "
                          "which stays out of ps")
    sec.add_argument("--oper", action="append", default=[], metavar="NAME:PASSWORD",
                     help="an operator who may kick, ban, mute and set topics (repeatable); "
                          "better: set CHATD_OPERS=name:pw,name2:pw2, which stays out of ps")
    acc = ap.add_argument_group("accounts (PROTOCOL.txt 18)")
    acc.add_argument("--accounts", choices=["off", "optional", "required"],
                     default=DEFAULTS.hub.accounts,
                     help="optional: a name may be registered with a password, and is then "
                          "its owner's alone; required: only logged-in accounts join; off: "
                          "names are first come, first served")
    acc.add_argument("--registration", choices=["open", "operators", "closed"],
                     default=DEFAULTS.hub.registration,
                     help="who registers accounts: anyone, only operators, or nobody")
    acc.add_argument("--account-expiry", type=_seconds, default=DEFAULTS.hub.account_expiry,
                     metavar="SECONDS",
                     help="an account unused this long goes (0: never; default: 365 days)")
    acc.add_argument("--max-accounts", type=_count, default=DEFAULTS.hub.max_accounts,
                     metavar="N", help="accounts at most (0: no bound but memory's)")
    acc.add_argument("--max-devices", type=_count, default=DEFAULTS.hub.max_devices,
                     metavar="N",
                     help="connections logged in to one account at once (at least 1); one "
                          "more takes the place of its oldest held session, else gets "
                          "too_many_devices")
    # "--mentions" alone, from when they were off by default, still means on.
    acc.add_argument("--mentions", nargs="?", const="on", choices=("on", "off"),
                     default="on" if DEFAULTS.hub.mentions else "off",
                     help="mark the copy of a room line that names its reader "
                          '("mention": true, JSON clients; default: on)')
    chat = ap.add_argument_group("chat")
    chat.add_argument("--history", type=_count, default=DEFAULTS.hub.history_size, metavar="N",
                      help="chat lines kept per room")
    chat.add_argument("--history-memory", type=_size, default=DEFAULTS.hub.history_memory,
                      metavar="BYTES",
                      help="history kept in memory, in all rooms together (about); past it "
                           "the oldest lines go (the database, if any, keeps them)")
    chat.add_argument("--private-memory", type=_size, default=DEFAULTS.hub.private_memory,
                      metavar="BYTES",
                      help="private lines kept for resume, in all sessions together (about); "
                           "past it the oldest go (a session keeps at most 256 KiB of them)")
    chat.add_argument("--history-on-join", type=_count, default=DEFAULTS.hub.history_on_join,
                      metavar="N",
                      help="lines of history a joiner receives")
    chat.add_argument("--max-rooms", type=_count, default=DEFAULTS.hub.max_rooms, metavar="N",
                      help="rooms one user may be in at once (at least 1); one more join "
                           "gets too_many_rooms")
    chat.add_argument("--db", "--history-db", dest="history_db", metavar="PATH",
                      help="keep history, bans and topics in this SQLite file, so they "
                           "survive restarts (default: memory only); --history-db is its "
                           "older name, and works too")
    chat.add_argument("--history-db-backlog", type=_count, default=DEFAULTS.history_db_backlog,
                      metavar="LINES",
                      help="chat lines not yet written to --history-db (say, while another "
                           "process locks it) past which new lines are refused")
    chat.add_argument("--history-db-backlog-bytes", type=_size,
                      default=DEFAULTS.history_db_backlog_bytes,
                      metavar="BYTES",
                      help="the same bound in bytes of memory (about); whichever comes first")
    chat.add_argument("--history-db-max-bytes", type=_size, default=DEFAULTS.history_db_max_bytes,
                      metavar="BYTES",
                      help="lines kept in --history-db in all (their text and about 64 "
                           "bytes a line); past it the least recently active rooms lose "
                           "their oldest lines first, and the file shrinks")
    chat.add_argument("--history-idle", type=_seconds, default=DEFAULTS.history_idle,
                      metavar="SECONDS",
                      help="a room with no new line for this long loses the history kept "
                           "in --history-db or in Redis (0: never; default: 30 days)")
    chat.add_argument("--resume-grace", type=_seconds, default=DEFAULTS.hub.resume_grace,
                      metavar="SECONDS",
                      help="how long a broken JSON session waits for its client to resume "
                           "(0: leave at once)")
    log = ap.add_argument_group("logging")
    log.add_argument("--log-level", choices=list(LEVELS), default=DEFAULTS.log_level,
                     help="info logs every join, leave, message and error (a line's "
                          "text up to 1,000 characters, then its size)")
    log.add_argument("--quiet", action="store_true", help="same as --log-level warning")
    log.add_argument("--log-format", choices=["text", "json"], default="text",
                     help="json: one JSON object a line, for log collectors")
    log.add_argument("--log-file", metavar="PATH",
                     help="write the log here instead of to stderr; reopened on SIGHUP "
                          "(for logrotate)")
    ops = ap.add_argument_group("operations")
    ops.add_argument("--config", metavar="FILE",
                     help="read settings from this TOML file: every long option, without "
                          "its dashes (max-clients = 1000); the command line and CHATD_* "
                          "variables win over it; SIGHUP reads it again")
    ops.add_argument("--print-config", action="store_true",
                     help="print the settings in force (secrets masked) as a config file, "
                          "and exit")
    ops.add_argument("--metrics", type=_address, metavar="HOST:PORT",
                     help="serve Prometheus metrics (/metrics) and health checks (/healthz, "
                          "/readyz) on this address; keep it off the public internet")
    run = ap.add_argument_group("runtime")
    run.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                     help="event loop; auto uses uvloop when it is installed, and asyncio's "
                          "own with --tls-cert")
    return ap


def opers_from(options: Sequence[str], env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Operator credentials from --oper and CHATD_OPERS (PROTOCOL.txt 15.1)."""
    pairs: list[tuple[str, str]] = []
    for spec in [*options, *([env["CHATD_OPERS"]] if env.get("CHATD_OPERS") else [])]:
        pairs += parse_opers(spec)
    return tuple(pairs)


def config_from(args: argparse.Namespace, env: Mapping[str, str]) -> ServerConfig:
    return ServerConfig(
        hosts=tuple(args.host) if args.host else None,
        port=args.port,
        max_line_bytes=args.max_line_bytes,
        max_send_queue=args.max_send_queue,
        rate=args.rate,
        burst=max(1, args.burst),
        byte_rate=args.byte_rate,
        byte_burst=max(1, args.byte_burst),
        max_clients=args.max_clients,
        max_per_ip=args.max_per_ip,
        ipv6_prefix=min(128, args.ipv6_prefix),
        connect_throttle=args.connect_throttle,
        connect_window=max(0.001, args.connect_window),
        registration_timeout=args.registration_timeout,
        greet_after=args.greet_after,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_handshake_timeout=max(0.1, args.tls_handshake_timeout),
        password=args.password or env.get("CHATD_PASSWORD") or None,
        history_db=args.history_db,
        history_db_backlog=max(1, args.history_db_backlog),
        history_db_backlog_bytes=max(1, args.history_db_backlog_bytes),
        history_db_max_bytes=max(1024 * 1024, args.history_db_max_bytes),
        history_idle=args.history_idle,
        redis_url=args.redis or env.get("CHATD_REDIS") or None,
        snapshot_every=max(0.05, args.snapshot_every),
        redis_log_bytes=max(64 * 1024, args.redis_log_bytes),
        redis_history_bytes=max(64 * 1024, args.redis_history_bytes),
        redis_hold_bytes=max(64 * 1024, args.redis_hold_bytes),
        metrics=args.metrics,
        log_level="warning" if args.quiet else args.log_level,
        web_port=args.web,
        web_origins=tuple(args.web_origin),
        web_hosts=tuple(args.web_host),
        web_request_timeout=max(0.1, args.web_request_timeout),
        web_reload_grace=args.web_reload_grace,
        hub=HubConfig(
            history_size=args.history,
            history_on_join=args.history_on_join,
            history_memory=max(64 * 1024, args.history_memory),
            private_memory=max(64 * 1024, args.private_memory),
            max_line_bytes=args.max_line_bytes,
            max_rooms=max(1, args.max_rooms),
            page_bytes=max(1, min(256 * 1024, args.max_send_queue // 2)),
            resume_grace=args.resume_grace,
            server_name=f"chatd {__version__}",
            opers=opers_from(args.oper, env),
            accounts=args.accounts,
            registration=args.registration,
            account_expiry=args.account_expiry,
            max_accounts=args.max_accounts,
            max_devices=max(1, args.max_devices),
            mentions=args.mentions == "on",
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


def _raise_fd_limit() -> None:
    """One descriptor per client: allow as many as the hard limit lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def settings(parser: argparse.ArgumentParser, argv: Sequence[str], env: Mapping[str, str]
             ) -> tuple[argparse.Namespace, ServerConfig]:
    """The options in force and the server's config from them; ConfigError if they are
    bad. Run at start and again on SIGHUP."""
    path = config_path(parser, argv)
    args = layered(parser, argv, env, read_file(parser, path) if path else {})
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    if args.redis and args.history_db:
        raise ConfigError("--db (--history-db) and --redis don't go together: the cluster "
                          "keeps history in Redis")
    # uvloop reads a client's first bytes before the stream's callback runs, so the TLS
    # hello would be gone by the time StreamWriter.start_tls upgrades the connection
    # (which it does after counting it, PROTOCOL.txt 11.1): TLS runs on the stdlib loop.
    if args.tls_cert and args.loop == "uvloop":
        raise ConfigError("--loop uvloop can't serve --tls-cert (the TLS upgrade after "
                          "accept needs the asyncio loop); leave --loop at auto")
    try:
        return args, config_from(args, env)
    except (ValueError, ProtocolError) as exc:  # a bad --oper / CHATD_OPERS entry
        raise ConfigError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    env = dict(os.environ)
    try:
        args, config = settings(parser, argv, env)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.print_config:
        sys.stdout.write(effective(parser, args, env))
        return 0
    loop_kind = "asyncio" if args.tls_cert else args.loop
    _raise_fd_limit()
    try:
        log = ServerLog(config.log_level, path=args.log_file, json=args.log_format == "json")
    except OSError as exc:
        parser.error(f"--log-file: {exc.strerror or exc}: {args.log_file}")

    def reload() -> ServerConfig:
        return settings(parser, argv, env)[1]

    try:
        return _run(lambda: serve(config, log, reload=reload), loop_kind)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


if __name__ == "__main__":
    sys.exit(main())
