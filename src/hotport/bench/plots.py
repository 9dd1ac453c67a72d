"""PNG plots of a run (matplotlib, Agg backend: no display needed).

Owns: `write_plots(results, directory)`: latency vs N (one line per policy, attach and
detach, plus requests per operation), the wait behind a rebuild, throughput, and the
heal's cost vs H; returns {key: path} of the files written.

Must never: be imported at start (matplotlib is heavy): `hotport bench` imports it when
it writes plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

COLOURS = {"legacy": "#c0392b", "article": "#e67e22", "hotport": "#2471a3"}
MARKERS = {"legacy": "s", "article": "^", "hotport": "o"}


def _policies(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["policy"] for r in rows))


def _latency(lat: dict[str, Any], path: Path) -> None:
    rows = lat["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for policy in _policies(rows):
        c, mk = COLOURS.get(policy), MARKERS.get(policy, "o")
        for ax, kind in zip(axes[:2], ("attach", "detach"), strict=True):
            rs = sorted(
                (r for r in rows if r["policy"] == policy and r["operation"] == kind),
                key=lambda r: r["ports"],
            )
            xs = [r["ports"] for r in rs]
            med = [r["equivalent"]["median"] for r in rs]
            p95 = [r["equivalent"]["p95"] for r in rs]
            ax.plot(xs, med, marker=mk, color=c, label=policy)
            ax.fill_between(xs, med, p95, color=c, alpha=0.15)
        for kind, style in (("attach", "-"), ("detach", "--")):
            rs = sorted(
                (r for r in rows if r["policy"] == policy and r["operation"] == kind),
                key=lambda r: r["ports"],
            )
            axes[2].plot(
                [r["ports"] for r in rs],
                [r["requests"] for r in rs],
                style,
                marker=mk,
                color=c,
                label=f"{policy} {kind}",
            )
    for ax, kind in zip(axes[:2], ("attach", "detach"), strict=True):
        ax.set_title(f"{kind}: median (band to p95)")
        ax.set_xlabel("ports on the VM before (N)")
        ax.set_ylabel("article-equivalent seconds")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[2].set_title("network-service requests per operation")
    axes[2].set_xlabel("ports on the VM before (N)")
    axes[2].set_ylabel("requests")
    axes[2].set_yscale("log")
    axes[2].grid(True, which="both", alpha=0.3)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Latency vs ports ({lat['profile']} profile, time scale {lat['time_scale']:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _blocking(blk: dict[str, Any], path: Path) -> None:
    rows = blk["rows"]
    policies = _policies(rows)
    triggers = [t for t in dict.fromkeys(r["trigger"] for r in rows) if t != "none"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(policies))
    for i, policy in enumerate(policies):
        vals = []
        for t in triggers:
            r = next(x for x in rows if x["policy"] == policy and x["trigger"] == t)
            vals.append(r["lock_wait"]["p99"])
        xs = [j + i * width for j in range(len(triggers))]
        ax.bar(xs, vals, width, color=COLOURS.get(policy), label=policy)
    ax.set_xticks([j + width * (len(policies) - 1) / 2 for j in range(len(triggers))])
    ax.set_xticklabels([f"during a {t}" for t in triggers])
    ax.set_ylabel("p99 wait for locks (article-equiv. s)")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_title(f"Blocking: attach/detach on a VM with {blk['ports']} ports during a rebuild")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _throughput(tp: dict[str, Any], path: Path) -> None:
    rows = tp["rows"]
    policies = _policies(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ops = [max(r["ops_per_second"] for r in rows if r["policy"] == p) for p in policies]
    reqs = [max(r["requests"] for r in rows if r["policy"] == p) for p in policies]
    colours = [COLOURS.get(p, "grey") for p in policies]
    axes[0].bar(policies, ops, color=colours)
    axes[0].set_ylabel("operations per article-equivalent second")
    axes[0].set_title("throughput")
    axes[1].bar(policies, reqs, color=colours)
    axes[1].set_ylabel("requests to the network service")
    axes[1].set_title("network service load")
    for ax in axes:
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        f"{tp['operations']} concurrent operations, {tp['vms']} VMs x {tp['ports']} ports, "
        f"{tp['workers']} workers"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _heal(heal: dict[str, Any], path: Path) -> None:
    rows = heal["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for policy in _policies(rows):
        rs = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["instances"])
        xs = [r["instances"] for r in rs]
        c, mk = COLOURS.get(policy), MARKERS.get(policy, "o")
        axes[0].plot(xs, [r["requests"] for r in rs], marker=mk, color=c, label=policy)
        axes[1].plot(xs, [r["equivalent_seconds"] for r in rs], marker=mk, color=c, label=policy)
    axes[0].set_ylabel("requests")
    axes[1].set_ylabel("article-equivalent seconds")
    for ax in axes:
        ax.set_xlabel(f"instances on the host (x {heal['ports']} ports)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("One heal of the whole host")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    makers = {
        "latency": _latency,
        "blocking": _blocking,
        "throughput": _throughput,
        "heal": _heal,
    }
    for key, make in makers.items():
        data = results.get(key)
        if data and data.get("rows"):
            path = directory / f"bench-{key}.png"
            make(data, path)
            out[key] = path
    return out
