"""Bulk set-up for scale runs: H instances x P ports bound to one host, in seconds.

Owns: `seed_state`, which writes the simulator's resources for a host straight into a
`SimState` (networks and subnets through the state's own calls; the bound ports, and
optionally floating IPs, as the dicts `create_port` + a bind + the agent's ACTIVE would
have left, without their per-port O(n) address and MAC scans), `cached_vifs`, the
VIF rows hotport would hold for them (built with `hotport.model.build_vif`, exactly as
the heal builds them), and `seed_host`, which does both and gives the in-memory
hypervisor the matching domains and NICs. `BulkLayout` says what was made. The
benchmark of the heal and `scripts/heal-scale.py` use them; 100,000 API attaches would
take hours.

Must never: be used by hotport's own operations, or send events (nothing is announced:
the engine is expected to find the state through its store and a heal).

Concurrency: plain functions over the state it is given; not thread-safe (neither is
`SimState`). Call it before the simulator serves requests, or between two requests on
the simulator's event loop.

What a seeded port looks like: on network `j % networks` for the j-th port of an
instance, one IPv4 address (allocated in order from the subnet's pool), a MAC in
`fa:16:3e:..` (unique), `device_owner` `compute:nova`, `binding:host_id` the host,
`binding:vif_type` the state's, `status` ACTIVE and `revision_number` 5 (created 1, bound
+3, ACTIVE +1, as the simulator numbers them). Floating IPs (the first `floating_ips`
ports, one each) sit on an external network behind a router with an interface on every
subnet, as `create_floatingip` would make them.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hotport.model.build import build_vif

from .state import DEVICE_OWNER_FLOATINGIP, SimState

if TYPE_CHECKING:
    from hotport.store.sql import SqlStore
    from hotport.virt.memory import MemoryDriver

__all__ = ["PORT_REVISION", "BulkLayout", "cached_vifs", "seed_host", "seed_state"]

PORT_REVISION = 5
"""The revision of a seeded port: created (1), bound (+3), set ACTIVE by the agent (+1)."""

_MAC_SPACE = 1 << 24  # fa:16:3e:xx:xx:xx


@dataclass
class BulkLayout:
    """What `seed_state` made (ids in creation order)."""

    host: str
    instances: list[str] = field(default_factory=list)
    ports: dict[str, list[str]] = field(default_factory=dict)  # instance -> its port ids
    networks: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    floating_ips: list[str] = field(default_factory=list)

    @property
    def port_count(self) -> int:
        return sum(len(p) for p in self.ports.values())


def _ids(prefix: int, count: int) -> Iterator[str]:
    """Deterministic, UUID-shaped, unique ids (`prefix` keeps the kinds apart)."""
    base = prefix << 96
    for i in range(count):
        yield str(uuid.UUID(int=base | i, version=4))


def seed_state(
    state: SimState,
    *,
    host: str,
    instances: int,
    ports_per_instance: int,
    networks: int = 10,
    floating_ips: int = 0,
    project_id: str | None = None,
    id_prefix: int = 0x5EED,
) -> BulkLayout:
    """Add `instances` x `ports_per_instance` ports bound to `host` (and their networks,
    subnets and optionally floating IPs) to `state`; returns what was made.

    The ports' `device_id`s are new instance UUIDs: create the instances in hotport (and
    their domains in the hypervisor) from `BulkLayout.instances`. `id_prefix` keeps the
    ids of two calls on one state apart (give each call its own). ValueError if the state
    already holds a MAC or an address this would reuse is not checked: seed a fresh state.
    """
    if instances < 0 or ports_per_instance < 0 or floating_ips < 0:
        raise ValueError("counts must not be negative")
    if networks < 1:
        raise ValueError("at least one network")
    total = instances * ports_per_instance
    if floating_ips > total:
        raise ValueError(f"{floating_ips} floating IPs for {total} ports")
    if total > _MAC_SPACE // 2:
        raise ValueError(f"{total} ports: too many for the MAC space")
    project = project_id or state.default_project
    layout = BulkLayout(host=host)
    per_network = math.ceil(total / networks) if total else 0
    # a prefix with room for the ports, the gateway, network and broadcast addresses
    prefix = min(24, 32 - max(2, math.ceil(math.log2(per_network + 4))))
    if prefix < 8:
        raise ValueError(f"{per_network} ports per network: no IPv4 prefix is that big")
    block = 1 << (32 - prefix)
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    if networks * block > 1 << 24:
        raise ValueError(f"{networks} networks of /{prefix} do not fit in 10.0.0.0/8")
    pools: list[Iterator[str]] = []
    for k in range(networks):
        net, _ = state.create_network({"name": f"bulk-{k}", "mtu": 1450, "project_id": project})
        cidr = ipaddress.IPv4Network((base + k * block, prefix))
        sub, _ = state.create_subnet(
            {"network_id": net["id"], "cidr": str(cidr), "ip_version": 4, "project_id": project}
        )
        layout.networks.append(net["id"])
        layout.subnets.append(sub["id"])
        pools.append(_addresses(int(cidr.network_address) + 2, block - 3))  # .1: the gateway
    router_id: str | None = None
    ext_pool: Iterator[str] = iter(())
    ext_net = ext_sub = None
    if floating_ips:
        ext, _ = state.create_network(
            {"name": "bulk-ext", "router:external": True, "project_id": project}
        )
        ext_prefix = min(24, 32 - max(2, math.ceil(math.log2(floating_ips + 16))))
        ext_cidr = ipaddress.IPv4Network(("100.64.0.0", ext_prefix))
        low = int(ext_cidr.network_address)
        esub, _ = state.create_subnet(
            {
                "network_id": ext["id"],
                "cidr": str(ext_cidr),
                "ip_version": 4,
                "project_id": "",
                # the router's gateway port draws from here; the floating IPs come after
                "allocation_pools": [
                    {
                        "start": str(ipaddress.IPv4Address(low + 2)),
                        "end": str(ipaddress.IPv4Address(low + 9)),
                    }
                ],
            }
        )
        ext_net, ext_sub = ext["id"], esub["id"]
        router, _ = state.create_router(
            {
                "name": "bulk-router",
                "project_id": project,
                "external_gateway_info": {"network_id": ext_net},
            }
        )
        router_id = router["id"]
        for sid in layout.subnets:
            state.add_router_interface(router_id, {"subnet_id": sid})
        # after the router's gateway port
        ext_pool = _addresses(int(ext_cidr.network_address) + 10, ext_cidr.num_addresses - 11)
    sg = state.default_security_group(project)
    vif_type = state.vif_type
    stamp = state._now()
    used_macs = {p["mac_address"] for p in state.ports.values()}
    macs = (m for m in _macs(id_prefix) if m not in used_macs)
    port_ids = _ids(id_prefix << 8 | 1, total)
    with_fip: list[dict[str, Any]] = []
    for inst in _ids(id_prefix << 8 | 2, instances):
        layout.instances.append(inst)
        mine: list[str] = []
        for j in range(ports_per_instance):
            k = j % networks
            port_id = next(port_ids)
            port = _port(
                port_id,
                network_id=layout.networks[k],
                subnet_id=layout.subnets[k],
                ip=next(pools[k]),
                mac=next(macs),
                project=project,
                device_id=inst,
                owner="compute:nova",
                host=host,
                vif_type=vif_type,
                security_groups=[sg],
                status="ACTIVE",
                stamp=stamp,
                revision=PORT_REVISION,
            )
            state.ports[port_id] = port
            state._bind_seq[port_id] = 1
            mine.append(port_id)
            if len(with_fip) < floating_ips:
                with_fip.append(port)
        layout.ports[inst] = mine
    fip_ids = _ids(id_prefix << 8 | 3, len(with_fip))
    fip_port_ids = _ids(id_prefix << 8 | 4, len(with_fip))
    for fip_id, fip_port_id, port in zip(fip_ids, fip_port_ids, with_fip, strict=True):
        assert ext_net is not None
        assert ext_sub is not None
        address = next(ext_pool)
        state.ports[fip_port_id] = _port(
            fip_port_id,
            network_id=ext_net,
            subnet_id=ext_sub,
            ip=address,
            mac=next(macs),
            project="",
            device_id=fip_id,
            owner=DEVICE_OWNER_FLOATINGIP,
            host="",
            vif_type="unbound",
            security_groups=[],
            status="N/A",
            stamp=stamp,
            revision=1,
        )
        state._bind_seq[fip_port_id] = 0
        state.floatingips[fip_id] = {
            "id": fip_id,
            "tenant_id": project,
            "project_id": project,
            "floating_ip_address": address,
            "floating_network_id": ext_net,
            "router_id": router_id,
            "port_id": port["id"],
            "fixed_ip_address": port["fixed_ips"][0]["ip_address"],
            "status": "DOWN",
            "description": "",
            "port_details": None,
            "tags": [],
            "created_at": stamp,
            "updated_at": stamp,
            "revision_number": 0,
        }
        layout.floating_ips.append(fip_id)
    return layout


def _addresses(first: int, count: int) -> Iterator[str]:
    for i in range(count):
        yield str(ipaddress.IPv4Address(first + i))


def _macs(salt: int) -> Iterator[str]:
    """Every MAC of fa:16:3e:00:00:00/24, once each, in a salted order."""
    step = 0x9E3779  # odd: a permutation of the 2**24 space
    start = (salt * 7919) % _MAC_SPACE
    for i in range(_MAC_SPACE):
        n = (start + i * step) % _MAC_SPACE
        yield f"fa:16:3e:{n >> 16:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def _port(
    port_id: str,
    *,
    network_id: str,
    subnet_id: str,
    ip: str,
    mac: str,
    project: str,
    device_id: str,
    owner: str,
    host: str,
    vif_type: str,
    security_groups: list[str],
    status: str,
    stamp: str,
    revision: int,
) -> dict[str, Any]:
    """A stored port, keys in the order `SimState.create_port` leaves them."""
    return {
        "id": port_id,
        "name": "",
        "network_id": network_id,
        "project_id": project,
        "mac_address": mac,
        "admin_state_up": True,
        "status": status,
        "device_id": device_id,
        "device_owner": owner,
        "fixed_ips": [{"subnet_id": subnet_id, "ip_address": ip}],
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "security_groups": security_groups,
        "description": "",
        "binding:vnic_type": "normal",
        "binding:profile": {},
        "binding:host_id": host,
        "binding:vif_type": vif_type,
        "binding:vif_details": {},
        "port_security_enabled": bool(security_groups),
        "tags": [],
        "created_at": stamp,
        "updated_at": stamp,
        "revision_number": revision,
        "tenant_id": project,
    }


def cached_vifs(
    state: SimState, layout: BulkLayout
) -> Iterator[tuple[str, str, dict[str, Any], int]]:
    """(instance, port id, VIF JSON, revision) of every seeded port, in layout order: the
    rows hotport holds once it is in line with `state` (what `build_vif` makes of the
    port, its network, subnets and floating IPs as the simulator renders them; the
    user's port, untagged), ready for `SqlStore.bulk_load`."""
    networks = {nid: state.get("network", nid) for nid in layout.networks}
    subnets: dict[str, list[dict[str, Any]]] = {nid: [] for nid in layout.networks}
    for sub in state.subnets.values():
        if sub["network_id"] in subnets:
            subnets[sub["network_id"]].append(state.render("subnet", sub))
    fips: dict[str, list[dict[str, Any]]] = {}
    for fid in layout.floating_ips:
        fip = state.get("floatingip", fid)
        fips.setdefault(fip["port_id"], []).append(fip)
    for inst in layout.instances:
        for port_id in layout.ports[inst]:
            port = state.render("port", state.ports[port_id])
            nid = port["network_id"]
            vif = build_vif(
                port, networks[nid], subnets[nid], fips.get(port_id, []), preserve_on_delete=True
            )
            yield inst, port_id, vif.to_json(), PORT_REVISION


async def seed_host(
    state: SimState,
    store: SqlStore,
    virt: MemoryDriver,
    *,
    host: str,
    instances: int,
    ports_per_instance: int,
    networks: int = 10,
    floating_ips: int = 0,
) -> BulkLayout:
    """The whole host in line, in bulk: `seed_state` on the simulator's state, the rows
    hotport holds for it in `store` (`SqlStore.bulk_load`: the instances too), and in the
    in-memory hypervisor a domain per instance with a NIC per port. 10,000 x 10 takes
    about 20 s (building the 100,000 VIFs), against hours of API attaches.

    With the in-process stack: `await seed_host(stack.sim.state, stack.store, stack.virt,
    host=..., instances=10_000, ports_per_instance=10)`; with a simulator in another
    process, seed a `SimState` here and hand it over as a state file
    (`json.dumps(state.to_snapshot())`, `SimConfig.state_file`)."""
    from hotport.virt.base import NIC

    layout = seed_state(
        state,
        host=host,
        instances=instances,
        ports_per_instance=ports_per_instance,
        networks=networks,
        floating_ips=floating_ips,
    )
    await store.bulk_load(host, cached_vifs(state, layout))
    for inst in layout.instances:
        await virt.create_domain(inst, inst)
        for port_id in layout.ports[inst]:
            mac = state.ports[port_id]["mac_address"]
            await virt.add_nic_behind_back(
                inst, NIC(mac=mac, dev=("tap" + port_id)[:14], port_id=port_id)
            )
    return layout
