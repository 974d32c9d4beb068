"""Unit tests of bench.run's targets: how a ratio to the reference is taken from the runs."""

from __future__ import annotations

from typing import Any

from bench import run


def _run(session: str, cpu: float, p50: float = 1.0) -> dict[str, Any]:
    return {session: {"server_cpu_us_per_delivery": cpu, "latency": {"p50_ms": p50}}}


def test_a_ratio_is_the_median_of_each_runs_own() -> None:
    """Run i of chatd is set against run i of the reference (made one after the other),
    not against whichever reference run had the median p99."""
    runs = {"city": {"reference": [_run("city", 8.0), _run("city", 6.0), _run("city", 7.0)],
                     "chatd": [_run("city", 9.6), _run("city", 9.0), _run("city", 8.4)]}}
    assert run.paired_ratios(runs, "city", ("city", "server_cpu_us_per_delivery")) == [
        1.2, 1.5, 1.2]
    args = run.build_parser().parse_args([])
    summary = {"city": {"reference": runs["city"]["reference"][1],
                        "chatd": runs["city"]["chatd"][0]}}
    (city,) = [t for t in run.evaluate(summary, args, runs) if t["target"] == "city_ratio"]
    assert city["value"] == 1.2 and city["runs"] == [1.2, 1.5, 1.2] and city["met"]


def test_a_run_without_the_figure_is_left_out() -> None:
    runs = {"city": {"reference": [_run("city", 8.0), {"city": {}}],
                     "chatd": [_run("city", 8.8), _run("city", 9.0)]}}
    assert run.paired_ratios(runs, "city", ("city", "server_cpu_us_per_delivery")) == [1.1]
    assert run.paired_ratios(runs, "fanout", ("fanout", "x")) == []
