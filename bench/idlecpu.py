"""What an idle crowd costs chatd's CPU (`python -m bench.idlecpu`).

Starts chatd as `python -m bench` does (this tree, its defaults but for flood control
and the limits on connections), joins --clients JSON clients spread over --rooms rooms,
waits --settle seconds after the last connect, then reads chatd's user and system time
over --seconds seconds in which no client sends anything. The window must end before
the first client's keepalive ping (25 s after it joined): it refuses when seating took
too long for that. What it measures is the server's periodic work: the
housekeeper's wake-ups and deadlines, the heartbeat, the collector's pace. It prints
milliseconds of CPU a second, best and median of --runs, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.procinfo import process_cpu, raise_fd_limit
from bench.run import chatd_args, chatd_help, server_command, start_server, stop_server

PING_INTERVAL = 25.0  # chatd's default --ping-interval: the window must end before it


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(1 << 16):
        pass


async def _measure(port: int, pid: int, clients: int, rooms: int, *, settle: float,
                   seconds: float) -> tuple[float, float]:
    """chatd's CPU (ms a second) over the window, and how long seating took (s)."""
    readers: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = []
    first = time.monotonic()
    for i in range(clients):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"type":"connect","name":"u%d","room":"r%d"}\n' % (i, i % rooms))
        readers.append(asyncio.create_task(_drain(reader)))
        writers.append(writer)
    seated = time.monotonic() - first
    if seated + settle + seconds >= PING_INTERVAL - 1:
        raise SystemExit(f"seating took {seated:.1f}s: with --settle {settle:g} and "
                         f"--seconds {seconds:g} the first clients' pings fall in the window")
    await asyncio.sleep(settle)
    before, started = process_cpu(pid), time.monotonic()
    await asyncio.sleep(seconds)
    after, ended = process_cpu(pid), time.monotonic()
    for writer in writers:
        writer.close()
    for task in readers:
        task.cancel()
    return (after.total - before.total) / (ended - started) * 1000, seated


def one_run(clients: int, rooms: int, settle: float, seconds: float, log_dir: Path
            ) -> tuple[float, float]:
    """chatd's CPU (ms a second) while `clients` joined clients stay idle, and the
    seconds seating them took; chatd runs with the benchmark's options (bench.run)."""
    server = start_server("chatd", server_command("chatd", chatd_args(chatd_help()), None),
                          log_dir / "chatd-idlecpu.log", None)
    try:
        return asyncio.run(_measure(server.port, server.proc.pid, clients, rooms,
                                    settle=settle, seconds=seconds))
    finally:
        stop_server(server, 30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--settle", type=float, default=4.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as log_dir:
        runs = [one_run(args.clients, args.rooms, args.settle, args.seconds, Path(log_dir))
                for _ in range(args.runs)]
    costs = [cost for cost, _ in runs]
    print(f"{'clients':>8}  {'runs':>4}  {'seated s':>8}  {'best ms/s':>9}  {'median ms/s':>11}")
    print(f"{args.clients:>8,}  {args.runs:>4}  {max(s for _, s in runs):>8.1f}  "
          f"{min(costs):>9.2f}  {statistics.median(costs):>11.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "clients": args.clients, "rooms": args.rooms, "settle_s": args.settle,
            "seconds": args.seconds, "cpu_ms_per_s": [round(c, 3) for c in costs],
            "seated_s": [round(s, 3) for _, s in runs]}) + "\n")


if __name__ == "__main__":
    main()
