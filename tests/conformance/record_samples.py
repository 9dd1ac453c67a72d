"""Record a real neutron-server's responses into samples/neutron-29.json.

Usage (with scripts/neutron/neutron-server.sh running):

    .venv/bin/python tests/conformance/record_samples.py [http://127.0.0.1:9696]

The conformance suite compares the simulator's response key sets, error types
and messages with these recordings, so that the simulator is held to the real
server even where no live server runs. Re-record when moving to a new Neutron
release. It creates its own networks and leaves them (run it on a scratch
server).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

OUT = Path(__file__).parent / "samples" / "neutron-29.json"
PROJECT = "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d"
KEPT_HEADERS = ("content-type", "etag", "x-openstack-request-id", "location")


class Recorder:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.samples: list[dict[str, Any]] = []

    def __call__(
        self,
        label: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        r = self.http.request(method, path, json=body, headers=headers or {})
        try:
            payload: Any = r.json()
        except ValueError:
            payload = r.text
        self.samples.append(
            {
                "label": label,
                "request": {"method": method, "path": path, "body": body, "headers": headers},
                "status": r.status_code,
                "response_headers": {
                    k: v for k, v in r.headers.items() if k.lower() in KEPT_HEADERS
                },
                "body": payload,
            }
        )
        return payload


def record(rec: Recorder) -> None:
    http = rec.http
    net = http.post("/v2.0/networks", json={"network": {"name": "rec", "project_id": PROJECT}})
    net_id = net.json()["network"]["id"]
    http.post(
        "/v2.0/subnets",
        json={
            "subnet": {
                "network_id": net_id,
                "cidr": "192.0.2.0/24",
                "ip_version": 4,
                "project_id": PROJECT,
            }
        },
    )
    rec("show network", "GET", f"/v2.0/networks/{net_id}")
    p = rec(
        "create port (unbound)",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": net_id, "project_id": PROJECT, "name": "p1"}},
    )["port"]
    pid, mac, rev = p["id"], p["mac_address"], p["revision_number"]
    ip = p["fixed_ips"][0]["ip_address"]
    inst = str(uuid.uuid4())
    bind = {
        "port": {"device_id": inst, "device_owner": "compute:nova", "binding:host_id": "compute-1"}
    }
    rec("show port", "GET", f"/v2.0/ports/{pid}")
    stale = {"If-Match": f"revision_number={rev + 5}"}
    rec("bind port If-Match stale", "PUT", f"/v2.0/ports/{pid}", bind, stale)
    ok = {"If-Match": f"revision_number={rev}"}
    rec("bind port If-Match ok", "PUT", f"/v2.0/ports/{pid}", bind, ok)
    rec(
        "If-Match bad format",
        "PUT",
        f"/v2.0/ports/{pid}",
        {"port": {"name": "x"}},
        {"If-Match": "garbage"},
    )
    port_on = {"network_id": net_id, "project_id": PROJECT}
    rec("create port mac in use", "POST", "/v2.0/ports", {"port": {**port_on, "mac_address": mac}})
    rec(
        "create port ip in use",
        "POST",
        "/v2.0/ports",
        {"port": {**port_on, "fixed_ips": [{"ip_address": ip}]}},
    )
    rec(
        "create port bad network",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": str(uuid.uuid4()), "project_id": PROJECT}},
    )
    rec("create port no body key", "POST", "/v2.0/ports", {"prt": {}})
    rec("create port unknown attr", "POST", "/v2.0/ports", {"port": {**port_on, "bogus": 1}})
    rec("create port bad mac", "POST", "/v2.0/ports", {"port": {**port_on, "mac_address": "zz"}})
    rec("show port 404", "GET", f"/v2.0/ports/{uuid.uuid4()}")
    rec("show network 404", "GET", f"/v2.0/networks/{uuid.uuid4()}")
    rec("update port 404", "PUT", f"/v2.0/ports/{uuid.uuid4()}", {"port": {"name": "x"}})
    rec("delete port 404", "DELETE", f"/v2.0/ports/{uuid.uuid4()}")
    bound = {**port_on, **bind["port"]}
    p2 = rec("create bound port", "POST", "/v2.0/ports", {"port": bound})["port"]
    for _ in range(3):
        http.post("/v2.0/ports", json={"port": bound})
    rec("list ports by device_id", "GET", f"/v2.0/ports?device_id={inst}")
    rec(
        "list ports by host + fields",
        "GET",
        "/v2.0/ports?binding:host_id=compute-1&fields=id&fields=status&fields=revision_number",
    )
    rec("list ports repeated id", "GET", f"/v2.0/ports?id={pid}&id={p2['id']}&fields=id")
    rec("list ports limit", "GET", f"/v2.0/ports?device_id={inst}&limit=2&fields=id")
    last = rec("list ports limit 2", "GET", f"/v2.0/ports?device_id={inst}&limit=2")["ports"][-1]
    rec(
        "list ports marker",
        "GET",
        f"/v2.0/ports?device_id={inst}&limit=2&marker={last['id']}&fields=id",
    )
    rec("list ports unknown filter", "GET", "/v2.0/ports?bogus=1&fields=id")
    rec("list ports bad limit", "GET", "/v2.0/ports?limit=abc")
    rec("list ports marker 404", "GET", f"/v2.0/ports?limit=2&marker={uuid.uuid4()}")
    rec("list networks many ids", "GET", f"/v2.0/networks?id={net_id}&id={uuid.uuid4()}")
    rec("list subnets by network", "GET", f"/v2.0/subnets?network_id={net_id}")
    unbind = {"port": {"device_id": "", "device_owner": "", "binding:host_id": None}}
    rec("unbind port", "PUT", f"/v2.0/ports/{pid}", unbind)
    rec("show port after unbind", "GET", f"/v2.0/ports/{pid}")
    rec("list floatingips by port", "GET", f"/v2.0/floatingips?port_id={pid}&port_id={p2['id']}")
    rec("delete port", "DELETE", f"/v2.0/ports/{p2['id']}")
    rec("delete port again", "DELETE", f"/v2.0/ports/{p2['id']}")
    rec("bad json", "POST", "/v2.0/ports", None)
    record_floating_ip(rec, net_id)


def record_floating_ip(rec: Recorder, net_id: str) -> None:
    http = rec.http
    sub_id = http.get(f"/v2.0/subnets?network_id={net_id}").json()["subnets"][0]["id"]
    ext = http.post(
        "/v2.0/networks",
        json={"network": {"name": "pub", "project_id": PROJECT, "router:external": True}},
    ).json()["network"]["id"]
    http.post(
        "/v2.0/subnets",
        json={
            "subnet": {
                "network_id": ext,
                "cidr": "203.0.113.0/24",
                "ip_version": 4,
                "project_id": PROJECT,
                "enable_dhcp": False,
            }
        },
    )
    router = http.post(
        "/v2.0/routers",
        json={
            "router": {
                "name": "r",
                "project_id": PROJECT,
                "external_gateway_info": {"network_id": ext},
            }
        },
    ).json()["router"]
    http.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub_id})
    port = http.post(
        "/v2.0/ports",
        json={
            "port": {
                "network_id": net_id,
                "project_id": PROJECT,
                "device_id": str(uuid.uuid4()),
                "device_owner": "compute:nova",
                "binding:host_id": "compute-1",
            }
        },
    ).json()["port"]
    rec(
        "create floatingip (port_id of a compute port)",
        "POST",
        "/v2.0/floatingips",
        {"floatingip": {"floating_network_id": ext, "port_id": port["id"], "project_id": PROJECT}},
    )


def main() -> None:
    rec = Recorder(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9696")
    record(rec)
    doc = {
        "_about": (
            "Responses recorded from a real neutron-server 29.0.0 (ML2, noauth, anchor_loopback "
            "mechanism driver, see scripts/neutron/) by tests/conformance/record_samples.py. "
            "The simulator's response key sets are checked against these offline; the "
            "conformance suite re-checks them against a live server in CI."
        ),
        "samples": rec.samples,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(rec.samples)} samples written to {OUT}")


if __name__ == "__main__":
    main()
