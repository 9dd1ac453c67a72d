"""`hotport bench`: run the scenarios, judge the targets, write the reports.

Owns: `run_bench` (each selected scenario in turn, all policies inside each, with one
rich progress bar per scenario) and `BenchRun` (the results, the run's metadata: command,
machine, settings, wall time, and the targets), and `write_outputs` (JSON, Markdown,
PNG plots).

Must never: leave anything behind (temporary directory, a libvirt guest), or print
anywhere but the console it is given.

Concurrency: one event loop; scenarios run one after another (so that they do not
compete for the cores of a small machine); within a scenario the policies are
interleaved so that machine noise hits them alike.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from hotport.bench.context import Ctx
from hotport.bench.report import markdown, relpath, to_json
from hotport.bench.settings import BenchSettings
from hotport.bench.targets import Target, evaluate

REPO = Path(__file__).resolve().parents[3]

Scenario = Callable[[Ctx], Awaitable[dict[str, Any]]]


def _scenario(name: str) -> Scenario:
    module = importlib.import_module(f"hotport.bench.scenarios.{name}")
    run: Scenario = module.run
    return run


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "system": platform.platform(terse=True),
    }


def _commit() -> str:
    try:
        r = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = r.stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return commit + (" + uncommitted changes" if dirty.stdout.strip() else "")


@dataclass
class BenchRun:
    settings: BenchSettings
    command: str
    results: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    targets: list[Target] = field(default_factory=list)
    date: str = ""
    #: scenarios that raised, with the error (the run goes on; the command then fails)
    errors: dict[str, str] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        s = self.settings
        return {
            "meta": {
                "command": self.command,
                "date": self.date,
                "commit": _commit(),
                "machine": machine(),
                "quick": s.quick,
                "profile": s.profile,
                "time_scale": s.time_scale,
                "policies": list(s.policies),
                "wall_seconds": self.wall_seconds,
                "scenario_seconds": self.seconds,
                "errors": self.errors,
                "settings": s.to_dict(),
            },
            "scenarios": self.results,
        }


async def run_bench(
    settings: BenchSettings,
    console: Console,
    *,
    command: str = "hotport bench",
    show_progress: bool = True,
) -> BenchRun:
    run = BenchRun(settings, command, date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    t0 = time.perf_counter()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
    )
    with tempfile.TemporaryDirectory(prefix="hotport-bench-") as tmp, progress:
        tasks = {
            name: progress.add_task(f"{name:<12} waiting", total=None, start=False)
            for name in settings.scenarios
        }
        for name in settings.scenarios:
            progress.start_task(tasks[name])
            folder = Path(tmp) / name
            folder.mkdir()
            ctx = Ctx(settings, folder, progress, tasks[name], name)
            ctx.say("starting")
            started = time.perf_counter()
            try:
                run.results[name] = await _scenario(name)(ctx)
            except Exception as exc:  # the other scenarios still run; the command fails
                run.errors[name] = f"{type(exc).__name__}: {exc}"
                run.results[name] = {"error": run.errors[name]}
            run.seconds[name] = time.perf_counter() - started
            skipped = run.results[name].get("skipped") or run.results[name].get("error")
            ctx.say(
                f"{'failed' if name in run.errors else 'skipped'}: {skipped}"[:90]
                if isinstance(skipped, str)
                else f"done in {run.seconds[name]:.0f} s"
            )
            task = progress.tasks[tasks[name]]
            progress.update(tasks[name], completed=task.total or 1, total=task.total or 1)
            progress.stop_task(tasks[name])
    run.wall_seconds = time.perf_counter() - t0
    run.targets = evaluate(run.results, settings)
    return run


def write_outputs(
    run: BenchRun,
    *,
    json_path: Path | None = None,
    markdown_path: Path | None = None,
    plots_dir: Path | None = None,
) -> dict[str, Path]:
    """Write what was asked; returns the plots written, by key."""
    data = run.data()
    plots: dict[str, Path] = {}
    if plots_dir is not None:
        from hotport.bench.plots import write_plots

        plots = write_plots(run.results, plots_dir)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(to_json(data, run.targets) + "\n")
    if markdown_path is not None:
        base = markdown_path.parent
        links = {k: relpath(p, base) for k, p in plots.items()}
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown(data, run.targets, links))
    return plots
