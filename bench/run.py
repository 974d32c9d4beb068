"""`python -m bench`: chatd against a bare reference broadcaster, in one run, as ratios.

Each server runs in its own process pinned to one CPU; the load generator
(`bench.loadgen`) runs in another, pinned to a second CPU, and reports its own CPU time
so that a reader can tell whether it kept up. Every scenario runs against every server
in the same run, one fresh server process per session:

  fanout   saturating fan-out: --clients in one room, --senders x --lines, --window
  latency  fixed rate: --rate lines a second for --duration s (100 clients: 50k deliveries/s)
  idle     --idle joined idle connections: time to seat them, server RSS per connection
  bigroom  --broadcasts single lines to all --idle clients: arrival percentiles
  city     --city-clients in --city-rooms rooms, --city-rate lines a second in all with
           a Zipf-like skew over the rooms for --city-duration s, every delivery timed
  city-multi  the same city with each client in --multi-rooms rooms (sized by
           --multi-size-skew: the busiest rooms the smallest), each line sent with "room"
  idle-multi  the city-multi seating alone: server RSS per connection in several rooms
           (with city-multi, read from its seating: one session serves both)

chatd runs with flood control and connection limits off (when its --help lists those
options), its other limits (send queue, line length) and logging at their defaults; its
log goes to a file whose size is reported. Every run checks that every receiver got
every line in per-sender order; a run with any loss fails (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.loadgen import IDLE_SETTLE_S
from bench.procinfo import (
    load_average,
    machine,
    make_realtime,
    pin,
    raise_fd_limit,
    renice,
    usable_cpus,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("fanout", "latency", "idle", "bigroom", "city", "idle-multi", "city-multi")
# lossy: the reference losing one line on purpose, to show that the checker catches it.
# cluster: --cluster-nodes chatd processes sharing a redis-server (clients spread over
# them, or all on the first with --cluster-place first).
# chatd-metrics: chatd with --metrics, scraped every --scrape-every seconds during the run
# (the same chatd with and without metrics, side by side: `--servers chatd,chatd-metrics`).
SERVERS = ("chatd", "chatd-metrics", "reference", "naive", "naive-asyncio", "lossy", "cluster")
LISTENING = ("chatd listening on ", "reference listening on ", "naive listening on ")

# The targets (issue 11's, on asyncio streams), each as (key, description, limit);
# `value` fills them in.
TARGETS = (
    ("fanout_ratio", "fan-out: chatd CPU/delivery / reference CPU/delivery", 1.25),
    # Issue 29's: delivery times near the reference's (these replace issue 11's 2 and
    # 10 ms at the fixed rate, and the city's 20 ms p99.9).
    ("latency_p99_ms", "latency: chatd p99 at the fixed rate (ms)", 1.5),
    ("latency_p99_ratio", "latency: chatd p99 / reference p99", 1.25),
    ("latency_p999_ms", "latency: chatd p99.9 at the fixed rate (ms)", 3.0),
    ("idle_rss_kib", "idle: chatd RSS per joined idle connection (KiB)", 6.0),
    ("idle_seat_s", "idle: chatd seconds to seat all, every join notice delivered", 20.0),
    ("bigroom_p99_ms", "bigroom: chatd p99 arrival of one broadcast to all (ms)", 200.0),
    ("city_p99_ms", "city: chatd p99 delivery latency (ms)", 5.0),
    ("city_p999_ms", "city: chatd p99.9 delivery latency (ms)", 15.0),
    ("city_p50_ratio", "city: chatd p50 / reference p50", 1.5),
    ("city_p99_ratio", "city: chatd p99 / reference p99", 2.0),
    ("city_ratio", "city: chatd CPU/delivery / reference CPU/delivery", 1.3),
    # Issue 25's: the city with 3 rooms a client, and what a membership may cost.
    ("idle_multi_rss_kib", "idle-multi: chatd RSS per connection in 3 rooms (KiB)", 8.0),
    ("city_multi_p99_ms", "city-multi: chatd p99 delivery latency (ms)", 5.0),
    ("city_multi_p999_ms", "city-multi: chatd p99.9 delivery latency (ms)", 20.0),
    ("city_multi_ratio", "city-multi: chatd CPU/delivery / reference CPU/delivery", 1.3),
    # Issue 29's (item 5): delivery times near the reference's, with several rooms too.
    ("city_multi_p50_ratio", "city-multi: chatd p50 / reference p50", 1.5),
    ("city_multi_p99_ratio", "city-multi: chatd p99 / reference p99", 2.0),
    ("metrics_cost", "fan-out: chatd --metrics (scraped) CPU/delivery / chatd without", 1.03),
)
TARGET_SIZES = {"clients": 100, "senders": 10, "lines": 2000, "rate": 500.0, "idle": 10000}
# The sessions whose every delivery is timed: --realtime latency runs them SCHED_FIFO.
TIMED = ("latency", "city", "city-multi")


# --------------------------------------------------------------------------- commands


def chatd_help() -> str:
    out = subprocess.run([sys.executable, "-m", "chatd", "--help"], capture_output=True,
                         text=True, timeout=30, check=False)
    return out.stdout


def chatd_args(help_text: str) -> list[str]:
    """chatd's options for every benchmark run: the one place they are decided.

    Flood control and connection limits go off (the load generator is one address
    sending flat out), but only where this chatd has the options. The send-queue bound,
    the line limit, keepalive and the log level stay at their defaults, as the targets
    ask; the load generator answers pings.
    """
    args = ["--host", "127.0.0.1", "--port", "0"]
    for option, value in (("--rate", "0"), ("--max-clients", "0"), ("--max-per-ip", "0"),
                          ("--connect-throttle", "0"), ("--greet-after", "0")):
        if option in help_text.split():
            args += [option, value]
    return args


def server_command(kind: str, chatd_options: list[str], cprofile_to: Path | None,
                   reference_json: str = "auto") -> list[str]:
    if kind == "chatd-metrics":
        return server_command("chatd", [*chatd_options, "--metrics", "127.0.0.1:0"],
                              cprofile_to)
    if kind == "chatd":
        if cprofile_to is not None:
            return [sys.executable, "-m", "cProfile", "-o", str(cprofile_to), "-m", "chatd",
                    *chatd_options]
        return [sys.executable, "-m", "chatd", *chatd_options]
    extra = {"reference": [], "naive": ["--naive"],
             "naive-asyncio": ["--naive", "--loop", "asyncio"], "lossy": ["--drop", "7"]}[kind]
    return [sys.executable, "-m", "bench.reference", "--host", "127.0.0.1", "--port", "0",
            "--json", reference_json, *extra]


# --------------------------------------------------------------------------- processes


class Scraper:
    """GET /metrics of a chatd-metrics server every `every` seconds, as Prometheus would,
    from a thread of this process (which mostly waits for the load generator)."""

    def __init__(self, banner: str, every: float) -> None:
        found = re.search(r"metrics (http://\S+/metrics)", banner)
        if found is None:
            raise RuntimeError(f"no metrics address in {banner!r}")
        self.url = found.group(1)
        self.every = every
        self.count = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
                self.count += 1
            except OSError:
                self.failures += 1

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(15)
        return {"scrapes": self.count, "failures": self.failures}


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    banner: str  # its "listening on" line
    realtime: bool  # SCHED_FIFO took effect
    helpers: list[Server] | None = None  # a cluster's other nodes and its redis-server

    @property
    def ports(self) -> list[int]:
        return [self.port] + [h.port for h in self.helpers or () if h.kind == "chatd"]

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid] + [h.proc.pid for h in self.helpers or ()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(out_dir: Path, stem: str, cpu: int | None) -> Server:
    """A redis-server of the run's own (no persistence: the benchmark measures chatd)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("the cluster scenario needs redis-server (make test installs it)")
    folder = out_dir / f"{stem}-redis"
    folder.mkdir(exist_ok=True)
    port = free_port()
    log_path = out_dir / f"{stem}-redis.log"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                             str(folder), "--save", "", "--appendonly", "no"],
                            stdin=subprocess.DEVNULL, stdout=log_path.open("wb"),
                            stderr=subprocess.STDOUT)
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, {cpu})
    deadline = time.monotonic() + 30
    while "Ready to accept connections" not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"redis-server did not start; see {log_path}")
        time.sleep(0.02)
    return Server("redis", proc, port, log_path, f"redis-server on {port}", False)


def start_cluster(plan: Plan, stem: str, realtime: bool,
                  cprofile_to: Path | None = None) -> Server:
    """--cluster-nodes chatd processes over one redis-server, all on the server's CPU
    (with cprofile_to, each node profiled into its own file: NAME-node0.prof, ...)."""
    redis = start_redis(plan.out_dir, stem, plan.server_cpu)
    # Redis is part of the server: in a realtime session it is too, or the neighbours
    # that preempt it (not the nodes, which are) would set the cluster's percentiles.
    redis.realtime = realtime and make_realtime(redis.proc.pid)
    url = f"redis://127.0.0.1:{redis.port}/0"
    nodes = [start_server("chatd", [*server_command(
                              "chatd", [*plan.chatd_options, "--redis", url],
                              node_profile(cprofile_to, n))],
                          plan.out_dir / f"{stem}-node{n}.log", plan.server_cpu,
                          niceness=plan.args.nice, realtime=realtime)
             for n in range(plan.args.cluster_nodes)]
    first = nodes[0]
    first.kind, first.helpers = "cluster", [*nodes[1:], redis]
    return first


def node_profile(cprofile_to: Path | None, n: int) -> Path | None:
    return None if cprofile_to is None else cprofile_to.with_name(
        f"{cprofile_to.stem}-node{n}.prof")


def start_server(kind: str, command: list[str], log_path: Path, cpu: int | None, *,
                 niceness: int = 0, realtime: bool = False) -> Server:
    log = log_path.open("wb")
    # The fd limit is inherited (main raised it); the CPU is set from outside, since
    # this process is pinned to the load generator's CPU and no preexec_fn is wanted.
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log, cwd=ROOT)
    log.close()
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, {cpu})
    if niceness:
        renice(proc.pid, niceness)
    if realtime and not make_realtime(proc.pid):
        realtime = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        for marker in LISTENING:
            at = text.find(marker)
            if at >= 0 and "\n" in text[at:]:
                banner = text[at:].split("\n", 1)[0]
                address = banner[len(marker):].split()[0].rstrip(",")
                return Server(kind, proc, int(address.rsplit(":", 1)[1]), log_path, banner,
                              realtime)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{kind} did not start; its log ({log_path}):\n"
                       + log_path.read_text(errors="replace")[-2000:])


def stop_server(server: Server, timeout: float) -> dict[str, Any]:
    helpers = server.helpers or []
    for node in [h for h in helpers if h.kind == "chatd"]:  # a cluster: nodes, then redis
        stop_server(node, timeout)
    result = _stop(server, timeout)
    for other in [h for h in helpers if h.kind != "chatd"]:
        stop_server(other, timeout)
    return result


def _stop(server: Server, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    killed = False
    try:
        code = server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        code = server.proc.wait()
        killed = True
    return {"exit_code": code, "shutdown_s": round(time.monotonic() - t0, 3),
            "killed_after_timeout": killed, "log_bytes": server.log_path.stat().st_size,
            "log": str(server.log_path)}


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The next stdout line of a child, or b"" when it exits or `timeout` passes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return buf
            buf += chunk
    return buf


# --------------------------------------------------------------------------- sessions


@dataclass
class Plan:
    args: argparse.Namespace
    chatd_options: list[str]
    server_cpu: int | None
    loadgen_cpu: int | None
    out_dir: Path


def loadgen_command(plan: Plan, session: str, server: Server) -> list[str]:
    a = plan.args
    cmd = [sys.executable, "-m", "bench.loadgen",
           "--port", ",".join(map(str, server.ports if a.cluster_place == "spread"
                                  else server.ports[:1])),
           "--server-pid", ",".join(map(str, server.pids)), "--scenario", session,
           "--clients", str(a.clients), "--senders", str(a.senders), "--lines", str(a.lines),
           "--window", str(a.window), "--rate", str(a.rate), "--duration", str(a.duration),
           "--idle", str(a.idle), "--idle-settle", str(a.idle_settle),
           "--join-wave", str(a.join_wave),
           "--join-depth", str(a.join_depth), "--connect-block", str(a.connect_block),
           "--broadcasts", str(a.broadcasts if "bigroom" in a.scenarios else 0),
           "--city-clients", str(a.city_clients), "--city-rooms", str(a.city_rooms),
           "--city-big-rooms", str(a.city_big_rooms), "--city-big-size", str(a.city_big_size),
           "--city-talkers", str(a.city_talkers), "--city-rate", str(a.city_rate),
           "--city-duration", str(a.city_duration), "--city-skew", str(a.city_skew),
           "--city-seed", str(a.city_seed),
           "--multi-rooms", str(a.multi_rooms), "--multi-size-skew", str(a.multi_size_skew),
           "--timeout", str(a.timeout)]
    if session == "city-multi" and "city-multi" not in a.scenarios:
        cmd.append("--seat-only")
    if plan.loadgen_cpu is not None:
        cmd += ["--cpu", str(plan.loadgen_cpu)]
    return cmd


def run_session(plan: Plan, session: str, kind: str, attempt: int) -> dict[str, Any]:
    stem = f"{kind}-{session}" + (f"-{attempt}" if attempt else "")
    profile = plan.args.profile if kind in ("chatd", "chatd-metrics", "cluster") \
        and session in plan.args.profile_sessions else None
    cprofile_to = plan.out_dir / f"{stem}.prof" if profile == "cprofile" else None
    realtime = plan.args.realtime == "all" or (plan.args.realtime == "latency"
                                               and session in TIMED)
    if kind == "cluster":
        command = ["cluster of", str(plan.args.cluster_nodes), "chatd --redis",
                   "clients on", plan.args.cluster_place]
        server = start_cluster(plan, stem, realtime, cprofile_to)
        if profile == "py-spy":
            profile = None  # py-spy follows one process: cprofile profiles every node
    else:
        command = server_command(kind, plan.chatd_options, cprofile_to,
                                 plan.args.reference_json)
        server = start_server(kind, command, plan.out_dir / f"{stem}.log", plan.server_cpu,
                              niceness=plan.args.nice, realtime=realtime)
    scraper = Scraper(server.banner, plan.args.scrape_every) \
        if kind == "chatd-metrics" else None
    spy: subprocess.Popen[bytes] | None = None
    spy_out = plan.out_dir / f"{stem}.pyspy.txt"
    if profile == "py-spy":
        spy = subprocess.Popen([plan.args.py_spy, "record", "--pid", str(server.proc.pid),
                                "--rate", "1000", "--format", "raw", "--nonblocking",
                                "--output", str(spy_out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let it attach before the load starts
    lg_err = (plan.out_dir / f"{stem}.loadgen.log").open("wb")
    loadgen = subprocess.Popen(loadgen_command(plan, session, server), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=lg_err, cwd=ROOT)
    lg_err.close()
    if plan.args.nice:
        renice(loadgen.pid, plan.args.nice)
    realtime = server.realtime and make_realtime(loadgen.pid)
    budget = (plan.args.timeout * 3 + max(plan.args.duration, plan.args.city_duration)
              + 60)
    line = read_line(loadgen, budget)
    result: dict[str, Any]
    try:
        result = json.loads(line) if line.strip() else {}
    except ValueError:
        result = {}
    if not result:
        result = {"ok": False, "faults": {"samples": [
            "the load generator gave no result; see " + str(plan.out_dir / f"{stem}.loadgen.log")
        ]}}
    if scraper is not None:
        result["scrapes"] = scraper.stop()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
        result["profile"] = str(spy_out)
    result["server"] = {"kind": kind, "pid": server.proc.pid, "command": command,
                        "banner": server.banner,
                        **stop_server(server, plan.args.shutdown_timeout)}
    if cprofile_to is not None:
        result["profile"] = str(cprofile_to if kind != "cluster"
                                else node_profile(cprofile_to, 0))
    assert loadgen.stdin is not None
    loadgen.stdin.close()
    try:
        loadgen.wait(30)
    except subprocess.TimeoutExpired:
        loadgen.kill()
        loadgen.wait()
    result["profiled"] = profile
    result["realtime"] = realtime
    if profile is not None and Path(result.get("profile", "")).is_file():
        summary = plan.out_dir / f"{stem}.profile-top.txt"
        paths = [Path(result["profile"])] if kind != "cluster" else [
            p for n in range(plan.args.cluster_nodes)
            if (p := node_profile(cprofile_to, n)) is not None and p.is_file()]
        summary.write_text("\n".join(f"== {p.name}\n{profile_summary(p)}" for p in paths))
        result["profile_top"] = str(summary)
    return result


def profile_summary(path: Path, top: int = 25) -> str:
    """The profile's top frames by own time (and, for py-spy, by inclusive time)."""
    if path.suffix == ".prof":
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    lines = [f"py-spy samples: {total}", "own time:"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    lines.append("inclusive time:")
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines)


def sessions_for(scenarios: Sequence[str]) -> list[str]:
    out = [s for s in ("fanout", "latency") if s in scenarios]
    if "idle" in scenarios or "bigroom" in scenarios:
        out.append("big")
    if "city" in scenarios:
        out.append("city")
    if "city-multi" in scenarios or "idle-multi" in scenarios:
        out.append("city-multi")
    return out


# Which number of a session's result picks the median run when --repeat > 1.
def _primary(session: str, result: dict[str, Any]) -> float:
    try:
        if session == "fanout":
            return float(result["fanout"]["server_cpu_us_per_delivery"])
        if session in TIMED and session in result:
            return float(result[session]["latency"]["p99_ms"])
        if session == "city-multi":  # seated only (idle-multi)
            return float(result["idle"]["rss_per_connection_kib"])
        return float(result["idle"]["seconds_to_settle"])
    except (KeyError, TypeError, ValueError):
        return float("inf")


def median_run(session: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(runs, key=lambda r: _primary(session, r))
    return ranked[(len(ranked) - 1) // 2]


# --------------------------------------------------------------------------- report


def _get(result: dict[str, Any] | None, *path: str) -> Any:
    node: Any = result
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def paired_ratios(runs: dict[str, dict[str, list[dict[str, Any]]]], session: str,
                  path: Sequence[str], mine: str = "chatd", yardstick: str = "reference"
                  ) -> list[float]:
    """Run i's figure of `mine` over run i's of the yardstick, for each run of both: the
    two ran one after the other (main's loop), on the machine as it was then, so the
    ratio is steadier than either figure (the reference's CPU a delivery moves by a
    third between runs minutes apart)."""
    by_kind = runs.get(session, {})
    out = []
    for a, b in zip(by_kind.get(mine, []), by_kind.get(yardstick, []), strict=False):
        x, y = _get(a, *path), _get(b, *path)
        if x and y:
            out.append(round(x / y, 3))
    return out


def evaluate(summary: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace,
             runs: dict[str, dict[str, list[dict[str, Any]]]] | None = None
             ) -> list[dict[str, Any]]:
    """Each target's value: a figure of chatd's median run; a ratio to another server
    (the reference, or chatd without metrics) is the median of the runs' paired ratios
    (`paired_ratios`), each run's listed beside it."""
    chatd = {s: summary.get(s, {}).get("chatd")
             for s in ("fanout", "latency", "big", "city", "city-multi")}

    def city_cpu(session: str, run: dict[str, Any] | None) -> float | None:
        cpu: float | None = _get(run, session, "server_cpu_us_per_delivery")
        return cpu

    ref_city = city_cpu("city", summary.get("city", {}).get("reference"))
    chatd_city = city_cpu("city", chatd["city"])
    ref_multi = city_cpu("city-multi", summary.get("city-multi", {}).get("reference"))
    chatd_multi = city_cpu("city-multi", chatd["city-multi"])

    def multi_ratio(key: str) -> float | None:
        mine = _get(chatd["city-multi"], "city-multi", "latency", key)
        yardstick = _get(summary.get("city-multi", {}).get("reference"), "city-multi",
                         "latency", key)
        return round(mine / yardstick, 3) if mine and yardstick else None

    ref_cpu = _get(summary.get("fanout", {}).get("reference"), "fanout",
                   "server_cpu_us_per_delivery")
    chatd_cpu = _get(chatd["fanout"], "fanout", "server_cpu_us_per_delivery")
    metrics_cpu = _get(summary.get("fanout", {}).get("chatd-metrics"), "fanout",
                       "server_cpu_us_per_delivery")
    values: dict[str, Any] = {
        "fanout_ratio": round(chatd_cpu / ref_cpu, 3) if chatd_cpu and ref_cpu else None,
        "latency_p99_ms": _get(chatd["latency"], "latency", "latency", "p99_ms"),
        "latency_p999_ms": _get(chatd["latency"], "latency", "latency", "p999_ms"),
        "idle_rss_kib": _get(chatd["big"], "idle", "rss_per_connection_kib"),
        "idle_seat_s": _get(chatd["big"], "idle", "seconds_to_settle"),
        "bigroom_p99_ms": _get(chatd["big"], "bigroom", "arrival", "p99_ms"),
        "city_p99_ms": _get(chatd["city"], "city", "latency", "p99_ms"),
        "city_p999_ms": _get(chatd["city"], "city", "latency", "p999_ms"),
        "city_ratio": round(chatd_city / ref_city, 3) if chatd_city and ref_city else None,
        "latency_p99_ratio": None, "city_p50_ratio": None, "city_p99_ratio": None,  # paired
        "idle_multi_rss_kib": _get(chatd["city-multi"], "idle", "rss_per_connection_kib"),
        "city_multi_p99_ms": _get(chatd["city-multi"], "city-multi", "latency", "p99_ms"),
        "city_multi_p999_ms": _get(chatd["city-multi"], "city-multi", "latency", "p999_ms"),
        "city_multi_ratio": round(chatd_multi / ref_multi, 3) if chatd_multi and ref_multi
        else None,
        "city_multi_p50_ratio": multi_ratio("p50_ms"),
        "city_multi_p99_ratio": multi_ratio("p99_ms"),
        "metrics_cost": round(metrics_cpu / chatd_cpu, 3) if metrics_cpu and chatd_cpu
        else None,
    }
    city_size = (args.city_clients == 10000 and args.city_rooms == 200
                 and args.city_rate == 1000 and args.city_duration >= 30)
    multi_size = city_size and args.multi_rooms == 3 and args.multi_size_skew == 0.6
    at_size = {
        "fanout_ratio": args.clients == 100 and args.senders == 10 and args.lines >= 2000,
        "latency_p99_ms": args.clients == 100 and args.rate == 500,
        "latency_p999_ms": args.clients == 100 and args.rate == 500,
        "idle_rss_kib": args.idle >= 1000,
        "idle_seat_s": args.idle == 10000,
        "bigroom_p99_ms": args.idle == 10000,
        "city_p99_ms": city_size,
        "city_p999_ms": city_size,
        "city_ratio": city_size,
        "city_p50_ratio": city_size,
        "city_p99_ratio": city_size,
        "latency_p99_ratio": args.clients == 100 and args.rate == 500,
        "idle_multi_rss_kib": args.city_clients >= 1000 and args.multi_rooms == 3,
        "city_multi_p99_ms": multi_size,
        "city_multi_p999_ms": multi_size,
        "city_multi_ratio": multi_size,
        "city_multi_p50_ratio": multi_size,
        "city_multi_p99_ratio": multi_size,
        "metrics_cost": args.clients == 100 and args.senders == 10 and args.lines >= 2000,
    }
    cpu = ("server_cpu_us_per_delivery",)
    pairs = {
        "fanout_ratio": ("fanout", ("fanout", *cpu), "chatd", "reference"),
        "latency_p99_ratio": ("latency", ("latency", "latency", "p99_ms"), "chatd",
                              "reference"),
        "city_ratio": ("city", ("city", *cpu), "chatd", "reference"),
        "city_p50_ratio": ("city", ("city", "latency", "p50_ms"), "chatd", "reference"),
        "city_p99_ratio": ("city", ("city", "latency", "p99_ms"), "chatd", "reference"),
        "city_multi_ratio": ("city-multi", ("city-multi", *cpu), "chatd", "reference"),
        "city_multi_p50_ratio": ("city-multi", ("city-multi", "latency", "p50_ms"),
                                 "chatd", "reference"),
        "city_multi_p99_ratio": ("city-multi", ("city-multi", "latency", "p99_ms"),
                                 "chatd", "reference"),
        "metrics_cost": ("fanout", ("fanout", *cpu), "chatd-metrics", "chatd"),
    }
    per_run: dict[str, list[float]] = {}
    for key, (session, path, mine, yardstick) in pairs.items():
        ratios = paired_ratios(runs or {}, session, path, mine, yardstick)
        if ratios:
            per_run[key] = ratios
            values[key] = statistics.median(ratios)
    out = []
    for key, what, limit in TARGETS:
        value = values[key]
        out.append({"target": key, "what": what, "limit": limit, "value": value,
                    "met": None if value is None else value <= limit,
                    "at_target_size": at_size[key], "runs": per_run.get(key)})
    return out


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(title: str, header: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = [title, "  ".join(h.rjust(w) if i else h.ljust(w)
                             for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    for row in rows:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


SEEN_NOTE = ("  p50 to max: when each line reached its client's socket (the kernel's stamp);"
             " * p99 as of when the load generator read it")


def _city_table(summary: dict[str, dict[str, dict[str, Any]]], session: str, title: str,
                s: dict[str, Any]) -> str:
    """A city session's table (city or city-multi), then each server's worst seconds."""
    rows = []
    for kind, r in summary[session].items():
        c = r.get(session, {})
        lat = c.get("latency", {})
        rows.append([kind, _n(c.get("deliveries_per_s")), _n(lat.get("p50_ms"), 3),
                     _n(lat.get("p99_ms"), 3), _n(lat.get("p999_ms"), 3),
                     _n(lat.get("max_ms"), 2), _n(_get(c, "latency_seen", "p99_ms"), 3),
                     _n(c.get("server_cpu_us_per_delivery"), 3),
                     _n(c.get("server_cpu_utilisation"), 2),
                     _n(c.get("loadgen_cpu_utilisation"), 2),
                     _n(c.get("send_lateness_p99_ms"), 2), _n(c.get("pongs_in_window")),
                     _n(_get(r, "seat", "seconds_to_settle"), 1), _n(r.get("ok"))])
    out = [_table(
        f"{title}{s['city_rate']:g} lines/s in all (Zipf skew {s['city_skew']:g}, "
        f"{s['city_talkers']} talkers a room) for {s['city_duration']:g} s, every delivery "
        "timed",
        ["server", "deliv/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "seen p99*",
         "CPU us/deliv", "srv util", "lg util", "lg late p99", "pongs", "seated s",
         "no loss"], rows), SEEN_NOTE]
    for kind, r in summary[session].items():
        slow = _get(r, session, "slow")
        if slow and slow.get("deliveries"):
            out.append(f"  {kind}: {slow['deliveries']:,} deliveries over "
                       f"{slow['over_ms']:g} ms; the worst seconds (s: count, max ms): "
                       + ", ".join(f"{sec}: {n} {top:g}" for sec, n, top in sorted(
                           slow["by_second"], key=lambda x: -x[2])[:6]))
    return "\n".join(out)


def render(report: dict[str, Any]) -> str:
    m, v, s = report["machine"], report["versions"], report["sizes"]
    summary: dict[str, dict[str, dict[str, Any]]] = report["summary"]
    pins = report["pinning"]
    out = [f"chatd benchmark: {m['cpu_model']}, {m['cpus']} CPUs, kernel {m['kernel']}, "
           f"Python {m['python']}, uvloop {v['uvloop']}, chatd {v['chatd']} ({v['git']})",
           f"server on CPU {pins['server_cpu']}, load generator on CPU {pins['loadgen_cpu']}, "
           f"SCHED_FIFO in: {pins['realtime']}, niceness {pins['niceness']}, "
           f"load average at start {report['load_average_at_start']:.2f}; "
           f"runs per server: {s['repeat']} (the median shown)",
           f"chatd {' '.join(report['chatd_options'])}; reference: "
           + ", ".join(sorted({_get(r, "server", "banner").split("(")[-1].rstrip(")")
                               for by_kind in summary.values() for k, r in by_kind.items()
                               if k not in ("chatd", "chatd-metrics", "cluster")
                               and _get(r, "server", "banner")}))
           + (f"; cluster: {report['sizes']['cluster_nodes']} chatd processes over a "
              f"redis-server, all on the server's CPU, clients on "
              f"{report['sizes']['cluster_place']}" if any("cluster" in by_kind
                                                 for by_kind in summary.values()) else "")]
    if "fanout" in summary:
        rows = []
        for kind, r in summary["fanout"].items():
            f = r.get("fanout", {})
            cpu = f.get("server_cpu", {})
            rows.append([kind, _n(f.get("deliveries_received")), _n(f.get("deliveries_per_s")),
                         _n(f.get("server_cpu_us_per_delivery"), 3),
                         f"{_n(cpu.get('user_s'), 2)}/{_n(cpu.get('system_s'), 2)}",
                         _n(f.get("server_cpu_utilisation"), 2),
                         _n(f.get("loadgen_cpu_us_per_delivery"), 3),
                         _n(f.get("loadgen_cpu_utilisation"), 2),
                         _n(_get(f, "latency", "p99_ms"), 2),
                         _n(_get(r, "server", "log_bytes")), _n(r.get("ok"))])
        out += ["", _table(
            f"fanout: {s['clients']} clients in one room, {s['senders']} senders x "
            f"{s['lines']:,} lines, window {s['window']} per sender",
            ["server", "deliveries", "deliv/s", "CPU us/deliv", "user/sys s", "srv util",
             "lg us/deliv", "lg util", "p99 ms*", "log bytes", "no loss"], rows)]
        out.append("  * p99 of one sample per read under saturation: it measures the window")
    if "latency" in summary:
        rows = []
        for kind, r in summary["latency"].items():
            f = r.get("latency", {})
            lat = f.get("latency", {})
            rows.append([kind, _n(f.get("deliveries_per_s")), _n(lat.get("p50_ms"), 3),
                         _n(lat.get("p99_ms"), 3), _n(lat.get("p999_ms"), 3),
                         _n(lat.get("max_ms"), 2), _n(_get(f, "latency_seen", "p99_ms"), 3),
                         _n(f.get("server_cpu_us_per_delivery"), 3),
                         _n(f.get("server_cpu_utilisation"), 2),
                         _n(f.get("send_lateness_p99_ms"), 2), _n(r.get("ok"))])
        out += ["", _table(
            f"latency: {s['clients']} clients, {s['rate']:g} lines/s in all for "
            f"{s['duration']:g} s, every delivery timed",
            ["server", "deliv/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "seen p99*",
             "CPU us/deliv", "srv util", "lg late p99", "no loss"], rows), SEEN_NOTE]
    if "big" in summary:
        rows = []
        for kind, r in summary["big"].items():
            i = r.get("idle", {})
            rows.append([kind, _n(i.get("seconds_to_welcome_all"), 2),
                         _n(i.get("seconds_to_settle"), 2), _n(i.get("join_notices_received")),
                         _n(i.get("server_cpu_us_per_notice"), 3),
                         _n((i.get("rss_before_kib") or 0) / 1024, 1),
                         _n((i.get("rss_after_kib") or 0) / 1024, 1),
                         _n(i.get("rss_per_connection_kib"), 2),
                         _n(_get(r, "server", "shutdown_s"), 1), _n(r.get("ok"))])
        out += ["", _table(
            f"idle: {s['idle']:,} joined idle connections (every join announced to all)",
            ["server", "welcomed s", "settled s", "join notices", "CPU us/notice",
             "RSS0 MiB", "RSS MiB", "KiB/conn", "stop s", "no loss"], rows)]
        rows = []
        for kind, r in summary["big"].items():
            b = r.get("bigroom")
            if not b:
                continue
            arrival = b.get("arrival", {})
            rows.append([kind, _n(b.get("deliveries_received")), _n(arrival.get("p50_ms"), 2),
                         _n(arrival.get("p99_ms"), 2), _n(arrival.get("max_ms"), 2),
                         _n(b.get("server_cpu_us_per_delivery"), 3), _n(b.get("complete"))])
        if rows:
            out += ["", _table(
                f"bigroom: {s['broadcasts']} single lines, each to all {s['idle'] - 1:,} others",
                ["server", "deliveries", "p50 ms", "p99 ms", "max ms", "CPU us/deliv",
                 "no loss"], rows)]
    if "city" in summary:
        out += ["", _city_table(summary, "city",
                                f"city: {s['city_clients']:,} clients in {s['city_rooms']} rooms "
                                f"({s['city_big_rooms']} of {s['city_big_size']}), ", s)]
    if "city-multi" in summary:
        by_kind = summary["city-multi"]
        rows = [[kind, _n(_get(r, "seat", "seconds_to_settle"), 2),
                 _n(_get(r, "seat", "join_notices_received")),
                 _n((_get(r, "seat", "rss_before_kib") or 0) / 1024, 1),
                 _n((_get(r, "seat", "rss_after_kib") or 0) / 1024, 1),
                 _n(_get(r, "idle", "rss_per_connection_kib"), 2), _n(r.get("ok"))]
                for kind, r in by_kind.items()]
        out += ["", _table(
            f"idle-multi: {s['city_clients']:,} joined idle connections, each in "
            f"{s['multi_rooms']} of {s['city_rooms']} rooms",
            ["server", "settled s", "join notices", "RSS0 MiB", "RSS MiB", "KiB/conn",
             "no loss"], rows)]
        if any("city-multi" in r for r in by_kind.values()):
            sizes: dict[str, Any] = next((r["city-multi"]["room_sizes"]
                                          for r in by_kind.values() if "city-multi" in r), {})
            out += ["", _city_table(summary, "city-multi",
                                    f"city-multi: {s['city_clients']:,} clients, each in "
                                    f"{s['multi_rooms']} of {s['city_rooms']} rooms "
                                    f"({sizes.get('min')} to {sizes.get('max')} members, "
                                    f"the busiest the smallest), ", s)]
    rows = []
    for t in report["targets"]:
        met = "-" if t["met"] is None else ("met" if t["met"] else "MISSED")
        if not t["at_target_size"] and t["met"] is not None:
            met += " (not at target size)"
        each = ", ".join(f"{r:.3f}" for r in t.get("runs") or ()) \
            if len(t.get("runs") or ()) > 1 else ""
        rows.append([t["what"], _n(t["value"], 3), f"<= {t['limit']:g}", met, each])
    out += ["", _table("targets", ["target", "value", "limit", "", "each run"], rows)]
    out.append("  a ratio is the median of the runs' own: run i of chatd over run i of the "
               "other, made one after the other")
    out.append("")
    out.append(f"no loss in every run: {_n(report['ok'])}; JSON: {report['json']}")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    git = "-"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "chatd"], capture_output=True, text=True, timeout=10,
                               check=False)
        if head.returncode == 0:
            git = head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    try:
        from chatd import __version__ as chatd_version
    except ImportError:
        chatd_version = version("chatd")
    return {"chatd": chatd_version, "uvloop": version("uvloop"), "git": git}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma-separated, from: " + ", ".join(SCENARIOS))
    ap.add_argument("--servers", default="reference,chatd",
                    help="comma-separated, from: " + ", ".join(SERVERS))
    ap.add_argument("--clients", type=int, default=100, help="fanout and latency")
    ap.add_argument("--senders", type=int, default=10, help="fanout and latency")
    ap.add_argument("--lines", type=int, default=2000, help="lines per sender (fanout)")
    ap.add_argument("--window", type=int, default=64,
                    help="lines a sender may have in flight (fanout)")
    ap.add_argument("--rate", type=float, default=500.0, help="lines a second in all (latency)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds (latency)")
    ap.add_argument("--idle", type=int, default=10000, help="connections (idle, bigroom)")
    ap.add_argument("--idle-settle", type=float, default=IDLE_SETTLE_S,
                    help="seconds idle waits after seating before reading the RSS "
                         "(the tests' tiny runs need no wait)")
    ap.add_argument("--broadcasts", type=int, default=5, help="bigroom")
    ap.add_argument("--city-clients", type=int, default=10000, help="city: connections")
    ap.add_argument("--city-rooms", type=int, default=200, help="city: rooms")
    ap.add_argument("--city-big-rooms", type=int, default=4,
                    help="city: rooms of --city-big-size, the busiest (the rest share the "
                         "other clients evenly)")
    ap.add_argument("--city-big-size", type=int, default=100, help="city")
    ap.add_argument("--city-talkers", type=int, default=3,
                    help="city: members of each room who send its lines in turn")
    ap.add_argument("--city-rate", type=float, default=1000.0,
                    help="city: lines a second in all")
    ap.add_argument("--city-duration", type=float, default=40.0,
                    help="city: seconds (above the 25 s ping interval, so chatd's keepalive "
                         "pings to the idle mass fall in the window)")
    ap.add_argument("--city-skew", type=float, default=1.0,
                    help="city: room k gets lines in proportion to 1/k**skew")
    ap.add_argument("--city-seed", type=int, default=1, help="city: the schedule's seed")
    ap.add_argument("--multi-rooms", type=int, default=3,
                    help="city-multi, idle-multi: rooms each client is in (the city's "
                         "--city-* options give the rest)")
    ap.add_argument("--multi-size-skew", type=float, default=0.6,
                    help="city-multi: room k (k=0 the busiest) has members in proportion to "
                         "(k+1)**skew, so the busiest rooms are the smallest (see "
                         "bench/README.md)")
    ap.add_argument("--join-wave", type=int, default=100,
                    help="clients whose connect lines go out at once while seating")
    ap.add_argument("--join-depth", type=int, default=2,
                    help="waves joining at once (the next goes when the oldest is welcomed)")
    ap.add_argument("--connect-block", type=int, default=1000,
                    help="sockets connected at a time, while the server is idle, then joined")
    ap.add_argument("--cluster-nodes", type=int, default=2,
                    help="chatd processes of the cluster server")
    ap.add_argument("--cluster-place", choices=["spread", "first"], default="spread",
                    help="cluster: clients spread over the nodes, or all on the first (the "
                         "others then only apply the log: its cost per command)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per server and scenario; the table shows the median run")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="give up on a phase after this many seconds")
    ap.add_argument("--shutdown-timeout", type=float, default=30.0)
    ap.add_argument("--json", type=Path, default=RESULTS / "latest.json", metavar="PATH")
    ap.add_argument("--logs", type=Path, default=None, metavar="DIR",
                    help="server and load generator logs (default: next to the JSON)")
    ap.add_argument("--profile", choices=["cprofile", "py-spy"], default=None,
                    help="profile chatd, or every node of a cluster with cprofile (its "
                    "numbers are then not comparable)")
    ap.add_argument("--profile-sessions", default="fanout",
                    help="sessions to profile: fanout, latency, big")
    ap.add_argument("--nice", type=int, default=0, metavar="N",
                    help="run the server and the load generator at this niceness (e.g. -10, "
                         "as root) so that other work on a shared machine disturbs less")
    ap.add_argument("--realtime", choices=["off", "latency", "all"], default="latency",
                    help="run the server and the load generator SCHED_FIFO (where allowed) "
                         "in the latency session, or in all, so that other work on a shared "
                         "machine cannot preempt them and add its time slices to the "
                         "percentiles; 'all' takes both CPUs from everything else for the "
                         "whole run")
    ap.add_argument("--chatd-arg", action="append", default=[], metavar="ARG",
                    help="one more chatd argument, for experiments (repeat; the targets "
                         "assume none)")
    ap.add_argument("--scrape-every", type=float, default=1.0, metavar="SECONDS",
                    help="chatd-metrics: how often /metrics is scraped during a session "
                         "(Prometheus' usual 15 s costs less)")
    ap.add_argument("--reference-json", choices=["auto", "orjson", "stdlib"], default="auto",
                    help="the reference's JSON library (auto: orjson when installed)")
    ap.add_argument("--py-spy", default="py-spy", metavar="PATH", help="the py-spy binary")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.servers = [s for s in args.servers.split(",") if s]
    args.profile_sessions = args.profile_sessions.split(",")
    for name, allowed in (("scenarios", SCENARIOS), ("servers", SERVERS)):
        bad = set(getattr(args, name)) - set(allowed)
        if bad:
            print(f"bench: unknown {name}: {', '.join(sorted(bad))}", file=sys.stderr)
            return 2
    cpus = usable_cpus()
    server_cpu, loadgen_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    pin(loadgen_cpu)  # this process mostly waits; keep it off the server's CPU anyway
    raise_fd_limit()
    out_dir = args.logs or args.json.parent / "logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    plan = Plan(args, chatd_args(chatd_help()) + args.chatd_arg, server_cpu, loadgen_cpu,
                out_dir)

    load_at_start = load_average()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for session in sessions_for(args.scenarios):
        # 10,000 idle clients on a cluster would measure the load generator, not chatd.
        kinds = [k for k in args.servers
                 if not (k == "cluster" and session in ("big", "city", "city-multi"))]
        runs[session] = {kind: [] for kind in kinds}
        for attempt in range(args.repeat):
            for kind in kinds:
                print(f"bench: {session} on {kind}"
                      + (f" (run {attempt + 1}/{args.repeat})" if args.repeat > 1 else ""),
                      file=sys.stderr, flush=True)
                runs[session][kind].append(run_session(plan, session, kind, attempt))
    summary = {session: {kind: median_run(session, results)
                         for kind, results in by_kind.items()}
               for session, by_kind in runs.items()}
    ok = all(r.get("ok") for by_kind in runs.values() for rs in by_kind.values() for r in rs)
    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "pinning": {"server_cpu": server_cpu, "loadgen_cpu": loadgen_cpu,
                    "niceness": args.nice, "realtime": args.realtime},
        "load_average_at_start": load_at_start,
        "chatd_options": plan.chatd_options,
        "sizes": {"clients": args.clients, "senders": args.senders, "lines": args.lines,
                  "window": args.window, "rate": args.rate, "duration": args.duration,
                  "idle": args.idle, "broadcasts": args.broadcasts,
                  "join_wave": args.join_wave, "join_depth": args.join_depth,
                  "connect_block": args.connect_block, "repeat": args.repeat,
                  "cluster_nodes": args.cluster_nodes, "cluster_place": args.cluster_place,
                  **{k: getattr(args, k) for k in (
                      "city_clients", "city_rooms", "city_big_rooms", "city_big_size",
                      "city_talkers", "city_rate", "city_duration", "city_skew",
                      "city_seed", "multi_rooms", "multi_size_skew")}},
        "scenarios": args.scenarios,
        "servers": args.servers,
        "json": str(args.json),
        "ok": ok,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "summary": summary,
        "runs": runs,
    }
    report["targets"] = evaluate(summary, args, runs) if not args.profile else []
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(render(report))
    for by_kind in runs.values():
        for results in by_kind.values():
            for r in results:
                if r.get("profile_top"):
                    print(f"\nprofile of {r['server']['kind']} ({r['profile']}):")
                    print("\n".join(Path(r["profile_top"]).read_text().splitlines()[:60]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
