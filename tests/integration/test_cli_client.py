"""The client commands (`hotport instances|instance|interfaces|attach|detach|heal|
operations`) against a real `hotport serve` process and a `hotport sim-neutron` process
(no L2 agent: port revisions change only through hotport, so the request counts are
exact): tables, `--json`, request counts, errors from the API, a service that is not
there.

The commands run in this process (typer's CliRunner) and talk HTTP to the served one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_serve import Neutron, Served, free_port, hotport_serve, sim_neutron
from typer.testing import CliRunner

from hotport import cli

runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Neutron]]:
    tmp = tmp_path_factory.mktemp("cli-client")
    with sim_neutron(tmp) as sim, hotport_serve(tmp, sim.url) as hp:
        yield hp, Neutron(sim.url)


def run(served: tuple[Served, Neutron], *args: str) -> Any:
    hp, _ = served
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "200", "HOTPORT_URL": hp.url})


def ok(served: tuple[Served, Neutron], *args: str) -> Any:
    result = run(served, *args)
    assert result.exit_code == 0, result.output
    return result


def new_vm(served: tuple[Served, Neutron], name: str = "vm") -> str:
    vm = str(uuid.uuid4())
    out = json.loads(ok(served, "instances", "create", name, "--uuid", vm, "--json").output)
    assert out["uuid"] == vm
    return vm


def test_instances_table_and_json(served: tuple[Served, Neutron]) -> None:
    vm = new_vm(served, "web-42")
    table = ok(served, "instances").output
    assert vm in table
    assert "web-42" in table
    listed = json.loads(ok(served, "instances", "--json").output)["instances"]
    assert {"uuid": vm, "name": "web-42", "host": "compute-1"}.items() <= next(
        i for i in listed if i["uuid"] == vm
    ).items()


def test_attach_warm_attach_detach_request_counts(served: tuple[Served, Neutron]) -> None:
    _, neutron = served
    vm = new_vm(served)
    net = neutron.network("10.10.0.0/24")
    first, second = neutron.port(net), neutron.port(net)

    cold = json.loads(ok(served, "attach", vm, "--port", first, "--json").output)
    # a network not seen before: its details cost one request for the networks and one
    # for their subnets
    assert cold["trace"]["network_requests"] == {
        "show_port": 1,
        "list_floating_ips": 1,
        "bind_port": 1,
        "list_networks": 1,
        "list_subnets": 1,
    }
    warm = ok(served, "attach", vm, "--port", second, "--tag", "data").output
    assert f"attached port {second} to {vm}" in warm
    assert "3 network request(s) in 2 round trip(s)" in warm
    assert "bind_port x1, list_floating_ips x1, show_port x1" in warm
    assert "data" in warm  # the tag

    out = ok(served, "detach", vm, second).output
    assert f"detached port {second} from {vm}" in out
    assert "1 network request(s) in 1 round trip(s)" in out
    assert "unbind_port x1" in out

    interfaces = json.loads(ok(served, "interfaces", vm, "--json").output)["interfaces"]
    assert [i["id"] for i in interfaces] == [first]


def test_attach_by_network_with_a_fixed_ip_then_detach_deletes_the_port(
    served: tuple[Served, Neutron],
) -> None:
    _, neutron = served
    vm = new_vm(served)
    net = neutron.network("10.11.0.0/24")
    out = json.loads(
        ok(served, "attach", vm, "--network", net, "--fixed-ip", "10.11.0.77", "--json").output
    )
    assert out["created_port"] is True
    port = out["interface"]["id"]
    ips = [ip["address"] for s in out["interface"]["network"]["subnets"] for ip in s["ips"]]
    assert ips == ["10.11.0.77"]
    assert out["trace"]["network_requests"]["create_port"] == 1

    table = ok(served, "interfaces", vm).output
    assert port in table
    assert "10.11.0.77" in table

    out = ok(served, "detach", vm, port).output
    assert "and deleted it" in out
    r = neutron.http.get(f"/v2.0/ports/{port}")
    assert r.status_code == 404


def test_instance_shows_the_cache_and_the_real_nics(served: tuple[Served, Neutron]) -> None:
    _, neutron = served
    vm = new_vm(served)
    port = neutron.port(neutron.network("10.12.0.0/24"))
    ok(served, "attach", vm, "--port", port)
    out = ok(served, "instance", vm).output
    assert "cached interfaces" in out
    assert "NICs the domain really has" in out
    assert out.count(port) == 2  # a row in each table
    assert "the cache and the domain agree" in out
    detail = json.loads(ok(served, "instance", vm, "--json").output)
    assert [n["port_id"] for n in detail["nics"]] == [port]


def test_heal_reports_a_port_unbound_behind_its_back(served: tuple[Served, Neutron]) -> None:
    _, neutron = served
    vm = new_vm(served)
    port = neutron.port(neutron.network("10.13.0.0/24"))
    ok(served, "attach", vm, "--port", port)
    neutron.call("PUT", f"/v2.0/ports/{port}", {"port": {"device_id": "", "binding:host_id": ""}})
    out = ok(served, "heal").output
    assert "out of line" in out
    assert "rows removed" in out
    assert port in out
    again = json.loads(ok(served, "heal", "--json").output)
    assert port not in again["removed"]
    assert again["network_requests"] == 4
    assert json.loads(ok(served, "interfaces", vm, "--json").output)["interfaces"] == []


def test_operations_lists_the_journal(served: tuple[Served, Neutron]) -> None:
    _, neutron = served
    vm = new_vm(served)
    port = neutron.port(neutron.network("10.14.0.0/24"))
    ok(served, "attach", vm, "--port", port)
    ok(served, "detach", vm, port)
    ops = json.loads(ok(served, "operations", "--instance", vm, "--json").output)["operations"]
    assert [(o["kind"], o["state"], o["port_id"]) for o in ops] == [
        ("detach", "done", port),
        ("attach", "done", port),
    ]
    table = ok(served, "operations", "--instance", vm).output
    assert "detach" in table
    assert "done" in table


def test_api_errors_print_the_api_message_and_exit_1(served: tuple[Served, Neutron]) -> None:
    _, neutron = served
    vm = new_vm(served)
    unknown = str(uuid.uuid4())
    result = run(served, "interfaces", unknown)
    assert result.exit_code == 1
    assert f"instance {unknown} is not known on this host" in result.output
    assert "HTTP 404" in result.output

    port = neutron.port(neutron.network("10.15.0.0/24"))
    result = run(served, "detach", vm, port)
    assert result.exit_code == 1
    assert f"port {port} is not attached to instance {vm}" in result.output

    result = run(served, "instances", "create", "again", "--uuid", vm)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert "HTTP 409" in result.output

    result = run(served, "attach", vm, "--port", "not-a-port")
    assert result.exit_code == 1
    assert "HTTP 400" in result.output


def test_no_service_at_the_url_says_so_and_exits_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(cli.app, ["instances", "--url", url], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert f"cannot connect to hotport at {url} (connection refused)" in result.output
    assert "is `hotport serve` running there?" in result.output
