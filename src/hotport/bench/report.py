"""A run's results as tables: Markdown (BENCHMARKS.md), the terminal, JSON.

Owns: `tables(results)` (the headline and one table per scenario, as plain rows shared by
every rendering), `markdown`, `print_report` (rich, with a PASS/FAIL line per target and
its measured figure) and `to_json`.

Must never: measure, or print anywhere but the console it is given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from hotport.bench.targets import Target


@dataclass
class Tbl:
    key: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def s_(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


def _lat(results: dict[str, Any], policy: str, n: int, kind: str) -> dict[str, Any] | None:
    for r in results.get("latency", {}).get("rows", []):
        if (r["policy"], r["ports"], r["operation"]) == (policy, n, kind):
            return dict(r)
    return None


def headline(results: dict[str, Any], meta: dict[str, Any]) -> Tbl | None:
    lat = results.get("latency")
    if not lat or "error" in lat or not lat.get("rows"):
        return None
    ports = sorted({r["ports"] for r in lat["rows"]})
    n = 10 if 10 in ports else ports[-1]
    policies = list(dict.fromkeys(r["policy"] for r in lat["rows"]))
    t = Tbl(
        "headline",
        f"Attach and detach on a VM with {n} ports ({meta['profile']} profile, "
        "article-equivalent seconds, median)",
        [
            "policy",
            "attach",
            "requests",
            "detach",
            "requests",
            "attach vs hotport",
            "detach vs hotport",
        ],
    )
    hp_a, hp_d = _lat(results, "hotport", n, "attach"), _lat(results, "hotport", n, "detach")
    for p in policies:
        a, d = _lat(results, p, n, "attach"), _lat(results, p, n, "detach")
        if a is None or d is None:
            continue
        ra = a["equivalent"]["median"] / hp_a["equivalent"]["median"] if hp_a else None
        rd = d["equivalent"]["median"] / hp_d["equivalent"]["median"] if hp_d else None
        t.rows.append(
            [
                p,
                f"{s_(a['equivalent']['median'])} s",
                str(a["requests"]),
                f"{s_(d['equivalent']['median'])} s",
                str(d["requests"]),
                f"{s_(ra)}x",
                f"{s_(rd)}x",
            ]
        )
    return t


def tables(results: dict[str, Any], meta: dict[str, Any]) -> list[Tbl]:
    out: list[Tbl] = []
    for key, value in results.items():
        if isinstance(value, dict) and "error" in value:
            out.append(Tbl(key, f"{key}: FAILED", [], notes=[f"error: {value['error']}"]))
    results = {k: v for k, v in results.items() if not (isinstance(v, dict) and "error" in v)}
    lat = results.get("latency")
    if lat:
        t = Tbl(
            "latency",
            "1. Latency vs ports (article-equivalent seconds; requests to the network service)",
            [
                "policy",
                "N",
                "attach median",
                "attach p95",
                "req.",
                "RT",
                "detach median",
                "detach p95",
                "req.",
                "RT",
            ],
        )
        by: dict[tuple[str, int], dict[str, Any]] = {}
        for r in lat["rows"]:
            by.setdefault((r["policy"], r["ports"]), {})[r["operation"]] = r
        order = {p: i for i, p in enumerate(dict.fromkeys(r["policy"] for r in lat["rows"]))}
        for (p, n), ops in sorted(by.items(), key=lambda x: (x[0][1], order[x[0][0]])):
            a, d = ops["attach"], ops["detach"]
            t.rows.append(
                [
                    p,
                    str(n),
                    s_(a["equivalent"]["median"], 2),
                    s_(a["equivalent"]["p95"], 2),
                    str(a["requests"]),
                    str(a["round_trips"]),
                    s_(d["equivalent"]["median"], 2),
                    s_(d["equivalent"]["p95"], 2),
                    str(d["requests"]),
                    str(d["round_trips"]),
                ]
            )
        reps = lat["rows"][0]["equivalent"]["n"] if lat["rows"] else 0
        t.notes.append(
            f"{reps} attach+detach per policy and N, interleaved; "
            f"time_scale {lat['time_scale']:g}; "
            "req. = requests (median), RT = sequential round trips."
        )
        out.append(t)
    blk = results.get("blocking")
    if blk:
        t = Tbl(
            "blocking",
            "2. Blocking: attach + detach arriving during a rebuild "
            f"(VM with {blk['ports']} ports)",
            [
                "policy",
                "during",
                "ops",
                "lock wait median",
                "lock wait p99",
                "latency median",
                "latency p99",
                "extra (median)",
            ],
        )
        for r in blk["rows"]:
            t.rows.append(
                [
                    r["policy"],
                    r["trigger"],
                    str(r["operations"]),
                    s_(r["lock_wait"]["median"], 3),
                    s_(r["lock_wait"]["p99"], 3),
                    s_(r["latency"]["median"], 2),
                    s_(r["latency"]["p99"], 2),
                    s_(r["extra_latency_median"], 2),
                ]
            )
        t.notes.append(
            "article-equivalent seconds; lock wait = time blocked behind locks held by the "
            "rebuild; extra = latency median minus the median with nothing running (none)."
        )
        out.append(t)
    tp = results.get("throughput")
    if tp:
        t = Tbl(
            "throughput",
            f"3. Throughput: {tp['operations']} concurrent attach/detach on {tp['vms']} VMs x "
            f"{tp['ports']} ports, network service with {tp['workers']} workers",
            [
                "policy",
                "ok",
                "failed",
                "ops/s",
                "p99 latency",
                "requests",
                "service busy",
                "utilisation",
                "makespan",
            ],
        )
        for r in tp["rows"]:
            t.rows.append(
                [
                    r["policy"],
                    str(r["ok"]),
                    str(r["failed"]),
                    s_(r["ops_per_second"], 3),
                    f"{s_(r['latency']['p99'])} s",
                    str(r["requests"]),
                    f"{s_(r['service_busy_seconds'], 0)} s",
                    f"{r['service_utilisation'] * 100:.0f}%",
                    f"{s_(r['equivalent_seconds'], 0)} s",
                ]
            )
        t.notes.append(
            f"article-equivalent (time_scale {tp['time_scale']:g}); requests and busy time "
            "include the event work the operations caused; utilisation = busy / (workers x "
            "makespan)."
        )
        out.append(t)
    heal = results.get("heal")
    if heal:
        t = Tbl(
            "heal",
            f"4. Heal cost: one heal of a whole host of H instances x {heal['ports']} ports",
            [
                "policy",
                "H",
                "requests",
                "calls",
                "article-equiv.",
                "CPU (hotport)",
                "CPU (simulator)",
            ],
        )
        for r in heal["rows"]:
            star = " *" if r["extrapolated"] else ""
            t.rows.append(
                [
                    r["policy"],
                    f"{r['instances']:,}",
                    f"{r['requests']:,}{star}",
                    f"{r['calls_for_host']:,}",
                    f"{s_(r['equivalent_seconds'])} s{star}",
                    f"{s_(r['cpu_seconds'], 3)} s{star}",
                    f"{s_(r['sim_cpu_seconds'], 3)} s{star}",
                ]
            )
        if any(r["extrapolated"] for r in heal["rows"]):
            t.notes.append(
                "* extrapolated: the policy heals one instance per call (one per periodic "
                "tick); measured over a few calls, multiplied by the calls needed for H."
            )
        for sk in heal.get("skipped", []):
            t.notes.append(f"H = {sk['instances']:,} not measured: {sk['reason']}")
        out.append(t)
    cons = results.get("consistency")
    if cons:
        t = Tbl(
            "consistency",
            f"5. Consistency: the storm ({cons['instances']} instances x {cons['ports']} ports, "
            "2 actors per port, heal loop), checked before any final heal",
            [
                "policy",
                "seed",
                "ops",
                "lost VIFs",
                "ghost rows",
                "orphan NICs",
                "missing NICs",
                "duplicates",
                "stale rows",
                "stale-revision writes",
                "after one heal",
            ],
        )
        for r in cons["rows"]:
            t.rows.append(
                [
                    r["policy"],
                    str(r["seed"]),
                    str(r["operations"]),
                    *(
                        str(r[k])
                        for k in (
                            "lost_vifs",
                            "ghost_rows",
                            "orphan_nics",
                            "missing_nics",
                            "duplicate_nics",
                            "stale_rows",
                            "stale_revision_writes",
                            "after_heal",
                        )
                    ),
                ]
            )
        out.append(t)
    ov = results.get("overhead")
    if ov:
        t = Tbl(
            "overhead",
            "6. Engine overhead (instant network, in-memory hypervisor, "
            f"VM with {ov['ports']} ports)",
            [
                "policy",
                "CPU per attach+detach",
                "ops/s on one core",
                "process CPU",
                "of which simulator",
            ],
        )
        for r in ov["cpu"]:
            t.rows.append(
                [
                    r["policy"],
                    f"{r['cpu_per_cycle'] * 1000:.2f} ms",
                    s_(r["ops_per_cpu_second"], 0),
                    f"{r['process_cpu_per_cycle'] * 1000:.2f} ms",
                    f"{r['sim_cpu_per_cycle'] * 1000:.2f} ms",
                ]
            )
        mem = ov.get("memory", {})
        if mem.get("skipped"):
            t.notes.append(f"memory: not measured: {mem['skipped']}")
        elif mem:
            t.notes.append(
                f"memory with {mem['instances']:,} x {mem['ports']} cached VIFs "
                f"({mem['cached_vifs']:,} rows), {mem['measure']}: one heal + one "
                f"attach+detach peaked {mem['peak_mb']:.1f} MB above the start, of which the "
                f"simulator answering the port list ~{mem['sim_peak_mb']:.1f} MB: hotport "
                f"~{mem['hotport_peak_mb']:.1f} MB; {mem['retained_mb']:.2f} MB stays "
                f"allocated; database file {s_(mem['db_mb'])} MB; process peak RSS "
                f"{mem['max_rss_mb']:.0f} MB."
            )
        out.append(t)
    lv = results.get("libvirt")
    if lv:
        t = Tbl(
            "libvirt",
            "7. Real hypervisor: the tiny libvirt/QEMU guest (instant network, wall seconds)",
            ["policy", "N", "operation", "median", "p95", "requests"],
        )
        if lv.get("skipped"):
            t.notes.append(f"skipped: {lv['skipped']}")
        for r in lv.get("rows", []):
            t.rows.append(
                [
                    r["policy"],
                    str(r["ports"]),
                    r["operation"],
                    _ms(r["seconds"]["median"]),
                    _ms(r["seconds"]["p95"]),
                    "-" if r["requests"] is None else str(r["requests"]),
                ]
            )
        refused = sum(r.get("refused", 0) for r in lv.get("rows", []) if r["operation"] == "attach")
        if refused:
            t.notes.append(f"{refused} cycle(s) refused by the engine (a racy design lost a row).")
            for r in lv.get("rows", []):
                if r["operation"] == "attach" and r.get("first_refusal"):
                    t.notes.append(f"{r['policy']} N={r['ports']}: {r['first_refusal']}")
        if lv.get("rows"):
            t.notes.append(f"{lv['cycles']} attach+detach per policy and N.")
        out.append(t)
    return out


def _ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"  # nothing measured (every cycle refused)
    return f"{seconds * 1000:.0f} ms"


def targets_table(targets: list[Target]) -> Tbl:
    t = Tbl(
        "targets", "Targets (reported, not asserted)", ["target", "measured", "goal", "verdict"]
    )
    for x in targets:
        measured = "-" if x.measured is None else f"{s_(x.measured, 2)} {x.unit}".strip()
        t.rows.append([x.name, measured, x.target, x.verdict + (f" ({x.note})" if x.note else "")])
    return t


METHOD = [
    "One process: the Neutron simulator (reached through httpx's ASGI transport, its "
    "notifier posting Neutron's events to the engine), the engine with the policy under "
    "test, SQLite in a temporary directory, the in-memory hypervisor (plug 0.1 s, unplug "
    "0.2 s, scaled like the network). Set-up is not measured (it runs at zero latency).",
    "Article-equivalent seconds: each request's simulated delay (the time it queued for "
    "a worker plus its service time, as the simulator recorded them), lock waits and the "
    "in-memory hypervisor's plug/unplug are divided by the time scale; SQLite, hotport's "
    "and the simulator's CPU are kept as measured (`hotport.bench.timing`).",
    "Policies are interleaved (for each N, for each repetition, for each policy) so that "
    "machine noise hits them alike; at one N every policy's simulator has the same seed.",
    "Latency: the VM has N ports; one more is attached (N before it) and detached again "
    "(N+1 before it), each measured alone once Neutron's events are handled.",
    "Throughput runs at a larger time scale (`tp_slowdown`) so that hotport's local CPU "
    "stays small against the simulated time; it is wall time / time scale, local work "
    "included (conservative for the faster policy). A policy whose throughput is limited by "
    "the network service's capacity (utilisation near 100%) gets ops/s = workers / its "
    "service time per operation: the ratio is that of the busy time per operation.",
    "CPU: `time.process_time()` (every thread, aiosqlite's too) minus the CPU spent "
    "inside the in-process simulator. Memory: `tracemalloc` (the Python heap; SQLite's own "
    "page cache is not in it), the simulator's share measured alone and subtracted.",
    "The old design heals one instance per call (Nova's periodic task, one per tick): its "
    "whole-host figures are one or a few calls, multiplied by the calls needed for H. "
    "The simulator's CPU for it is large because it filters every port per list, which a "
    "real Neutron does in its database.",
    "Targets are reported, never asserted: a run does not fail on a missed target.",
]


def _md_table(t: Tbl, heading: str = "###") -> str:
    lines = [f"{heading} {t.title}", ""]
    if t.rows:
        lines.append("| " + " | ".join(t.headers) + " |")
        lines.append("|" + "|".join("---" for _ in t.headers) + "|")
        for r in t.rows:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        lines.append("")
    for n in t.notes:
        lines.append(n)
        lines.append("")
    return "\n".join(lines)


def markdown(
    data: dict[str, Any], targets: list[Target], plots: dict[str, str], *, title: str = "#"
) -> str:
    meta = data["meta"]
    results = data["scenarios"]
    m = meta["machine"]
    parts = [
        f"{title} hotport benchmarks",
        "",
        f"Last run: `{meta['command']}` ({meta['date']}, commit {meta['commit']}, "
        f"{meta['wall_seconds']:.0f} s).",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Python {m['python']}, "
        f"{m['system']}.",
        "",
        f"Policies: {', '.join(meta['policies'])} (same engine, simulator and store; only the "
        f"policy differs). Network: the simulator's `{meta['profile']}` profile (a loaded "
        f"Neutron: reads ~1.1 s, writes ~2.2 s) at time scale {meta['time_scale']:g}; every "
        "time is in article-equivalent seconds (simulated delays / time scale, local work as "
        "measured) unless it says otherwise.",
        "",
    ]
    head = headline(results, meta)
    if head is not None:
        parts.append(_md_table(head))
    parts.append(_md_table(targets_table(targets)))
    parts.append(f"{title}## How it is measured\n")
    parts.extend(f"- {line}" for line in METHOD)
    parts.append("")
    for t in tables(results, meta):
        parts.append(_md_table(t))
        for key, path in plots.items():
            if key == t.key or key.startswith(t.key + "-"):
                parts.append(f"![{key}]({path})\n")
    return "\n".join(parts).rstrip() + "\n"


def _rich(t: Tbl) -> Table:
    table = Table(
        title=t.title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    for i, h in enumerate(t.headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in t.rows:
        table.add_row(*r)
    return table


def print_report(data: dict[str, Any], targets: list[Target], console: Console) -> None:
    results, meta = data["scenarios"], data["meta"]
    for t in tables(results, meta):
        console.print(_rich(t))
        for n in t.notes:
            console.print(f"[dim]{n}[/]", highlight=False)
        console.print()
    head = headline(results, meta)
    if head is not None:
        console.print(_rich(head))
        console.print()
    colour = {"PASS": "green", "FAIL": "red", "INFO": "cyan", "N/A": "yellow"}
    for x in targets:
        v = x.verdict
        measured = "not measured" if x.measured is None else f"{s_(x.measured, 2)} {x.unit}".strip()
        note = f" [dim]({x.note})[/]" if x.note and x.passed is not True else ""
        console.print(
            f"[bold {colour[v]}]{v:4}[/] {x.name}: {measured} (target {x.target}){note}",
            highlight=False,
        )


def to_json(data: dict[str, Any], targets: list[Target]) -> str:
    def clean(o: Any) -> Any:
        if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean({**data, "targets": [t.to_dict() for t in targets]}), indent=2)


def relpath(path: Path, start: Path) -> str:
    try:
        return str(path.resolve().relative_to(start.resolve()))
    except ValueError:
        import os

        return os.path.relpath(path.resolve(), start.resolve())
