"""What one chat line costs a server on its own (`python -m bench.linefloor`).

Starts each server as `python -m bench` does (chatd with the benchmark's options, and
the reference broadcaster), pinned to CPU 0, and joins two clients to one room from this
process, pinned to CPU 1. One sends a line, waits until the other has it, and only then
sends the next, --lines times after --warm ones: nothing is ever batched, so each line
pays the whole path of its own (the stream's read, the loop's turns, the log, the
write). It prints, for each server and run, the server's CPU a line (all of it, and the
user part) and the round trip from the send to the other client's read, and writes
them as JSON. The city's lines mostly come one to a loop turn like this; the full
benchmark's other scenarios measure what batching does.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procinfo import pin, process_cpu
from bench.run import chatd_args, chatd_help, server_command, start_server, stop_server

SERVER_CPU, CLIENT_CPU = 0, 1
TIMEOUT = 5.0  # seconds any one read may take before the run fails


def _read_line(sock: socket.socket, pending: bytearray) -> bytes:
    while b"\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def _read_until(sock: socket.socket, pending: bytearray, wanted: bytes) -> None:
    """Lines up to and including the first that holds `wanted`."""
    while wanted not in _read_line(sock, pending):
        pass


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
        sock.settimeout(TIMEOUT)


def _connect(port: int, name: bytes) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b'{"type":"connect","name":"%b"}\n' % name)
    pending = bytearray()
    _read_until(sock, pending, b'"type":"welcome"')
    return sock, pending


def one_run(kind: str, lines: int, warm: int, log_dir: Path) -> dict[str, Any]:
    command = server_command(kind, chatd_args(chatd_help()) if kind == "chatd" else [], None)
    server = start_server(kind, command, log_dir / f"{kind}-linefloor.log", SERVER_CPU)
    try:
        talker, _ = _connect(server.port, b"talker")
        listener, heard = _connect(server.port, b"listener")
        _drain(talker)  # the listener's join notice

        def one_line(seq: int) -> int:
            """Nanoseconds from its send until the listener has it (this very line)."""
            sent = time.perf_counter_ns()
            talker.sendall(b'{"type":"message","message":"talker:%d:hello there"}\n' % seq)
            _read_until(listener, heard, b'"message":"talker:%d:' % seq)
            return time.perf_counter_ns() - sent

        for seq in range(warm):
            one_line(seq)
        before = process_cpu(server.proc.pid)
        trips = sorted(one_line(seq) for seq in range(warm, warm + lines))
        after = process_cpu(server.proc.pid)
        talker.close()
        listener.close()
    finally:
        stop_server(server, 10)
    return {"server": kind, "lines": lines,
            "cpu_us_per_line": round((after.total - before.total) / lines * 1e6, 2),
            "user_us_per_line": round((after.user - before.user) / lines * 1e6, 2),
            "round_trip_p50_us": round(trips[len(trips) // 2] / 1000, 1),
            "round_trip_p99_us": round(trips[int(len(trips) * 0.99)] / 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", default="reference,chatd")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--warm", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3, help="each server's, alternated")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pin(CLIENT_CPU)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as log_dir:
        for _ in range(args.runs):
            for kind in args.servers.split(","):
                runs.append(one_run(kind, args.lines, args.warm, Path(log_dir)))
    print(f"{'server':<10} {'CPU us/line':>11} {'user us/line':>12} "
          f"{'trip p50 us':>11} {'trip p99 us':>11}   (median of {args.runs} runs)")
    for kind in args.servers.split(","):
        mine = [run for run in runs if run["server"] == kind]

        def median(key: str, runs_of: list[dict[str, Any]] = mine) -> float:
            return float(statistics.median(run[key] for run in runs_of))

        print(f"{kind:<10} {median('cpu_us_per_line'):>11.1f} "
              f"{median('user_us_per_line'):>12.1f} {median('round_trip_p50_us'):>11.1f} "
              f"{median('round_trip_p99_us'):>11.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": runs}) + "\n")


if __name__ == "__main__":
    main()
