"""`hotport sim-neutron`: flags, validation (exit 2 with a message), the banner; no server run."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from hotport import cli
from hotport.sim.config import SimConfig
from hotport.sim.server import banner_lines, parse_listen

runner = CliRunner()

FLAGS = [
    "--listen",
    "--profile",
    "--time-scale",
    "--workers",
    "--vif-type",
    "--notify-url",
    "--send-events-interval",
    "--active-delay",
    "--fault",
    "--seed",
    "--state-file",
    "--log-level",
]


def test_help_lists_every_flag() -> None:
    result = runner.invoke(cli.app, ["sim-neutron", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in FLAGS:
        assert flag in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--profile", "bogus"], "--profile"),
        (["--vif-type", "vhost"], "--vif-type"),
        (["--workers", "0"], "--workers"),
        (["--time-scale", "-1"], "--time-scale"),
        (["--listen", "nope"], "--listen"),
        (["--listen", "127.0.0.1:99999"], "port must be 1-65535"),
        (["--fault", "garbage"], "--fault"),
        (["--notify-url", "http://127.0.0.1:8774/v2"], "/v2.1"),
    ],
)
def test_bad_values_exit_2_with_a_message(
    args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hotport.sim.server.serve", _no_serve)
    result = runner.invoke(cli.app, ["sim-neutron", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert needle in result.output


def _no_serve(*args: Any, **kwargs: Any) -> None:  # pragma: no cover - must not be reached
    raise AssertionError("serve() must not run on bad input")


def test_good_flags_build_the_config_and_print_the_banner(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(config: SimConfig, host: str, port: int, *, log_level: str) -> None:
        seen.update(config=config, host=host, port=port, log_level=log_level)

    monkeypatch.setattr("hotport.sim.server.serve", fake_serve)
    args = ["sim-neutron", "--listen", "127.0.0.1:9797", "--profile", "article", "--time-scale",
            "0.01", "--workers", "2", "--vif-type", "tap", "--notify-url",
            "http://127.0.0.1:8774/v2.1", "--send-events-interval", "1", "--active-delay", "-1",
            "--fault", "PUT /v2.0/ports/*: 503=0.2", "--fault", "* /v2.0/*: 500=1%",
            "--seed", "3", "--log-level", "warning"]  # fmt: skip
    result = runner.invoke(cli.app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    config: SimConfig = seen["config"]
    assert (seen["host"], seen["port"], seen["log_level"]) == ("127.0.0.1", 9797, "warning")
    assert (config.profile, config.workers, config.vif_type, config.seed) == (
        "article",
        2,
        "tap",
        3,
    )
    assert config.agent_delay is None
    assert config.events_interval == pytest.approx(0.01)
    assert [r.error_503 for r in config.fault_rules()] == [0.2, 0.0]
    assert "http://127.0.0.1:9797" in result.output
    assert "read ~11.0 ms, write ~22.0 ms" in result.output  # article x0.01
    assert "curl -s http://127.0.0.1:9797/v2.0/networks" in result.output


def test_parse_listen_and_banner() -> None:
    assert parse_listen("127.0.0.1:9696") == ("127.0.0.1", 9696)
    assert parse_listen("[::1]:9696") == ("::1", 9696)
    lines = "\n".join(banner_lines(SimConfig(profile="lan"), "127.0.0.1", 9696))
    assert "read ~34.6 ms, write ~300.6 ms" in lines
    assert "-X POST http://127.0.0.1:9696/v2.0/networks" in lines
