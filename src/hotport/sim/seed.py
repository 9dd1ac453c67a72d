"""Setting up a network service's resources for a rehearsal: networks, subnets, ports.

Owns: `Seeder`, plain Neutron v2.0 requests (over any httpx client: the simulator
in-process, the simulator over a socket, or a real neutron-server) that the tests, the
scripts and the demo use to prepare what hotport then attaches. Every call is one
request; a refusal raises `SeedError` with the service's answer.

Must never: be used by hotport's own operations (those go through `hotport.network`).

Concurrency: stateless; safe to call concurrently.
"""

from __future__ import annotations

from typing import Any

import httpx


class SeedError(RuntimeError):
    """The network service refused a set-up request."""


class Seeder:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _call(self, method: str, path: str, status: int, body: Any = None) -> Any:
        r = await self.http.request(method, path, json=body)
        if r.status_code != status:
            raise SeedError(f"{method} {path}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None

    async def network(self, cidr: str = "192.0.2.0/24", mtu: int = 1450, name: str = "n") -> str:
        """A network with one IPv4 subnet; returns the network id."""
        net = await self._call(
            "POST", "/v2.0/networks", 201, {"network": {"name": name, "mtu": mtu}}
        )
        net_id = str(net["network"]["id"])
        subnet = {"network_id": net_id, "cidr": cidr, "ip_version": 4}
        await self._call("POST", "/v2.0/subnets", 201, {"subnet": subnet})
        return net_id

    async def port(self, network_id: str, **extra: Any) -> str:
        body = await self._call(
            "POST", "/v2.0/ports", 201, {"port": {"network_id": network_id, **extra}}
        )
        return str(body["port"]["id"])

    async def show(self, port_id: str) -> dict[str, Any]:
        return dict((await self._call("GET", f"/v2.0/ports/{port_id}", 200))["port"])

    async def update(self, port_id: str, **attrs: Any) -> dict[str, Any]:
        body = await self._call("PUT", f"/v2.0/ports/{port_id}", 200, {"port": attrs})
        return dict(body["port"])

    async def delete(self, port_id: str) -> None:
        await self._call("DELETE", f"/v2.0/ports/{port_id}", 204)
