"""The benchmark at a tiny size, through its real entry point, so that it never rots.

Only counts are asserted (every line delivered, in order, to every receiver); timings
depend on the machine and are never checked here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.harness import BIN

ROOT = Path(__file__).resolve().parents[2]


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
        "--broadcasts", "2")
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

        for session in ("fanout", "latency", "big"):
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
