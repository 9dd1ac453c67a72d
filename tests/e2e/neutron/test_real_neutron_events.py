"""hotport and a real neutron-server 29: attach and detach through hotport, then change
ports directly at Neutron and watch hotport's cache follow from the REAL events Neutron's
notifier posts to hotport's `/v2.1/os-server-external-events`.

The heal loop is off, so an event is the only way a change made at Neutron can reach the
cache. Events are batched by Neutron (every 2 s per API worker), so each expectation is
polled with a deadline (`wait_until`), never slept for.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import PROJECT_ID, Hotport, Neutron, wait_until

pytestmark = pytest.mark.e2e

OWNER = "compute:nova"


# --------------------------------------------------------------------- helpers
def fixed_ips(vif: dict[str, Any] | None) -> set[str]:
    if vif is None:
        return set()
    return {ip["address"] for s in vif["network"]["subnets"] for ip in s["ips"]}


def floating_ips(vif: dict[str, Any] | None) -> set[str]:
    if vif is None:
        return set()
    return {
        f["address"]
        for s in vif["network"]["subnets"]
        for ip in s["ips"]
        for f in ip.get("floating_ips", [])
    }


def attach(hotport: Hotport, instance: str, port_id: str) -> dict[str, Any]:
    r = hotport.api.post(f"/v1/instances/{instance}/interfaces", json={"port_id": port_id})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["created_port"] is False
    assert body["interface"]["id"] == port_id
    return body


def attached_port(hotport: Hotport, neutron: Neutron) -> tuple[str, dict[str, Any], str]:
    """(instance, the port as Neutron shows it after the attach, its subnet id)."""
    net, sub = neutron.network()
    port = neutron.port(net["id"])
    instance = hotport.create_instance()
    attach(hotport, instance, port["id"])
    return instance, neutron.show(port["id"]), sub["id"]


# --------------------------------------------------------------------- tests
def test_attach_binds_the_port_at_neutron(hotport: Hotport, neutron: Neutron) -> None:
    net, sub = neutron.network()
    port = neutron.port(net["id"])
    instance = hotport.create_instance()
    body = attach(hotport, instance, port["id"])

    shown = neutron.show(port["id"])
    assert shown["device_id"] == instance
    assert shown["device_owner"] == OWNER
    assert shown["binding:host_id"] == hotport.host
    assert shown["binding:vif_type"] == "ovs"  # bound by the anchor_loopback driver
    vif = body["interface"]
    assert vif["address"] == port["mac_address"]
    assert vif["type"] == "ovs"
    assert vif["network"]["id"] == net["id"]
    assert fixed_ips(vif) == {ip["ip_address"] for ip in port["fixed_ips"]}
    assert vif["active"] is False  # no agent: the port stays DOWN
    assert hotport.vif(instance, port["id"]) == vif
    assert [n["mac"] for n in hotport.nics(instance)] == [port["mac_address"]]
    assert sub["id"] in {ip["subnet_id"] for ip in shown["fixed_ips"]}


def test_fixed_ip_changes_follow_network_changed(hotport: Hotport, neutron: Neutron) -> None:
    instance, port, sub_id = attached_port(hotport, neutron)
    pid = port["id"]
    first = port["fixed_ips"][0]["ip_address"]

    # a second subnet, and a second fixed IP on it, added at Neutron
    sub2 = neutron.subnet(port["network_id"], "198.51.100.0/24")
    updated = neutron.update(pid, fixed_ips=[*port["fixed_ips"], {"subnet_id": sub2["id"]}])
    second = next(ip["ip_address"] for ip in updated["fixed_ips"] if ip["subnet_id"] == sub2["id"])
    vif = wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: fixed_ips(v) == {first, second},
        "the second fixed IP in hotport's cache",
    )
    assert vif is not None
    assert {s["cidr"] for s in vif["network"]["subnets"]} == {"192.0.2.0/24", "198.51.100.0/24"}

    # the first address replaced by a chosen one, the second removed
    neutron.update(pid, fixed_ips=[{"subnet_id": sub_id, "ip_address": "192.0.2.200"}])
    vif = wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: fixed_ips(v) == {"192.0.2.200"},
        "the replaced fixed IP in hotport's cache",
    )
    assert vif is not None
    assert [s["cidr"] for s in vif["network"]["subnets"]] == ["192.0.2.0/24"]
    assert [n["mac"] for n in hotport.nics(instance)] == [port["mac_address"]]


def test_port_status_and_binding_profile_follow_vif_plugged(
    hotport: Hotport, neutron: Neutron
) -> None:
    instance, port, _ = attached_port(hotport, neutron)
    pid = port["id"]
    before = hotport.vif(instance, pid)
    assert before is not None
    assert before["active"] is False

    # play the L2 agent: the anchor driver rebinds the port ACTIVE (network-vif-plugged,
    # then network-changed); writing binding:profile needs the service role
    neutron.update(pid, roles="service", **{"binding:profile": {"anchor_status": "ACTIVE"}})
    assert neutron.show(pid)["status"] == "ACTIVE"
    after = wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: (
            v is not None and v["active"] is True and v["profile"] == {"anchor_status": "ACTIVE"}
        ),
        "active=True and the new binding:profile after network-vif-plugged",
    )
    assert after is not None
    assert (after["address"], after["network"], after["type"]) == (
        before["address"],
        before["network"],
        before["type"],
    )

    # and back DOWN (network-vif-unplugged, then network-changed)
    neutron.update(pid, roles="service", **{"binding:profile": {"anchor_status": "DOWN"}})
    wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: (
            v is not None and v["active"] is False and v["profile"]["anchor_status"] == "DOWN"
        ),
        "active=False after network-vif-unplugged",
    )
    assert [n["mac"] for n in hotport.nics(instance)] == [port["mac_address"]]


def test_floating_ip_association_follows(hotport: Hotport, neutron: Neutron) -> None:
    instance, port, sub_id = attached_port(hotport, neutron)
    pid = port["id"]
    ext = neutron.external_network()
    neutron.router(ext["id"], sub_id)

    fip = neutron.create(
        "floatingips", {"floating_network_id": ext["id"], "port_id": pid, "project_id": PROJECT_ID}
    )
    address = fip["floating_ip_address"]
    wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: floating_ips(v) == {address},
        f"floating IP {address} under the port's fixed IP",
    )

    neutron.set_floating_ip_port(fip["id"], None)
    wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: v is not None and floating_ips(v) == set(),
        "the floating IP gone after the disassociation",
    )

    neutron.set_floating_ip_port(fip["id"], pid)
    wait_until(
        lambda: hotport.vif(instance, pid),
        lambda v: floating_ips(v) == {address},
        "the floating IP back after the re-association",
    )


def test_port_deleted_at_neutron_leaves_cache_and_domain(
    hotport: Hotport, neutron: Neutron
) -> None:
    instance, port, _ = attached_port(hotport, neutron)
    other = neutron.port(port["network_id"])
    attach(hotport, instance, other["id"])

    neutron.delete(port["id"])  # network-vif-deleted
    wait_until(
        lambda: [v["id"] for v in hotport.interfaces(instance)],
        lambda ids: ids == [other["id"]],
        "only the other port left in the cache after network-vif-deleted",
    )
    assert [n["mac"] for n in hotport.nics(instance)] == [other["mac_address"]]


def test_port_bound_to_another_host_leaves_the_cache(hotport: Hotport, neutron: Neutron) -> None:
    instance, port, _ = attached_port(hotport, neutron)
    # the port moves to another host (same device): network-changed for this instance
    neutron.update(port["id"], **{"binding:host_id": f"{hotport.host}-elsewhere"})
    wait_until(
        lambda: hotport.interfaces(instance),
        lambda vifs: vifs == [],
        "the port gone from the cache after it was bound to another host",
    )
    assert hotport.nics(instance) == []


def test_detach_unbinds_and_later_changes_are_not_ours(hotport: Hotport, neutron: Neutron) -> None:
    instance, port, _ = attached_port(hotport, neutron)
    other = neutron.port(port["network_id"])
    attach(hotport, instance, other["id"])

    r = hotport.api.delete(f"/v1/instances/{instance}/interfaces/{port['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["deleted_port"] is False
    shown = neutron.show(port["id"])
    assert shown["device_id"] == ""
    assert shown["binding:host_id"] == ""
    assert [v["id"] for v in hotport.interfaces(instance)] == [other["id"]]
    assert [n["mac"] for n in hotport.nics(instance)] == [other["mac_address"]]

    # the detached port is bound to another server on this host: its events name that
    # server (unknown here), and the instance's cache must not get the port back; a change
    # to the port still attached shows that the events do flow meanwhile
    neutron.update(
        port["id"],
        device_id=str(uuid.uuid4()),
        device_owner=OWNER,
        **{"binding:host_id": hotport.host},
    )
    neutron.update(
        other["id"],
        name="renamed",
        fixed_ips=[{"subnet_id": other["fixed_ips"][0]["subnet_id"], "ip_address": "192.0.2.201"}],
    )
    wait_until(
        lambda: hotport.vif(instance, other["id"]),
        lambda v: fixed_ips(v) == {"192.0.2.201"},
        "the other port's new address",
    )
    assert [v["id"] for v in hotport.interfaces(instance)] == [other["id"]]


def test_attach_by_network_and_detach_deletes_the_port(hotport: Hotport, neutron: Neutron) -> None:
    net, _ = neutron.network()
    instance = hotport.create_instance()
    r = hotport.api.post(
        f"/v1/instances/{instance}/interfaces",
        json={"network_id": net["id"], "fixed_ips": [{"ip_address": "192.0.2.50"}]},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created_port"] is True
    pid = body["interface"]["id"]
    assert fixed_ips(body["interface"]) == {"192.0.2.50"}
    shown = neutron.show(pid)
    assert (shown["device_id"], shown["binding:host_id"]) == (instance, hotport.host)

    r = hotport.api.delete(f"/v1/instances/{instance}/interfaces/{pid}")
    assert r.status_code == 200, r.text
    assert r.json()["deleted_port"] is True
    assert neutron.http.get(f"/v2.0/ports/{pid}").status_code == 404
    assert hotport.interfaces(instance) == []
    assert hotport.nics(instance) == []


def test_events_for_unknown_servers_do_not_stop_the_stream(
    hotport: Hotport, neutron: Neutron
) -> None:
    """Neutron reports every compute port on any host; hotport answers 404 for servers
    it does not know, and Neutron goes on sending the events that do concern it."""
    instance, port, sub_id = attached_port(hotport, neutron)
    stranger = str(uuid.uuid4())
    theirs = neutron.port(
        port["network_id"],
        device_id=stranger,
        device_owner=OWNER,
        **{"binding:host_id": hotport.host},
    )
    # events naming the stranger (network-changed, network-vif-plugged, network-vif-deleted)
    # interleaved with one that concerns our instance, so some batches mix the two
    neutron.update(theirs["id"], name="theirs")
    neutron.update(port["id"], fixed_ips=[{"subnet_id": sub_id, "ip_address": "192.0.2.202"}])
    neutron.update(
        theirs["id"], roles="service", **{"binding:profile": {"anchor_status": "ACTIVE"}}
    )
    neutron.delete(theirs["id"])
    wait_until(
        lambda: hotport.vif(instance, port["id"]),
        lambda v: fixed_ips(v) == {"192.0.2.202"},
        "our port's new address, sent among events for an unknown server",
    )
    # and one more after all of them: the notifier is still delivering
    neutron.update(port["id"], fixed_ips=[{"subnet_id": sub_id, "ip_address": "192.0.2.203"}])
    wait_until(
        lambda: hotport.vif(instance, port["id"]),
        lambda v: fixed_ips(v) == {"192.0.2.203"},
        "our port's next address, after the events for an unknown server",
    )
    assert hotport.api.get(f"/v1/instances/{stranger}").status_code == 404
    assert [v["id"] for v in hotport.interfaces(instance)] == [port["id"]]


def test_nova_os_interface_attach_detach_and_event_driven_answers(
    hotport: Hotport, neutron: Neutron
) -> None:
    """The Nova facade over a real Neutron: attach and detach with os-interface, and its
    answers (port_state, fixed_ips, the server's addresses) follow the real events."""
    net, sub = neutron.network()
    port = neutron.port(net["id"])
    instance = hotport.create_instance("nova-vm")
    base = f"/v2.1/servers/{instance}/os-interface"

    r = hotport.api.post(base, json={"interfaceAttachment": {"port_id": port["id"]}})
    assert r.status_code == 200, r.text
    attachment = r.json()["interfaceAttachment"]
    assert attachment["port_id"] == port["id"]
    assert attachment["net_id"] == net["id"]
    assert attachment["mac_addr"] == port["mac_address"]
    assert attachment["port_state"] == "DOWN"
    assert attachment["fixed_ips"] == [
        {"subnet_id": sub["id"], "ip_address": port["fixed_ips"][0]["ip_address"]}
    ]
    assert neutron.show(port["id"])["device_id"] == instance

    def listed() -> list[dict[str, Any]]:
        r = hotport.api.get(base)
        assert r.status_code == 200, r.text
        return list(r.json()["interfaceAttachments"])

    assert listed() == [attachment]

    # the agent's part at Neutron: network-vif-plugged -> port_state ACTIVE
    neutron.update(port["id"], roles="service", **{"binding:profile": {"anchor_status": "ACTIVE"}})
    wait_until(
        listed,
        lambda a: [x["port_state"] for x in a] == ["ACTIVE"],
        "port_state ACTIVE in os-interface after network-vif-plugged",
    )
    # a new address at Neutron: network-changed -> fixed_ips and the server's addresses
    neutron.update(port["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "192.0.2.210"}])
    wait_until(
        listed,
        lambda a: (
            [x["fixed_ips"] for x in a] == [[{"subnet_id": sub["id"], "ip_address": "192.0.2.210"}]]
        ),
        "the new fixed IP in os-interface after network-changed",
    )
    r = hotport.api.get(f"/v2.1/servers/{instance}")
    assert r.status_code == 200, r.text
    addresses = r.json()["server"]["addresses"]
    assert [a["addr"] for a in addresses[net["name"]]] == ["192.0.2.210"]

    r = hotport.api.get(f"{base}/{port['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["interfaceAttachment"]["fixed_ips"][0]["ip_address"] == "192.0.2.210"

    r = hotport.api.delete(f"{base}/{port['id']}")
    assert r.status_code == 202, r.text
    assert listed() == []
    shown = neutron.show(port["id"])
    assert (shown["device_id"], shown["binding:host_id"]) == ("", "")
    assert hotport.api.get(f"{base}/{port['id']}").status_code == 404
