"""The benchmark at a tiny size, through its real entry point, so that it never rots.

Only counts are asserted (every line delivered, in order, to every receiver); timings
depend on the machine and are never checked here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench import stamped
from bench.loadgen import (
    Client,
    LoadGen,
    choose_talkers,
    city_schedule,
    city_seating,
    city_sizes,
    multi_seating,
    multi_sizes,
)
from tests.support.harness import BIN

ROOT = Path(__file__).resolve().parents[2]
# The city scenario at a tiny size: 60 clients in 5 rooms (one of 20, four of 10).
TINY_CITY = ("--city-clients", "60", "--city-rooms", "5", "--city-big-rooms", "1",
             "--city-big-size", "20", "--city-talkers", "2", "--city-rate", "80",
             "--city-duration", "0.5")
# city-multi at a tiny size: the same 60 clients, each in 3 of the 5 rooms.
TINY_MULTI = ("--city-clients", "60", "--city-rooms", "5", "--city-talkers", "2",
              "--city-rate", "80", "--city-duration", "0.5", "--multi-rooms", "3")


def run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        # --idle-settle 0: the idle RSS is reported, never checked here, so no pause for it
        [str(BIN / "python"), "-m", "bench", "--json", str(out), "--logs", str(tmp_path / "logs"),
         "--timeout", "30", "--idle-settle", "0", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(out.read_text()) if out.exists() else None
    return proc, report


def test_tiny_benchmark_delivers_every_line(tmp_path: Path) -> None:
    proc, report = run_bench(
        tmp_path, "--servers", "reference,naive,chatd",
        "--scenarios", "fanout,latency,idle,bigroom,city", "--clients", "5", "--senders", "2",
        "--lines", "20", "--window", "4", "--rate", "40", "--duration", "0.5", "--idle", "50",
        "--broadcasts", "2", *TINY_CITY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report is not None and report["ok"] is True
    # The printed table and the JSON describe the same run.
    assert "fanout: 5 clients" in proc.stdout and "targets" in proc.stdout
    assert report["sizes"]["clients"] == 5 and report["versions"]["chatd"]
    assert report["machine"]["cpus"] >= 1

    for kind in ("reference", "naive", "chatd"):
        fanout = report["summary"]["fanout"][kind]["fanout"]
        assert fanout["complete"] is True
        # 2 senders x 20 lines, each to the 4 other clients.
        assert fanout["deliveries_expected"] == fanout["deliveries_received"] == 2 * 20 * 4
        assert fanout["server_cpu_us_per_delivery"] is not None

        latency = report["summary"]["latency"][kind]["latency"]
        assert latency["complete"] is True
        assert latency["deliveries_received"] == latency["deliveries_expected"] > 0
        assert latency["latency"]["samples"] == latency["deliveries_received"]

        big = report["summary"]["big"][kind]
        assert big["idle"]["welcomed"] == big["idle"]["settled"] == 50
        assert big["idle"]["join_notices_received"] == 50 * 51 // 2
        assert big["bigroom"]["complete"] is True
        assert big["bigroom"]["deliveries_received"] == 2 * 49

        city = report["summary"]["city"][kind]
        assert city["seat"]["settled"] == 60
        # Join notices go to the joiner's room only: n(n+1)/2 a room.
        assert city["seat"]["join_notices_received"] == 20 * 21 // 2 + 4 * (10 * 11 // 2)
        c = city["city"]
        assert c["complete"] is True and c["lines_sent"] == c["lines"] == 40
        assert c["rooms"] == 5 and c["room_sizes"] == {"min": 10, "max": 20, "big_rooms": 1}
        assert c["deliveries_received"] == c["deliveries_expected"] > 0
        assert c["latency"]["samples"] == c["deliveries_received"]

        for session in ("fanout", "latency", "big", "city"):
            run = report["summary"][session][kind]
            assert run["faults"]["missing"] == 0 and run["faults"]["disconnects"] == 0
            assert run["server"]["exit_code"] == 0


def test_chatd_runs_with_limits_off_only_where_it_has_them() -> None:
    from bench.run import chatd_args

    assert chatd_args("usage: chatd [--port PORT]") == ["--host", "127.0.0.1", "--port", "0"]
    full = chatd_args("--rate LINES --max-clients N --max-per-ip N --log-level LEVEL")
    assert full[4:] == ["--rate", "0", "--max-clients", "0", "--max-per-ip", "0"]
    assert "--log-level" not in full and "--quiet" not in full  # logging stays at its default


def test_a_lost_line_fails_the_run(tmp_path: Path) -> None:
    """The checker is not a rubber stamp: a server that drops a line makes the run fail."""
    proc, report = run_bench(
        tmp_path, "--servers", "lossy", "--scenarios", "fanout", "--clients", "4",
        "--senders", "2", "--lines", "30", "--timeout", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report is not None and report["ok"] is False
    faults = report["summary"]["fanout"]["lossy"]["faults"]
    assert faults["missing"] >= 1


def test_a_line_lost_in_one_room_of_the_city_fails_the_run(tmp_path: Path) -> None:
    proc, report = run_bench(
        tmp_path, "--servers", "lossy", "--scenarios", "city", *TINY_CITY, "--timeout", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report is not None and report["ok"] is False
    assert report["summary"]["city"]["lossy"]["faults"]["missing"] == 1


def test_city_rooms_and_schedule() -> None:
    """The city's layout: 10,000 in 200 rooms, four of 100; join order mixes the rooms."""
    sizes = city_sizes(10_000, 200, 4, 100)
    assert sum(sizes) == 10_000 and sizes[:4] == [100] * 4 and set(sizes[4:]) == {49, 48}
    seating = city_seating(sizes)
    assert [seating.count(room) for room in range(200)] == sizes
    assert seating[:200] == list(range(200))  # the first wave of joins spans every room
    assert city_sizes(60, 5, 1, 1000) == [52, 2, 2, 2, 2]  # every room keeps two members
    lines = city_schedule(200, 20_000, 1.0, seed=1)
    share = [lines.count(room) / len(lines) for room in range(200)]
    assert share[0] > 0.15 and share[0] > 2 * share[3] > 4 * share[50]  # Zipf-like
    assert city_schedule(200, 100, 1.0, seed=1) == lines[:100]  # one seed, one schedule


def test_a_welcome_past_the_names_bound_places_its_client_by_the_count() -> None:
    """PROTOCOL.txt 8.13: a welcome lists 32 KiB of names and counts the rest in "more"
    (every joiner of the idle scenario's 10,000 past the 4,234th): the load generator
    places the client after all of them, so the client settles on its own join notice
    (it waited for notices of the joins before it, and the run timed out)."""

    async def seat_the_tenth() -> tuple[Client, LoadGen]:
        gen = LoadGen(argparse.Namespace(server_pid=[], senders=0))
        gen.expected_clients = 10
        client = Client(gen, 9, gen._seating_chunk)
        client.data_received(
            b'{"type":"welcome","name":"r9","room":"lobby","users":["r0","r1","r2"],'
            b'"more":7}\n{"type":"history_end","room":"lobby","count":0,"more":false}\n'
            b'{"type":"connect","name":"r9","message":"r9 joined","room":"lobby",'
            b'"id":"1","time":"2026-12-06T17:20:25.145Z"}\n', 0)
        return client, gen

    client, gen = asyncio.run(seat_the_tenth())
    assert (client.position, client.due, client.joins) == (10, 1, 1)
    assert client.settled and gen.settled == 1 and gen.faults.unexpected_lines == 0


def test_tiny_cluster_benchmark_delivers_every_line(tmp_path: Path) -> None:
    """The cluster scenario (two chatd processes over a real redis-server) at a tiny size."""
    proc, report = run_bench(
        tmp_path, "--servers", "cluster", "--scenarios", "fanout,latency", "--clients", "6",
        "--senders", "2", "--lines", "20", "--window", "4", "--rate", "40",
        "--duration", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report is not None and report["ok"] is True
    fanout = report["summary"]["fanout"]["cluster"]["fanout"]
    assert fanout["deliveries_expected"] == fanout["deliveries_received"] == 2 * 20 * 5
    latency = report["summary"]["latency"]["cluster"]["latency"]
    assert latency["deliveries_received"] == latency["deliveries_expected"] > 0
    assert "cluster: 2 chatd processes over a redis-server" in proc.stdout


def test_city_multi_rooms_and_seating() -> None:
    """city-multi's layout: 10,000 clients, 3 distinct rooms each, the busiest the smallest."""
    sizes = multi_sizes(10_000, 3, 200, 0.6, least=4)
    assert sum(sizes) == 30_000 and sizes == sorted(sizes)
    assert (sizes[0], sizes[-1]) == (14, 237)
    seating = multi_seating(sizes, 3)
    assert len(seating) == 10_000 and all(len(set(rooms)) == 3 for rooms in seating)
    seats = Counter(room for rooms in seating for room in rooms)
    assert [seats[room] for room in range(200)] == sizes
    talkers = choose_talkers(seating, 200, 3)
    assert Counter(talkers.values()) == dict.fromkeys(range(200), 3)
    assert all(room in seating[index] for index, room in talkers.items())
    # The one-room city's talkers are still its first clients, 3 of each room.
    city = [[room] for room in city_seating(city_sizes(10_000, 200, 4, 100))]
    assert sorted(choose_talkers(city, 200, 3)) == list(range(600))


def chatd_has_several_rooms() -> bool:
    """chatd from issue 25 on (its --max-rooms option); before, a join moves."""
    from bench.run import chatd_help

    return "--max-rooms" in chatd_help().split()


@pytest.mark.parametrize("server", ["reference", "chatd"])
def test_tiny_multi_room_benchmark_delivers_every_line(tmp_path: Path, server: str) -> None:
    """idle-multi and city-multi (every client in 3 rooms, each line with "room"): every
    join notice and every line arrives, at the reference and at chatd."""
    if server == "chatd" and not chatd_has_several_rooms():
        pytest.skip("this chatd has no several rooms a client (issue 25) yet")
    proc, report = run_bench(tmp_path, "--servers", server,
                             "--scenarios", "idle-multi,city-multi", *TINY_MULTI)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report is not None and report["ok"] is True
    assert "idle-multi: 60 joined idle connections, each in 3 of 5 rooms" in proc.stdout
    assert "city-multi: chatd p99 delivery latency" in proc.stdout
    sizes = multi_sizes(60, 3, 5, 0.6, least=3)
    run = report["summary"]["city-multi"][server]
    assert run["seat"]["settled"] == 60
    # A join is announced in the joined room only: n(n+1)/2 notices a room.
    assert run["seat"]["join_notices_received"] == sum(n * (n + 1) // 2 for n in sizes)
    assert run["idle"]["rss_per_connection_kib"] is not None
    c = run["city-multi"]
    assert c["complete"] is True and c["lines_sent"] == c["lines"] == 40
    assert c["rooms"] == 5 and c["rooms_per_client"] == 3 and c["senders"] == 10
    assert c["deliveries_received"] == c["deliveries_expected"] > 0
    assert c["latency"]["samples"] == c["deliveries_received"]
    assert run["faults"]["unexpected_lines"] == 0 and run["server"]["exit_code"] == 0


def test_a_line_lost_in_one_room_of_the_multi_city_fails_the_run(tmp_path: Path) -> None:
    proc, report = run_bench(tmp_path, "--servers", "lossy", "--scenarios", "city-multi",
                             *TINY_MULTI, "--timeout", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report is not None and report["ok"] is False
    assert report["summary"]["city-multi"]["lossy"]["faults"]["missing"] == 1


def test_reference_rooms_join_part_and_room_of_a_line() -> None:
    """The reference's several rooms: join adds (who, then the notice), a line goes to its
    "room", part leaves. Order on one connection shows what did not arrive: no sleeps."""
    ref = subprocess.Popen([sys.executable, "-m", "bench.reference"], cwd=ROOT,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert ref.stderr is not None
        port = int(ref.stderr.readline().split()[3].rsplit(":", 1)[1])
        ann, bob = (socket.create_connection(("127.0.0.1", port), timeout=10)
                    for _ in range(2))
        reads = {ann: ann.makefile("rb"), bob: bob.makefile("rb")}

        def say(sock: socket.socket, **line: Any) -> None:
            sock.sendall(json.dumps(line).encode() + b"\n")

        def hear(sock: socket.socket) -> dict[str, Any]:
            line: dict[str, Any] = json.loads(reads[sock].readline())
            return line

        say(ann, type="connect", name="ann")
        assert hear(ann)["rooms"] == ["lobby"] and hear(ann)["type"] == "connect"
        say(bob, type="connect", name="bob")
        assert hear(bob)["type"] == "welcome" and hear(bob)["name"] == "bob"
        assert hear(ann)["name"] == "bob"
        say(bob, type="join", room="dev")
        assert hear(bob) == {"type": "who", "room": "dev", "users": ["bob"]}
        notice = hear(bob)
        assert (notice["type"], notice["room"]) == ("connect", "dev")  # ann is not in dev
        say(ann, type="join", room="dev")
        assert hear(ann) == {"type": "who", "room": "dev", "users": ["bob", "ann"]}
        for sock in (ann, bob):
            notice = hear(sock)
            assert (notice["type"], notice["name"], notice["room"]) == ("connect", "ann", "dev")
        say(ann, type="message", message="one", room="lobby")
        assert hear(bob)["message"] == "one"
        say(bob, type="part", room="dev")
        say(ann, type="message", message="two")  # ann's current room: dev, bob left it
        say(ann, type="message", message="three", room="lobby")
        line = hear(bob)
        assert (line["message"], line["room"]) == ("three", "lobby")
        say(bob, type="message", message="four", room="dev")  # not in dev: dropped
        say(bob, type="message", message="five")  # current room: lobby again
        line = hear(ann)
        assert (line["message"], line["room"], line["name"]) == ("five", "lobby", "bob")
    finally:
        ref.terminate()
        ref.wait(10)


def test_a_stamped_read_carries_when_its_bytes_reached_the_socket() -> None:
    """bench.stamped: the kernel's stamp of a read lies between the peer's send and the
    read, and is not the time of the read (the reader was busy meanwhile)."""

    class Recorder:
        def __init__(self) -> None:
            self.reads: list[tuple[bytes, int, int]] = []
            self.got = asyncio.Event()

        def connection_made(self, transport: stamped.StampedTransport) -> None:
            pass

        def data_received(self, data: bytes, arrived_ns: int) -> None:
            self.reads.append((data, arrived_ns, time.time_ns()))
            self.got.set()

        def connection_lost(self, exc: Exception | None) -> None:
            pass

    async def exchange() -> tuple[Recorder, int, bytes]:
        stamped.stamping.keep()
        listener = socket.create_server(("127.0.0.1", 0))
        loop = asyncio.get_running_loop()
        recorder = Recorder()
        transport = await asyncio.wait_for(stamped.connect(
            loop, recorder, "127.0.0.1", listener.getsockname()[1]), 10)
        peer, _ = listener.accept()
        transport.write(b"hello\n")
        heard = peer.recv(100)
        sent = time.time_ns()
        peer.sendall(b"hi\n")
        busy_until = time.monotonic() + 0.05  # the reader is busy (not a wait for an
        while time.monotonic() < busy_until:  # event): its read comes late, its stamp not
            pass
        await asyncio.wait_for(recorder.got.wait(), 10)
        transport.abort()
        peer.close()
        listener.close()
        return recorder, sent, heard

    recorder, sent, heard = asyncio.run(exchange())
    assert heard == b"hello\n"
    [(data, arrived, read)] = recorder.reads
    assert data == b"hi\n" and stamped.stamping.unstamped == 0
    assert sent <= arrived < sent + 40_000_000 and read - arrived >= 50_000_000


def test_a_phase_that_times_out_fails_the_run() -> None:
    async def wait_in_vain() -> LoadGen:
        gen = LoadGen(argparse.Namespace(server_pid=[], senders=0))
        await gen._wait(gen.phase_done, 0.01)
        return gen

    gen = asyncio.run(wait_in_vain())
    assert gen.faults.timeouts == 1 and gen.faults.total() == 1


@pytest.mark.parametrize(("each", "deliveries"), [(1, 2 * 4 * 24), (3, 2 * 4 * 74)])
def test_the_delivery_path_tool_counts_what_it_delivers(each: int, deliveries: int) -> None:
    """bench.deliverypath: 100 connections in 4 rooms (25 a room, or 75 a room when each
    is in 3), one talker a room, 2 turns: every member but the talker gets each line."""
    out = subprocess.run([sys.executable, "-m", "bench.deliverypath", "--clients", "100",
                          "--rooms", "4", "--rooms-each", str(each), "--turns", "2"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    assert out.stdout.startswith(f"deliveries {deliveries} "), out.stdout + out.stderr


def test_the_line_floor_tool_times_every_line_on_both_servers(tmp_path: Path) -> None:
    """bench.linefloor: one line at a time through each server, every one heard (a line
    that never arrives makes its read time out and the tool fail)."""
    out = subprocess.run([sys.executable, "-m", "bench.linefloor", "--runs", "1",
                          "--lines", "50", "--warm", "5", "--json", str(tmp_path / "f.json")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    runs = json.loads((tmp_path / "f.json").read_text())["runs"]
    assert [(run["server"], run["lines"]) for run in runs] == [("reference", 50), ("chatd", 50)]
    assert all(run["cpu_us_per_line"] > 0 and run["round_trip_p99_us"] > 0 for run in runs)
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["reference", "chatd"]


def test_the_hot_path_tool_takes_the_shape_of_a_line_a_turn(tmp_path: Path) -> None:
    """bench.hotpath with one reader and a line a read runs, and its JSON says the shape
    it ran; a shape with no reader is refused."""
    out = subprocess.run([sys.executable, "-m", "bench.hotpath", "--runs", "1", "--members",
                          "2", "--senders", "1", "--lines-per-read", "1", "--json",
                          str(tmp_path / "h.json")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    result = json.loads((tmp_path / "h.json").read_text())
    assert (result["members"], result["senders"], result["lines_per_read"]) == (2, 1, 1)
    assert result["best"] > 0 and out.stdout.splitlines()[1].split()[0] == "1"
    refused = subprocess.run([sys.executable, "-m", "bench.hotpath", "--members", "1"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert refused.returncode == 2 and "--members >= 2" in refused.stderr
