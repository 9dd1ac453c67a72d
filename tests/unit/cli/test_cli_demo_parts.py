"""The demo's pieces without running it: settings, the article-equivalent arithmetic, the
report table, the policy rows, the libvirt refusal."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from hotport import cli, demo
from hotport.apiclient import Trace
from hotport.engine.policy import POLICIES

runner = CliRunner()


def trace(seconds: float, phases: list[tuple[str, float]]) -> Trace:
    return {
        "kind": "attach",
        "instance": None,
        "port_id": None,
        "outcome": "ok",
        "error": None,
        "seconds": seconds,
        "phases": [{"name": n, "start": 0.0, "seconds": s} for n, s in phases],
        "network_requests": {"show_port": 1},
        "network_request_total": 1,
        "network_round_trips": 1,
        "lock_wait_seconds": {"port": 0.01},
    }


def test_equivalent_scales_the_simulated_time_only() -> None:
    t = trace(0.2, [("lock-port", 0.01), ("read", 0.05), ("bind", 0.1), ("store", 0.02)])
    # read + bind = 0.15 s scaled by 1/0.05; the 0.05 s left (lock, store, gaps) as is
    assert demo.equivalent_seconds(t, 0.05, real_hypervisor=False) == pytest.approx(3.05)
    t = trace(0.3, [("read", 0.05), ("plug", 0.1), ("store", 0.02)])
    assert demo.equivalent_seconds(t, 0.1, real_hypervisor=False) == pytest.approx(1.65)
    # a real hypervisor's plug is not simulated: not scaled
    assert demo.equivalent_seconds(t, 0.1, real_hypervisor=True) == pytest.approx(0.75)
    # at time scale 1 the equivalent is the measurement
    assert demo.equivalent_seconds(t, 1.0, real_hypervisor=False) == pytest.approx(0.3)


def test_every_policy_row_is_one_the_engine_has() -> None:
    assert [r.policy for r in demo.POLICY_RUNS] == ["legacy", "article", "hotport"]
    for run in demo.POLICY_RUNS:
        assert run.policy in POLICIES


def test_settings_refuse_what_cannot_run() -> None:
    with pytest.raises(ValueError, match="fastest"):
        demo.DemoSettings(policies=(demo.PolicyRun("fastest", "not a design"),))
    with pytest.raises(ValueError, match="ports"):
        demo.DemoSettings(ports=0)
    with pytest.raises(ValueError, match="time_scale"):
        demo.DemoSettings(time_scale=0)
    with pytest.raises(ValueError, match="profile"):
        demo.DemoSettings(profile="dialup")


def measured(policy: str, op: str, n: int, seconds: float) -> demo.Measured:
    return demo.Measured(
        policy=policy,
        operation=op,
        seconds=seconds,
        equivalent=seconds * 20,
        requests={"bind_port": 1, "show_port": 1, "list_floating_ips": 1}
        if op == "attach"
        else {"unbind_port": 1},
        request_total=n,
        round_trips=2 if op == "attach" else 1,
        lock_wait=0.0,
        outcome="ok",
    )


def test_report_table_and_notes() -> None:
    report = demo.DemoReport(demo.DemoSettings())
    report.measured = [
        measured("hotport", "attach", 3, 0.2),
        measured("hotport", "detach", 1, 0.12),
        measured("article", "attach", 3, 0.21),
        measured("article", "detach", 1, 0.11),
    ]
    report.wall_seconds = 6.5
    console = Console(record=True, width=80)
    demo.print_report(report, console)
    text = console.export_text()
    rows = [line.split() for line in text.splitlines()]
    assert ["hotport", "attach", "3", "2", "0.000", "s", "0.200", "s", "4.0", "s"] in rows
    assert ["article", "detach", "1", "1", "0.000", "s", "0.110", "s", "2.2", "s"] in rows
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    assert "article-equiv." in flat
    assert "attach: bind_port, list_floating_ips, show_port; detach: unbind_port" in flat
    assert "62 requests for this attach (5N+12, N = 10) and 56 for this detach" in flat
    assert "`hotport bench` compares the designs" in flat
    assert "done in 6.5 s" in flat


def test_demo_with_libvirt_and_no_libvirt_host_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(demo, "libvirt_problem", lambda uri: "libvirtd does not answer")
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: ran.append(a))
    result = runner.invoke(cli.app, ["demo", "--driver", "libvirt"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--driver libvirt needs a libvirt host: libvirtd does not answer" in result.output
    assert "libvirt-host.sh start" in result.output
    assert ran == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--time-scale", "0"], "--time-scale"), (["--ports", "0"], "--ports")],
)
def test_demo_bad_flags_exit_2(args: list[str], needle: str) -> None:
    result = runner.invoke(cli.app, ["demo", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert needle in result.output
