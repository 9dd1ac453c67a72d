"""openstacksdk, unchanged, against hotport's Nova facade (compute) and the simulator
(network): version discovery, microversion negotiation, server lookup by id and name,
and the server interface calls (create, list, get, delete) with Nova's errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openstack
import pytest
from openstack import exceptions
from openstack.connection import Connection

from ..live import LiveService
from .conftest import Neutron, eventually, new_instance, unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def conn(live: LiveService) -> Iterator[Connection]:
    c = openstack.connect(
        auth_type="none",
        auth={"endpoint": live.url},
        compute_endpoint_override=f"{live.url}/v2.1",
        network_endpoint_override=live.sim_url,
        load_yaml_config=False,
        load_envvars=False,
    )
    try:
        yield c
    finally:
        c.close()


def expected(port: dict[str, Any]) -> dict[str, Any]:
    """What the sdk's ServerInterface holds for a Neutron port."""
    return {
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port["mac_address"],
        "fixed_ips": [
            {"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
            for ip in port["fixed_ips"]
        ],
    }


def fields(interface: Any) -> dict[str, Any]:
    return {k: getattr(interface, k) for k in ("port_id", "net_id", "mac_addr", "fixed_ips")}


def test_discovery_sees_the_microversion_range(conn: Connection) -> None:
    data = conn.compute.get_endpoint_data()
    assert data.min_microversion == (2, 1)
    assert data.max_microversion == (2, 96)


def test_server_is_found_by_id_and_by_name(live: LiveService, conn: Connection) -> None:
    name = unique("sdk-find")
    instance = new_instance(live, name)
    by_id = conn.compute.get_server(instance)
    assert (by_id.id, by_id.name, by_id.status) == (instance, name, "ACTIVE")
    assert by_id.compute_host == "compute-1"
    by_name = conn.compute.find_server(name, ignore_missing=False)
    assert by_name.id == instance
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.find_server(unique("nobody"), ignore_missing=False)
    assert instance in [s.id for s in conn.compute.servers()]


def test_interface_round_trip(live: LiveService, conn: Connection, neutron: Neutron) -> None:
    instance = new_instance(live, unique("sdk-vm"))
    net = neutron.network("192.0.2.0/24")
    port_id = neutron.port(net)

    created = conn.compute.create_server_interface(instance, port_id=port_id, tag="data")
    port = neutron.show(port_id)
    assert port["device_id"] == instance
    assert fields(created) == expected(port)
    assert created.tag == "data"  # the sdk negotiated 2.70 for interfaces
    assert created.port_state in ("DOWN", "ACTIVE")

    listed = list(conn.compute.server_interfaces(instance))
    assert [fields(i) for i in listed] == [expected(port)]

    # the simulator set the port ACTIVE; its network-vif-plugged reached hotport's
    # os-server-external-events over HTTP, and the cache followed
    def active() -> Any:
        got = conn.compute.get_server_interface(port_id, server=instance)
        assert got.port_state == "ACTIVE"
        return got

    got = eventually(active)
    assert fields(got) == expected(port)
    assert got.tag == "data"

    # the network side, through the sdk too
    assert conn.network.get_port(port_id).device_id == instance

    conn.compute.delete_server_interface(port_id, server=instance, ignore_missing=False)
    assert list(conn.compute.server_interfaces(instance)) == []
    assert neutron.show(port_id)["device_id"] == ""
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server_interface(port_id, server=instance)
    # deleting what is not attached: Nova's 404, which the sdk can ignore
    conn.compute.delete_server_interface(port_id, server=instance, ignore_missing=True)


def test_interface_on_a_network_with_a_fixed_ip(
    live: LiveService, conn: Connection, neutron: Neutron
) -> None:
    instance = new_instance(live, unique("sdk-net"))
    net = neutron.network("198.51.100.0/24")
    created = conn.compute.create_server_interface(
        instance, net_id=net, fixed_ips=[{"ip_address": "198.51.100.77"}]
    )
    port = neutron.show(created.port_id)
    assert port["device_id"] == instance
    assert fields(created) == expected(port)
    assert [ip["ip_address"] for ip in created.fixed_ips] == ["198.51.100.77"]
    conn.compute.delete_server_interface(created.port_id, server=instance, ignore_missing=False)
    assert not neutron.exists(created.port_id)  # hotport created it, hotport deleted it


def test_errors_are_novas(live: LiveService, conn: Connection, neutron: Neutron) -> None:
    instance = new_instance(live, unique("sdk-err"))
    net = neutron.network()
    theirs = neutron.port(net, device_id=unique("other"), device_owner="compute:nova")
    free = neutron.port(net)

    with pytest.raises(exceptions.ConflictException) as conflict:
        conn.compute.create_server_interface(instance, port_id=theirs)
    assert theirs in str(conflict.value)

    with pytest.raises(exceptions.BadRequestException) as bad:
        conn.compute.create_server_interface(instance, port_id=free, net_id=net)
    assert "not both" in str(bad.value)

    with pytest.raises(exceptions.BadRequestException) as bad:
        conn.compute.create_server_interface(instance, port_id="not-a-uuid")
    assert "not a UUID" in str(bad.value)

    with pytest.raises(exceptions.NotFoundException):
        conn.compute.create_server_interface(unique("no-such-server"), port_id=free)

    # nothing changed
    assert list(conn.compute.server_interfaces(instance)) == []
    assert neutron.show(free)["device_id"] == ""
    assert neutron.show(theirs)["device_id"].startswith("other-")
