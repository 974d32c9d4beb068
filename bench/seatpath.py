"""chatd's own cost of seating a crowd in one room, without sockets
(`python -m bench.seatpath`).

Runs a chatd Server in this process (uvloop) whose connections write to outlets that
only count bytes, and seats --clients clients in one room as the idle scenario does:
waves of --wave connect lines (each client's its own read) applied in one loop turn,
then a pause in which the writer flushes (it may wait a little after a costly flush,
chatd.outbox's SPREAD_AFTER). It times the Python path (link, admission,
hub, welcome, the join notice's fan-out, log) with `time.process_time`, best of --runs,
and prints microseconds per join and per join notice (N(N+1)/2 of them, as the
benchmark counts). The kernel's share (the writes) is what `python -m bench` adds;
this figure moves with the code, not with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
from pathlib import Path

import uvloop

from bench.hotpath import CountingOutlet
from chatd.outbox import SPREAD_MAX
from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig


async def seat(clients: int, wave: int, log_level: str) -> tuple[float, int]:
    """CPU seconds to seat `clients`, and the bytes the outlets took."""
    config = ServerConfig(hosts=("127.0.0.1",), port=0, rate=0, max_clients=0,
                          max_per_ip=0, connect_throttle=0, greet_after=0, ping_interval=0,
                          shutdown_timeout=0.01)
    server = Server(config, ServerLog(log_level, io.StringIO()))
    await server.start()
    outlets: list[CountingOutlet] = []
    started = time.process_time()
    for first in range(0, clients, wave):
        for i in range(first, min(first + wave, clients)):
            outlet = CountingOutlet()
            conn = server.accept("127.0.0.1", f"127.0.0.1:{1000 + i}", outlet)
            assert conn is not None
            server.received(conn, b'{"type":"connect","name":"r%d"}\n' % i)
            outlets.append(outlet)
        # The wave's flush, put off by as much as SPREAD_MAX after a costly one.
        await asyncio.sleep(SPREAD_MAX + 0.001)
    cpu = time.process_time() - started
    await server.shutdown()
    return cpu, sum(o.bytes for o in outlets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=3000)
    ap.add_argument("--wave", type=int, default=100, help="connect lines a loop turn")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--log-level", default="info", help="chatd's default: every join logged")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results = [uvloop.run(seat(args.clients, args.wave, args.log_level))
               for _ in range(args.runs)]
    cpus = [cpu for cpu, _ in results]
    best, n = min(cpus), args.clients
    notices = n * (n + 1) // 2
    print(f"{'runs':>5}  {'best s':>7}  {'median s':>8}  {'us/join':>8}  {'us/notice':>9}"
          f"  {'MB out':>7}")
    print(f"{len(cpus):>5}  {best:>7.3f}  {sorted(cpus)[len(cpus) // 2]:>8.3f}"
          f"  {best / n * 1e6:>8.1f}  {best / notices * 1e6:>9.4f}"
          f"  {results[0][1] / 1e6:>7.1f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu_s": cpus, "best": best, "clients": n,
                                         "wave": args.wave, "bytes": results[0][1]},
                                        indent=1))


if __name__ == "__main__":
    main()
