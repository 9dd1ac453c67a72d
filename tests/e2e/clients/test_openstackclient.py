"""python-openstackclient, unchanged and out of process (the `openstack` command of this
venv), against hotport's Nova facade (compute) and the simulator (network), configured
by a clouds.yaml with keystoneauth's `none` plugin and per-service endpoint overrides.

`server add port` and `server remove port` look the server up by name (hotport's
`GET /v2.1/servers/{name}` is a 404, then `GET /v2.1/servers/detail?name=...`) and the
port by name (the simulator), then call os-interface; `port list --server` reads the
ports bound to the server from the simulator; `server show` reads hotport's server, whose
`addresses` come from the network-info cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..live import LiveService
from .conftest import Neutron, eventually, new_instance, unique

pytestmark = pytest.mark.e2e

OPENSTACK = Path(sys.executable).with_name("openstack")


def _command() -> list[str]:
    if OPENSTACK.exists():
        return [str(OPENSTACK)]
    found = shutil.which("openstack")
    return [found] if found else [sys.executable, "-m", "openstackclient.shell"]


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def osc(live: LiveService, tmp_path_factory: pytest.TempPathFactory) -> Run:
    home = tmp_path_factory.mktemp("osc")
    clouds = home / "clouds.yaml"
    clouds.write_text(
        "clouds:\n"
        "  hotport:\n"
        "    auth_type: none\n"
        "    auth:\n"
        f"      endpoint: {live.url}\n"
        f"    compute_endpoint_override: {live.url}/v2.1\n"
        f"    network_endpoint_override: {live.sim_url}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="hotport", HOME=str(home))

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [*_command(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if ok:
            assert r.returncode == 0, f"openstack {' '.join(args)}: {r.stderr}"
        return r

    return run


def as_json(r: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(r.stdout)


def test_add_list_show_remove_port_by_names(live: LiveService, osc: Run, neutron: Neutron) -> None:
    server = unique("osc-vm")
    instance = new_instance(live, server)
    port_name = unique("osc-port")
    net = neutron.network("203.0.113.0/24", name=unique("osc-net"))
    port_id = neutron.port(net, name=port_name)

    osc(
        "--os-compute-api-version",
        "2.49",
        "server",
        "add",
        "port",
        "--tag",
        "web",
        server,
        port_name,
    )
    port = neutron.show(port_id)
    assert port["device_id"] == instance
    assert port["binding:host_id"] == "compute-1"
    r = httpx.get(
        f"{live.url}/v2.1/servers/{instance}/os-interface/{port_id}",
        headers={"OpenStack-API-Version": "compute 2.70"},
        timeout=30,
    )
    assert r.json()["interfaceAttachment"]["tag"] == "web"

    listed = as_json(osc("port", "list", "--server", server, "-f", "json"))
    assert [(p["ID"], p["Name"], p["MAC Address"]) for p in listed] == [
        (port_id, port_name, port["mac_address"])
    ]

    def shown() -> dict[str, Any]:
        # the address comes from hotport's cache (the facade's GET /v2.1/servers/{id})
        s: dict[str, Any] = as_json(osc("server", "show", server, "-f", "json"))
        assert s["addresses"], s
        return s

    shown_server = eventually(shown)
    assert shown_server["id"] == instance
    assert shown_server["status"] == "ACTIVE"
    assert shown_server["OS-EXT-SRV-ATTR:host"] == "compute-1"
    [label] = shown_server["addresses"]
    assert shown_server["addresses"][label] == [port["fixed_ips"][0]["ip_address"]]

    osc("server", "remove", "port", server, port_name)
    assert neutron.show(port_id)["device_id"] == ""
    assert as_json(osc("port", "list", "--server", server, "-f", "json")) == []


def test_refusals_reach_the_user_and_change_nothing(
    live: LiveService, osc: Run, neutron: Neutron
) -> None:
    server = unique("osc-err")
    instance = new_instance(live, server)
    net = neutron.network()
    theirs = neutron.port(net, device_id=unique("other"), device_owner="compute:nova")

    r = osc("server", "add", "port", server, theirs, ok=False)
    assert r.returncode != 0
    assert "409" in r.stderr or theirs in r.stderr, r.stderr
    assert neutron.show(theirs)["device_id"] != instance

    free = neutron.port(net)
    # a server hotport does not know
    r = osc("server", "add", "port", unique("nobody"), free, ok=False)
    assert r.returncode != 0
    assert "No Server found" in r.stderr or "404" in r.stderr, r.stderr
    assert neutron.show(free)["device_id"] == ""
