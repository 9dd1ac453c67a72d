"""Targets, tables, Markdown, JSON and plots from made-up results (no measuring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from hotport.bench import plots, report
from hotport.bench.settings import BenchSettings
from hotport.bench.targets import evaluate


def stat(median: float) -> dict[str, float]:
    return {
        "n": 5,
        "median": median,
        "mean": median,
        "p95": median * 1.1,
        "p99": median * 1.2,
        "min": median,
        "max": median * 1.2,
    }


LAT = {"legacy": (72.0, 55.0, 62, 56), "article": (12.5, 6.5, 11, 4), "hotport": (3.5, 2.4, 3, 1)}


def results() -> dict[str, Any]:
    rows = []
    for n in (1, 10, 50):
        for policy, (a, d, ra, rd) in LAT.items():
            grow = 1.0 if policy == "hotport" else n / 10
            for kind, v, r in (("attach", a * grow, ra), ("detach", d * grow, rd)):
                rows.append(
                    {
                        "policy": policy,
                        "ports": n,
                        "operation": kind,
                        "equivalent": stat(v),
                        "measured": stat(v / 100),
                        "requests": r,
                        "requests_min": r,
                        "requests_max": r,
                        "round_trips": r,
                        "lock_wait": stat(0.0),
                        "calls": {},
                        "errors": 0,
                    }
                )
    blocking = [
        {
            "policy": p,
            "trigger": t,
            "operations": 4,
            "lock_wait": stat(0.0 if p == "hotport" else 30.0),
            "latency": stat(3.5),
            "extra_latency_median": 0.0,
            "errors": 0,
        }
        for p in LAT
        for t in ("none", "heal", "network-changed")
    ]
    tp = [
        {
            "policy": p,
            "rep": 0,
            "operations": 200,
            "ok": 200,
            "failed": 0,
            "seconds": 1.0,
            "equivalent_seconds": 100.0,
            "ops_per_second": ops,
            "latency": stat(5.0),
            "requests": 1000,
            "requests_by_ops": 900,
            "service_busy_seconds": 300.0,
            "service_utilisation": 0.9,
            "queued_seconds": 10.0,
            "max_queue_depth": 5,
            "cpu_seconds": 0.5,
            "loop_busy": 0.1,
        }
        for p, ops in (("legacy", 0.05), ("article", 0.4), ("hotport", 1.2))
    ]
    heal = [
        {
            "policy": p,
            "instances": h,
            "ports": 10,
            "calls_measured": 1,
            "instances_per_call": h if p == "hotport" else 1,
            "calls_for_host": 1 if p == "hotport" else h,
            "extrapolated": p != "hotport",
            "requests": 4 if p == "hotport" else 53 * h,
            "requests_per_call": 4.0,
            "equivalent_seconds": 5.0,
            "round_trips_per_call": 2,
            "cpu_seconds": 0.1 * h / 1000,
            "process_cpu_seconds": 0.2,
            "sim_cpu_seconds": 0.1,
            "drift": 0,
            "seed_seconds": 1.0,
        }
        for h in (10, 10_000)
        for p in LAT
    ]
    cons = [
        {
            "policy": p,
            "seed": 11,
            "operations": 100,
            "bound_ports": 50,
            "lost_vifs": 0,
            "ghost_rows": 0,
            "orphan_nics": 0,
            "missing_nics": 0,
            "duplicate_nics": 0,
            "stale_rows": 0,
            "stale_revision_writes": 0 if p == "hotport" else 3,
            "violations": 0 if p == "hotport" else 3,
            "after_heal": 0,
        }
        for p in LAT
    ]
    cpu = [
        {
            "policy": p,
            "cycles": 10,
            "cpu_per_cycle": c,
            "process_cpu_per_cycle": c,
            "sim_cpu_per_cycle": 0.0,
            "wall_per_cycle": c,
            "ops_per_cpu_second": 2 / c,
            "process_ops_per_cpu_second": 2 / c,
        }
        for p, c in (("legacy", 0.04), ("article", 0.01), ("hotport", 0.0015))
    ]
    memory = {
        "instances": 10_000,
        "ports": 10,
        "cached_vifs": 100_000,
        "heal_ports_seen": 100_000,
        "peak_mb": 60.0,
        "sim_peak_mb": 20.0,
        "hotport_peak_mb": 40.0,
        "retained_mb": 0.1,
        "db_mb": 90.0,
        "max_rss_mb": 900.0,
        "measure": "tracemalloc (Python heap)",
    }
    return {
        "latency": {"rows": rows, "time_scale": 0.01, "profile": "article"},
        "blocking": {"rows": blocking, "ports": 10, "one_request": 1.1},
        "throughput": {
            "rows": tp,
            "vms": 20,
            "ports": 10,
            "workers": 4,
            "operations": 200,
            "time_scale": 0.04,
        },
        "heal": {"rows": heal, "skipped": [], "ports": 10},
        "consistency": {"rows": cons, "instances": 50, "ports": 10},
        "overhead": {"cpu": cpu, "memory": memory, "ports": 10},
        "libvirt": {"skipped": "no libvirt host: virsh is not installed"},
    }


SETTINGS = BenchSettings(policies=("article", "hotport"), ports=(1, 10, 50))


def by_name(targets: list[Any]) -> dict[str, Any]:
    return {t.name: t for t in targets}


def test_every_target_is_judged_from_the_results() -> None:
    ts = by_name(evaluate(results(), SETTINGS))
    t = ts["legacy attach (article profile, N=10)"]
    assert (t.measured, t.passed) == (72.0, True)
    assert ts["legacy detach (article profile, N=10)"].passed is None  # reported only
    assert ts["article attach (article profile, N=10)"].passed is True
    assert ts["article detach (article profile, N=10)"].passed is True
    assert ts["hotport attach speed-up over legacy (N=10)"].measured == pytest.approx(72 / 3.5)
    assert ts["hotport attach speed-up over legacy (N=10)"].passed is True
    assert ts["hotport detach speed-up over legacy (N=10)"].passed is False  # 25x
    assert ts["hotport attach vs its floor (N=10)"].measured == pytest.approx(3.5 / 3.4)
    assert ts["hotport attach flat in N (N=50 / N=1)"].passed is True
    assert ts["hotport extra wait behind a heal (p99)"].passed is True
    tp = ts["hotport throughput vs legacy (20 VMs x 10 ports, 4 workers)"]
    assert (tp.measured, tp.passed) == (pytest.approx(24.0), True)
    assert ts["hotport heal requests per host (H = 10, 10,000)"].passed is True
    assert ts["hotport heal CPU, 10,000 x 10 (hotport's own, simulator excluded)"].passed is True
    assert ts["hotport consistency violations (storm)"].passed is True
    assert ts["article consistency violations (storm)"].measured == 3
    assert ts["hotport CPU per attach+detach (instant network, simulator excluded)"].passed is True
    mem = next(t for n, t in ts.items() if n.startswith("hotport memory"))
    assert (mem.measured, mem.passed) == (40.0, True)
    for t in ts.values():
        d = t.to_dict()
        assert {"name", "measured", "target", "pass"} <= set(d)


def test_what_was_not_measured_says_so() -> None:
    ts = by_name(evaluate({}, SETTINGS))
    t = ts["legacy attach (article profile, N=10)"]
    assert (t.measured, t.passed, t.verdict) == (None, None, "N/A")
    assert "not run" in t.note


def test_markdown_json_terminal_and_plots(tmp_path: Path) -> None:
    data = {
        "meta": {
            "command": "hotport bench",
            "date": "today",
            "commit": "abc",
            "wall_seconds": 1.0,
            "machine": {
                "nproc": 2,
                "cpu": "x",
                "memory": "1 GiB",
                "python": "3.11",
                "system": "Linux",
            },
            "policies": ["legacy", "article", "hotport"],
            "profile": "article",
            "time_scale": 0.01,
        },
        "scenarios": results(),
    }
    targets = evaluate(data["scenarios"], SETTINGS)
    written = plots.write_plots(data["scenarios"], tmp_path / "plots")
    assert set(written) == {"latency", "blocking", "throughput", "heal"}
    for p in written.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report.markdown(data, targets, {k: f"plots/{p.name}" for k, p in written.items()})
    assert "| legacy | 72.0 s | 62 |" in md
    assert "![latency](plots/bench-latency.png)" in md
    assert "skipped: no libvirt host" in md
    assert "| hotport extra wait behind a heal (p99) | 0.00 s |" in md
    loaded = json.loads(report.to_json(data, targets))
    assert loaded["targets"][0]["pass"] is True
    console = Console(record=True, width=200)
    report.print_report(data, targets, console)
    text = console.export_text()
    assert "PASS legacy attach (article profile, N=10): 72.00 s" in text
    assert "FAIL hotport detach speed-up over legacy" in text


def test_settings_refuse_what_this_build_lacks() -> None:
    with pytest.raises(ValueError, match="not in this build"):
        BenchSettings(policies=("nova-2012",))
    with pytest.raises(ValueError, match="unknown scenario"):
        BenchSettings(scenarios=("speed",))
    q = BenchSettings.quick_run()
    assert q.quick
    assert q.reps < BenchSettings().reps


def test_a_failed_scenario_is_reported_and_the_rest_still_is() -> None:
    res = results()
    res["throughput"] = {"error": "RuntimeError: boom"}
    data = {
        "meta": {
            "command": "hotport bench",
            "date": "today",
            "commit": "abc",
            "wall_seconds": 1.0,
            "policies": ["legacy", "article", "hotport"],
            "machine": {
                "nproc": 2,
                "cpu": "x",
                "memory": "1 GiB",
                "python": "3.11",
                "system": "Linux",
            },
            "profile": "article",
            "time_scale": 0.01,
        },
        "scenarios": res,
    }
    targets = evaluate(res, SETTINGS)
    md = report.markdown(data, targets, {})
    assert "error: RuntimeError: boom" in md
    assert "| legacy | 72.0 s | 62 |" in md
    tp = next(t for t in targets if t.name.startswith("hotport throughput"))
    assert tp.measured is None
