"""The metrics-on-versus-off benchmark at a tiny size, through its real entry point, so
that it never rots (only counts are asserted; the lead runs it at size)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.harness import BIN

ROOT = Path(__file__).resolve().parents[2]


def test_fanout_with_metrics_on_and_off_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [str(BIN / "python"), "-m", "bench", "--json", str(out), "--logs", str(tmp_path),
         "--timeout", "30", "--scenarios", "fanout", "--servers", "chatd,chatd-metrics",
         "--clients", "5", "--senders", "2", "--lines", "20", "--window", "4",
         "--realtime", "off", "--scrape-every", "0.05"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    for kind in ("chatd", "chatd-metrics"):
        fanout = report["summary"]["fanout"][kind]["fanout"]
        assert fanout["deliveries_expected"] == fanout["deliveries_received"] == 2 * 20 * 4
    run = report["summary"]["fanout"]["chatd-metrics"]
    assert "--metrics" in run["server"]["command"]
    assert run["scrapes"]["failures"] == 0
    cost = next(t for t in report["targets"] if t["target"] == "metrics_cost")
    assert cost["value"] is not None and cost["at_target_size"] is False
