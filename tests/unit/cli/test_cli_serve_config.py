"""`hotport serve` before anything starts: flags, precedence (flags > env > file), bad
values (exit 2, a message naming the flag, nothing started), the banner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hotport import cli
from hotport.service import server
from hotport.service.config import ConfigError, ServiceConfig, load_config

runner = CliRunner()

FLAGS = [
    "--config",
    "--listen",
    "--neutron-url",
    "--driver",
    "--libvirt-uri",
    "--db",
    "--host",
    "--auth",
    "--heal-interval",
    "--policy",
    "--log-level",
    "--tokens-file",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("HOTPORT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ServiceConfig]:
    """Replaces the server: records the configuration it would have run with."""
    calls: list[ServiceConfig] = []

    def fake_serve(config: ServiceConfig, **_: Any) -> int:
        calls.append(config)
        return 0

    monkeypatch.setattr(server, "serve", fake_serve)
    return calls


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli.app, ["serve", *args], env={"COLUMNS": "200", **(env or {})})


def test_help_lists_every_flag() -> None:
    result = runner.invoke(cli.app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in FLAGS:
        assert flag in result.output, flag


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--driver", "xen"], ["--driver", "xen"]),
        (["--auth", "password"], ["--auth"]),
        (["--policy", "fastest"], ["--policy"]),
        (["--log-level", "loud"], ["--log-level"]),
        (["--heal-interval", "-1"], ["--heal-interval"]),
        (["--heal-interval", "soon"], ["--heal-interval"]),
        (["--listen", "nope"], ["--listen", "HOST:PORT"]),
        (["--listen", "127.0.0.1:70000"], ["--listen", "out of range"]),
        (["--listen", "0.0.0.0:8774"], ["loopback only", "--auth static|keystone"]),
        (["--heal-interval", "7200"], ["tombstone_age", "heal_interval"]),
        (["--auth", "static"], ["--auth: auth mode 'static' needs auth.tokens_file"]),
        (["--host", ""], ["--host"]),
        (["--config", "/nonexistent/hotport.toml"], ["--config", "cannot read"]),
    ],
)
def test_bad_values_exit_2_naming_the_flag_and_start_nothing(
    args: list[str], needles: list[str], started: list[ServiceConfig]
) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    assert started == []


def test_a_config_file_that_is_not_toml(tmp_path: Path, started: list[ServiceConfig]) -> None:
    bad = tmp_path / "hotport.toml"
    bad.write_text("listen = [unclosed\n")
    result = invoke("--config", str(bad))
    assert result.exit_code == 2
    assert "--config" in result.output
    assert "not valid TOML" in result.output
    assert started == []


def test_a_bad_value_from_the_environment_names_the_variable(
    started: list[ServiceConfig],
) -> None:
    result = invoke(env={"HOTPORT_DRIVER": "xen"})
    assert result.exit_code == 2
    assert "HOTPORT_DRIVER" in result.output
    assert started == []


def test_an_unknown_setting_in_the_file_is_refused(
    tmp_path: Path, started: list[ServiceConfig]
) -> None:
    f = tmp_path / "hotport.toml"
    f.write_text('colour = "red"\n')
    result = invoke("--config", str(f))
    assert result.exit_code == 2
    assert "colour" in result.output
    assert started == []


def test_flags_beat_env_beat_file(tmp_path: Path, started: list[ServiceConfig]) -> None:
    f = tmp_path / "hotport.toml"
    f.write_text(
        'host = "from-file"\n'
        "heal_interval = 11\n"
        'policy = "article"\n'
        'listen = "127.0.0.1:9001"\n'
        'neutron_url = "http://file:9696"\n'
        "[auth]\n"
        "allow_remote_unauthenticated = true\n"
    )
    env = {"HOTPORT_HOST": "from-env", "HOTPORT_HEAL_INTERVAL": "22"}

    assert invoke("--config", str(f)).exit_code == 0
    assert invoke("--config", str(f), env=env).exit_code == 0
    result = invoke("--config", str(f), "--host", "from-flag", env=env)
    assert result.exit_code == 0, result.output

    file_only, with_env, with_flag = started
    assert (file_only.host, file_only.heal_interval) == ("from-file", 11)
    assert (with_env.host, with_env.heal_interval) == ("from-env", 22)
    assert (with_flag.host, with_flag.heal_interval) == ("from-flag", 22)
    for c in started:  # what no source above overrode still comes from the file
        assert c.policy == "article"
        assert c.listen == "127.0.0.1:9001"
        assert c.network_config.endpoint == "http://file:9696"
        # a flag reaching into a section keeps the file's other keys of that section
        assert c.auth.allow_remote_unauthenticated is True


def test_every_flag_reaches_the_configuration(tmp_path: Path, started: list[ServiceConfig]) -> None:
    tokens = tmp_path / "tokens.toml"
    result = invoke(
        "--listen",
        "127.0.0.1:8999",
        "--neutron-url",
        "http://neutron.example:9696",
        "--driver",
        "memory",
        "--libvirt-uri",
        "qemu+ssh://h/system",
        "--db",
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "--host",
        "compute-7",
        "--heal-interval",
        "0",
        "--policy",
        "article",
        "--log-level",
        "debug",
        "--tokens-file",
        str(tokens),
    )
    assert result.exit_code == 0, result.output
    (c,) = started
    assert c.listen == "127.0.0.1:8999"
    assert c.network_config.endpoint == "http://neutron.example:9696"
    assert c.driver == "memory"
    assert c.libvirt_uri == "qemu+ssh://h/system"
    assert c.db.endswith("x.db")
    assert c.host == "compute-7"
    assert c.heal_interval == 0
    assert c.policy == "article"
    assert c.log_level == "debug"
    assert c.auth.tokens_file == tokens
    assert c.auth.mode == "none"


def test_load_config_precedence_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "hotport.toml"
    f.write_text('driver = "memory"\nhost = "file"\n[auth]\nmode = "none"\n')
    monkeypatch.setenv("HOTPORT_HOST", "env")
    assert load_config(f).host == "env"
    assert load_config(f, host="flag").host == "flag"
    assert load_config(f, host=None).host == "env"  # None = flag not given


def test_auth_modes_without_an_authenticator_factory_are_refused(
    tmp_path: Path, started: list[ServiceConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "AUTH_FACTORY", "hotport.api.no_such_factory")
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("")
    result = invoke("--auth", "static", "--tokens-file", str(tokens))
    assert result.exit_code == 2
    assert "--auth static" in result.output
    assert "cannot authenticate" in result.output
    assert started == []


def test_libvirt_without_libvirt_python_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, started: list[ServiceConfig]
) -> None:
    monkeypatch.setattr(server.importlib.util, "find_spec", lambda name: None)
    result = invoke("--driver", "libvirt")
    assert result.exit_code == 2
    assert "--driver libvirt" in result.output
    assert "libvirt-python" in result.output
    assert started == []


def test_check_refuses_a_policy_this_build_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(server.POLICIES, "legacy")
    with pytest.raises(ConfigError, match="--policy legacy: this build has the policies"):
        server.check(ServiceConfig(policy="legacy"))
    server.check(ServiceConfig(policy="article"))


def test_banner_names_what_runs_and_hides_the_db_password() -> None:
    config = ServiceConfig(
        listen="127.0.0.1:8774",
        host="compute-9",
        policy="article",
        heal_interval=30,
        db="postgresql+asyncpg://hotport:s3cret@db.example/hotport",
        neutron_url="http://neutron.example:9696",
    )
    text = "\n".join(server.banner_lines(config, "http://127.0.0.1:8774", None))
    for needle in (
        "http://127.0.0.1:8774",
        "http://127.0.0.1:8774/docs",
        "compute-9",
        "memory",
        "article",
        "db.example",
        "none",
        "every 30 s",
        "http://neutron.example:9696",
        "no authentication",
    ):
        assert needle in text, needle
    assert "s3cret" not in text


def test_banner_of_an_authenticated_service_has_no_warning() -> None:
    config = ServiceConfig(
        auth={"mode": "static", "tokens_file": "/etc/hotport/tokens.toml"},
        heal_interval=0,
    )
    lines = server.banner_lines(config, "http://127.0.0.1:8774", {"finished": [1], "undone": []})
    text = "\n".join(lines)
    assert "static" in text
    assert "no authentication" not in text
    assert "off" in text  # heal
    assert "1 finished" in text
