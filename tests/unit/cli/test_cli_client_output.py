"""The client commands against a recorded API (httpx.MockTransport): the tables, `--json`
(exactly the API's answer), the token header, errors (the API's message, exit 1), a
service that is not there (exit 1, says so), usage errors (exit 2)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from hotport import apiclient, cli

runner = CliRunner()

VM = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"
PORT = "0a1b2c3d-4e5f-4061-8728-394a5b6c7d8e"
NET = "11111111-2222-4333-8444-555555555555"
VIF = {
    "id": PORT,
    "address": "fa:16:3e:00:00:01",
    "network": {
        "id": NET,
        "label": "demo",
        "subnets": [{"cidr": "192.0.2.0/24", "ips": [{"address": "192.0.2.10"}]}],
    },
    "type": "ovs",
    "devname": "tap0a1b2c3d-4e",
    "active": True,
    "meta": {"tag": "eth1"},
}
TRACE = {
    "kind": "attach",
    "instance": VM,
    "port_id": PORT,
    "outcome": "ok",
    "error": None,
    "seconds": 0.25,
    "phases": [
        {"name": "lock-port", "start": 0.0, "seconds": 0.0},
        {"name": "read", "start": 0.001, "seconds": 0.05},
        {"name": "bind", "start": 0.051, "seconds": 0.1},
    ],
    "network_requests": {"show_port": 1, "list_floating_ips": 1, "bind_port": 1},
    "network_request_total": 3,
    "network_round_trips": 2,
    "lock_wait_seconds": {"port": 0.0},
}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("HOTPORT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Route the CLI's client to `ROUTES`; returns the requests it sent."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        key = f"{request.method} {request.url.path}"
        if key not in ROUTES:
            return httpx.Response(
                404,
                json={
                    "error": {
                        "type": "InstanceNotFound",
                        "message": f"instance {request.url.path.split('/')[3]} is not known "
                        "on this host",
                        "category": "permanent",
                        "request_id": "req-00000000-0000-0000-0000-000000000001",
                    }
                },
            )
        status, body = ROUTES[key]
        return httpx.Response(status, json=body)

    real = apiclient.HotportClient

    class Routed(real):  # type: ignore[misc,valid-type]
        def __init__(self, url: str = apiclient.DEFAULT_URL, **kw: Any) -> None:
            kw["http"] = httpx.AsyncClient(transport=httpx.MockTransport(handle))
            super().__init__(url, **kw)
            self.url = url.rstrip("/")
            self._own = True

    monkeypatch.setattr(apiclient, "HotportClient", Routed)
    return seen


ROUTES: dict[str, tuple[int, Any]] = {
    "GET /v1/instances": (
        200,
        {"instances": [{"uuid": VM, "name": "web-1", "host": "compute-1", "created_at": 1.0}]},
    ),
    f"GET /v1/instances/{VM}": (
        200,
        {
            "uuid": VM,
            "name": "web-1",
            "host": "compute-1",
            "created_at": 1.0,
            "interfaces": [VIF],
            "nics": [
                {"mac": "fa:16:3e:00:00:01", "dev": "tap0", "port_id": PORT, "alias": None},
                {"mac": "fa:16:3e:00:00:99", "dev": "tap9", "port_id": None, "alias": None},
            ],
        },
    ),
    f"GET /v1/instances/{VM}/interfaces": (200, {"interfaces": [VIF]}),
    f"POST /v1/instances/{VM}/interfaces": (
        201,
        {"interface": VIF, "created_port": False, "trace": TRACE},
    ),
    f"DELETE /v1/instances/{VM}/interfaces/{PORT}": (
        200,
        {
            "port_id": PORT,
            "deleted_port": False,
            "trace": {
                **TRACE,
                "kind": "detach",
                "network_requests": {"unbind_port": 1},
                "network_request_total": 1,
                "network_round_trips": 1,
            },
        },
    ),
    "POST /v1/heal": (
        200,
        {
            "instances": 1,
            "ports_seen": 3,
            "added": [PORT],
            "updated": [],
            "removed": [],
            "conflicts": [],
            "skipped_busy": [],
            "skipped_instances": [],
            "orphan_nics": [{"instance": VM, "mac": "fa:16:3e:00:00:99"}],
            "missing_nics": [],
            "repaired": [],
            "repair_failed": [],
            "foreign_ports": [],
            "unknown_domains": [],
            "purged_tombstones": 2,
            "network_requests": 4,
            "seconds": 0.01,
            "drift": 2,
        },
    ),
    "POST /v1/instances": (
        201,
        {"uuid": VM, "name": "web-2", "host": "compute-1", "created_at": 2.0},
    ),
    "GET /v1/operations": (
        200,
        {
            "operations": [
                {
                    "id": 7,
                    "instance": VM,
                    "port_id": PORT,
                    "kind": "attach",
                    "state": "failed",
                    "error": "port in use",
                    "details": None,
                    "created_at": 1.0,
                    "updated_at": 2.0,
                }
            ]
        },
    ),
}


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", **(env or {})})


@pytest.mark.parametrize(
    ("args", "route"),
    [
        (["instances"], "GET /v1/instances"),
        (["instance", VM], f"GET /v1/instances/{VM}"),
        (["interfaces", VM], f"GET /v1/instances/{VM}/interfaces"),
        (["attach", VM, "--port", PORT], f"POST /v1/instances/{VM}/interfaces"),
        (["detach", VM, PORT], f"DELETE /v1/instances/{VM}/interfaces/{PORT}"),
        (["heal"], "POST /v1/heal"),
        (["operations"], "GET /v1/operations"),
    ],
)
def test_json_is_exactly_the_api_answer(
    args: list[str], route: str, api: list[httpx.Request]
) -> None:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == ROUTES[route][1]


def test_the_cli_default_url_is_the_client_default() -> None:
    assert cli.DEFAULT_URL == apiclient.DEFAULT_URL


def test_instances_table(api: list[httpx.Request]) -> None:
    result = run("instances")
    assert result.exit_code == 0, result.output
    assert VM in result.output
    assert "web-1" in result.output
    assert "compute-1" in result.output
    assert str(api[0].url) == "http://127.0.0.1:8774/v1/instances"


def test_url_and_token_from_flags_or_env(api: list[httpx.Request]) -> None:
    assert run("instances", "--url", "http://h1:1/", "--token", "t-flag").exit_code == 0
    env = {"HOTPORT_URL": "http://h2:2", "HOTPORT_TOKEN": "t-env"}
    assert run("instances", env=env).exit_code == 0
    assert run("instances", "--url", "http://h3:3", env=env).exit_code == 0
    assert [(r.url.host, r.headers.get("X-Auth-Token")) for r in api] == [
        ("h1", "t-flag"),
        ("h2", "t-env"),
        ("h3", "t-env"),
    ]
    assert run("instances").exit_code == 0
    assert "X-Auth-Token" not in api[-1].headers  # no token, no header


def test_instance_shows_cache_and_nics_and_an_orphan(api: list[httpx.Request]) -> None:
    result = run("instance", VM)
    assert result.exit_code == 0, result.output
    assert "192.0.2.10" in result.output
    assert "eth1" in result.output
    assert "fa:16:3e:00:00:99" in result.output
    assert "orphan NIC" in result.output


def test_attach_prints_interface_and_trace(api: list[httpx.Request]) -> None:
    result = run("attach", VM, "--port", PORT, "--tag", "eth1")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"attached port {PORT}" in out
    assert "192.0.2.10" in out
    assert "3 network request(s) in 2 round trip(s)" in out
    assert "bind_port" in out
    assert "lock-port" in out
    assert "lock waits: port 0.000 s" in out
    assert json.loads(api[0].content) == {"port_id": PORT, "tag": "eth1"}


def test_attach_by_network_sends_fixed_ips(api: list[httpx.Request]) -> None:
    result = run("attach", VM, "--network", NET, "--fixed-ip", "192.0.2.5")
    assert result.exit_code == 0, result.output
    assert json.loads(api[0].content) == {
        "network_id": NET,
        "fixed_ips": [{"ip_address": "192.0.2.5"}],
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["attach", VM], "exactly one of --port or --network"),
        (["attach", VM, "--port", PORT, "--network", NET], "exactly one"),
        (["attach", VM, "--port", PORT, "--fixed-ip", "192.0.2.5"], "--fixed-ip"),
        (["operations", "--limit", "0"], "--limit"),
    ],
)
def test_usage_errors_exit_2_without_a_request(
    args: list[str], needle: str, api: list[httpx.Request]
) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert needle in result.output
    assert api == []


def test_detach_prints_the_trace(api: list[httpx.Request]) -> None:
    result = run("detach", VM, PORT)
    assert result.exit_code == 0, result.output
    assert f"detached port {PORT}" in result.output
    assert "1 network request(s) in 1 round trip(s)" in result.output


def test_heal_says_what_it_found(api: list[httpx.Request]) -> None:
    result = run("heal")
    assert result.exit_code == 0, result.output
    assert "2 thing(s) out of line" in result.output
    assert "rows added" in result.output
    assert PORT in result.output
    assert "orphan NICs" in result.output


def test_instances_create_sends_name_and_a_new_uuid(api: list[httpx.Request]) -> None:
    assert run("instances", "create", "web-2").exit_code == 0
    assert run("instances", "create", "web-2", "--uuid", VM).exit_code == 0
    first, second = (json.loads(r.content) for r in api)
    assert first["name"] == "web-2"
    assert len(first["uuid"]) == 36
    assert second == {"uuid": VM, "name": "web-2"}


def test_api_error_prints_the_api_message_and_exits_1(api: list[httpx.Request]) -> None:
    other = "99999999-2222-4333-8444-555555555555"
    result = run("interfaces", other)
    assert result.exit_code == 1
    assert f"instance {other} is not known on this host" in result.output
    assert "HTTP 404 InstanceNotFound" in result.output
    assert "req-00000000-0000-0000-0000-000000000001" in result.output


def test_service_not_there_says_so_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed") from ConnectionRefusedError(
            111, "Connection refused"
        )

    real = apiclient.HotportClient

    class Refused(real):  # type: ignore[misc,valid-type]
        def __init__(self, url: str = apiclient.DEFAULT_URL, **kw: Any) -> None:
            kw["http"] = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
            super().__init__(url, **kw)
            self.url = url

    monkeypatch.setattr(apiclient, "HotportClient", Refused)
    result = run("instances", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "cannot connect to hotport at http://127.0.0.1:9" in result.output
    assert "connection refused" in result.output
    assert "hotport serve" in result.output


async def test_errors_that_are_not_hotport_json() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/instances":
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        return httpx.Response(200, text="<html>hello</html>")

    http = httpx.AsyncClient(transport=httpx.MockTransport(proxy), base_url="http://p")
    client = apiclient.HotportClient(http=http)
    with pytest.raises(apiclient.ApiError) as info:
        await client.instances()
    assert info.value.status == 502
    assert "Bad Gateway" in str(info.value)
    with pytest.raises(apiclient.Unreachable, match="not JSON"):
        await client.heal()
    await http.aclose()
