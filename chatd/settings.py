"""The server's settings (`ServerConfig`, every one a chatd command-line option read by
chatd.cli), the share of them each connection's link gets, and what a reload (SIGHUP)
may change while serving: `reload_plan` works out the new settings and the lines that
say so, `chatd.server.Server.reconfigure` carries them out."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, cast

from chatd.hub import HubConfig
from chatd.link import LinkConfig

_LINK: Final = LinkConfig()  # a connection's limits have their defaults there


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hosts: tuple[str, ...] | None = None  # None: every interface, IPv4 and IPv6
    port: int = 5000
    max_line_bytes: int = _LINK.max_line_bytes
    max_send_queue: int = 256 * 1024
    rate: float = _LINK.rate
    burst: int = _LINK.burst
    byte_rate: float = _LINK.byte_rate
    byte_burst: int = _LINK.byte_burst
    max_clients: int = 5000  # 0: no limit
    max_per_ip: int = 10  # 0: no limit; held sessions count too (chatd.limits.Admission)
    ipv6_prefix: int = 64  # IPv6 addresses count per prefix of this length
    connect_throttle: int = 20  # new connections an address may make per window; 0: off
    connect_window: float = 60.0
    registration_timeout: float = _LINK.registration_timeout
    greet_after: float = _LINK.greet_after
    ping_interval: float = _LINK.ping_interval
    ping_timeout: float = _LINK.ping_timeout
    tls_cert: str | None = None
    tls_key: str | None = None
    password: str | None = None
    history_db: str | None = None
    history_db_backlog: int = 10_000  # lines not yet in the database before lines are refused
    history_db_backlog_bytes: int = 16 * 1024 * 1024  # the same in bytes (8.7)
    history_db_max_bytes: int = 48 * 1024 * 1024  # lines kept in the database in all (8.7)
    history_idle: float = 30 * 86400.0  # a room silent this long leaves the store; 0: never
    redis_url: str | None = None  # join a cluster through this Redis (chatd.cluster)
    snapshot_every: float = 5.0
    redis_log_bytes: int = 16 * 1024 * 1024  # the command log's bound (14.6)
    redis_history_bytes: int = 32 * 1024 * 1024  # the room streams' bound in all (14.6)
    redis_hold_bytes: int = 16 * 1024 * 1024  # commands held while Redis is away (14.4)
    web_port: int | None = None  # also serve the web page and its WebSocket here
    web_origins: tuple[str, ...] = ()  # Origins allowed besides the page's own
    web_hosts: tuple[str, ...] = ()  # Host names the web port answers to besides IPs, localhost
    web_request_timeout: float = 5.0  # for the HTTP request (and upgrade) on the web port
    web_reload_grace: float = 15.0  # a page that closed with 4000 (unloaded) is held this long
    shutdown_timeout: float = 3.0
    tls_handshake_timeout: float = 5.0
    metrics: str | None = None  # HOST:PORT of /metrics, /healthz, /readyz (chatd.metrics)
    log_level: str = "info"
    hub: HubConfig = field(default_factory=HubConfig)


def link_config_of(config: ServerConfig) -> LinkConfig:
    return LinkConfig(
        max_line_bytes=config.max_line_bytes, rate=config.rate, burst=config.burst,
        byte_rate=config.byte_rate, byte_burst=config.byte_burst,
        backlog_bytes=2 * config.max_line_bytes,
        password=config.password, registration_timeout=config.registration_timeout,
        greet_after=config.greet_after, ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout)


# What SIGHUP can change while serving (chatd.server.Server.reconfigure); the rest of
# ServerConfig needs a restart. Limits of a connection apply to connections made after.
LIVE: Final = frozenset({
    "max_send_queue", "rate", "burst", "password", "registration_timeout", "greet_after",
    "ping_interval", "ping_timeout", "max_clients", "max_per_ip", "connect_throttle",
    "connect_window", "tls_cert", "tls_key", "tls_handshake_timeout", "log_level",
    "history_on_join", "history_memory", "resume_grace", "opers", "web_reload_grace"})
SECRETS: Final = frozenset({"password", "opers"})


@dataclass(frozen=True, slots=True)
class Reload:
    """What a reload does: the settings from now on (the LIVE ones changed, the others as
    they were), what changed now and what waits for a restart (name -> (before, after))."""

    config: ServerConfig
    live: dict[str, tuple[Any, Any]]
    later: dict[str, tuple[Any, Any]]

    def lines(self, tls_loaded: bool) -> list[str]:
        """The log lines that say it; `tls_loaded`: the port serves TLS (its certificate
        loaded again)."""
        lines = [f"reload: {name} {_shown(name, before)} -> {_shown(name, after)}"
                 for name, (before, after) in self.live.items()]
        if tls_loaded:
            lines.append(f"reload: TLS certificate {self.config.tls_cert} loaded for new "
                         "connections")
        lines += [f"reload: {name} changed ({_shown(name, before)} -> {_shown(name, after)})"
                  " but needs a restart" for name, (before, after) in self.later.items()]
        return lines or ["reload: nothing changed"]


def reload_plan(old: ServerConfig, new: ServerConfig) -> Reload:
    changed = _changes(old, new)
    if bool(old.tls_cert) != bool(new.tls_cert):  # the loop and the scheme
        changed["tls"] = (bool(old.tls_cert), bool(new.tls_cert))
    live = {name: change for name, change in changed.items() if name in LIVE}
    later = {name: change for name, change in changed.items() if name not in LIVE}
    if "tls" in later:
        live.pop("tls_cert", None)
        live.pop("tls_key", None)
    hub_fields = {f.name for f in fields(HubConfig)}
    config = replace(
        old, **{k: v[1] for k, v in live.items() if k not in hub_fields},
        hub=replace(old.hub, **{k: v[1] for k, v in live.items() if k in hub_fields}))
    return Reload(config, live, later)


def _changes(old: object, new: object) -> dict[str, tuple[Any, Any]]:
    """The fields of two configs (nested ones flattened) that differ."""
    changed: dict[str, tuple[Any, Any]] = {}
    for f in fields(cast(Any, old)):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if f.name == "hub":
            changed.update(_changes(before, after))
        elif before != after:
            changed[f.name] = (before, after)
    return changed


def _shown(name: str, value: Any) -> str:
    if name in SECRETS:
        return "(set)" if value else "(none)"
    return repr(value)
