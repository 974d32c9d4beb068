"""The benchmark at a tiny size, through its real entry point, so that it never rots.

Only counts are asserted (every line delivered, in order, to every receiver); timings
depend on the machine and are never checked here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.loadgen import city_schedule, city_seating, city_sizes
from tests.support.harness import BIN

ROOT = Path(__file__).resolve().parents[2]
# The city scenario at a tiny size: 60 clients in 5 rooms (one of 20, four of 10).
TINY_CITY = ("--city-clients", "60", "--city-rooms", "5", "--city-big-rooms", "1",
             "--city-big-size", "20", "--city-talkers", "2", "--city-rate", "80",
             "--city-duration", "0.5")


def run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [str(BIN / "python"), "-m", "bench", "--json", str(out), "--logs", str(tmp_path / "logs"),
         "--timeout", "30", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(out.read_text()) if out.exists() else None
    return proc, report


def test_tiny_benchmark_delivers_every_line(tmp_path: Path) -> None:
    proc, report = run_bench(
        tmp_path, "--servers", "reference,naive,chatd", "--clients", "5", "--senders", "2",
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
