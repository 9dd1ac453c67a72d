"""Attach, detach, events, heal and recovery through the whole in-process stack."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from hotport.compose import InProcessStack
from hotport.engine import errors as E
from hotport.engine.audit import audit
from hotport.engine.waiters import ExternalEvent
from hotport.virt.base import NIC, Domain, HypervisorUnavailable, NotSupported
from hotport.virt.memory import MemoryDriver

from .conftest import HOST, Neutron, make_stack, new_instance


async def assert_consistent(stack: InProcessStack) -> None:
    await stack.manager.drain()
    report = await audit(stack.manager.engine)
    assert report.ok, report.to_dict()


# ---------------------------------------------------------------- attach
async def test_attach_records_every_field_and_plugs(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network(mtu=1450)
    inst = await new_instance(stack)
    port = await neutron.port(net)
    result = await stack.manager.attach(inst, port_id=port, tag="data")
    vif = result.vif
    assert vif.id == port
    assert vif.mtu == 1450  # MTU kept from the network
    assert vif.tag == "data"
    assert vif.devname == "tap" + port[:11]
    assert vif.type == "ovs"
    assert vif.preserve_on_delete is True  # the user's port
    assert vif.details["bridge_name"] == "br-int"
    shown = await neutron.show(port)
    assert (shown["device_id"], shown["binding:host_id"]) == (inst, HOST)
    assert [n.mac for n in await stack.virt.nics(inst)] == [shown["mac_address"]]
    assert (await stack.manager.interfaces(inst)).port_ids() == (port,)
    [entry] = await stack.manager.journal(inst)
    assert (entry.kind, entry.state) == ("attach", "done")


async def test_attach_is_idempotent(stack: InProcessStack, neutron: Neutron) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    await stack.manager.attach(inst, port_id=port)
    again = await stack.manager.attach(inst, port_id=port)
    assert "bind_port" not in again.trace.requests
    assert len(await stack.virt.nics(inst)) == 1
    await assert_consistent(stack)


async def test_port_of_another_device_is_refused_and_nothing_changes(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    other = str(uuid.uuid4())
    port = await neutron.port(net, device_id=other, device_owner="compute:nova")
    before = await neutron.show(port)
    with pytest.raises(E.PortInUse, match=other):
        await stack.manager.attach(inst, port_id=port)
    assert await neutron.show(port) == before
    assert await stack.virt.nics(inst) == []
    assert len(await stack.manager.interfaces(inst)) == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, E.InvalidRequest),
        ({"port_id": "x", "network_id": "y"}, E.InvalidRequest),
        ({"port_id": "not-a-uuid"}, E.InvalidRequest),
        ({"port_id": str(uuid.uuid4())}, E.PortNotFound),
        ({"network_id": str(uuid.uuid4())}, E.NetworkNotFound),
        (
            {"port_id": str(uuid.uuid4()), "fixed_ips": [{"ip_address": "1.2.3.4"}]},
            E.InvalidRequest,
        ),
    ],
)
async def test_bad_attach_requests(
    stack: InProcessStack, kwargs: dict[str, object], error: type[Exception]
) -> None:
    inst = await new_instance(stack)
    with pytest.raises(error):
        await stack.manager.attach(inst, **kwargs)  # type: ignore[arg-type]
    assert await stack.virt.nics(inst) == []


async def test_unknown_instance(stack: InProcessStack, neutron: Neutron) -> None:
    net = await neutron.network()
    with pytest.raises(E.InstanceNotFound):
        await stack.manager.attach(str(uuid.uuid4()), port_id=await neutron.port(net))


async def test_failed_plug_unbinds_the_users_port_and_never_deletes_it(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    stack.virt.fail_next_plug(inst, HypervisorUnavailable("libvirtd went away"))
    with pytest.raises(E.HypervisorUnavailable):
        await stack.manager.attach(inst, port_id=port)
    shown = await neutron.show(port)  # still exists
    assert (shown["device_id"], shown["binding:host_id"]) == ("", "")
    assert len(await stack.manager.interfaces(inst)) == 0
    [entry] = await stack.manager.journal(inst)
    assert entry.state == "failed"
    assert "libvirtd went away" in (entry.error or "")


async def test_failed_plug_deletes_a_port_hotport_created(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    stack.virt.fail_next_plug(inst, HypervisorUnavailable("boom"))
    with pytest.raises(E.HypervisorUnavailable):
        await stack.manager.attach(inst, network_id=net)
    r = await stack.admin.get("/v2.0/ports", params={"network_id": net})
    assert r.json()["ports"] == []


# ---------------------------------------------------------------- detach
async def test_detach_unbinds_a_users_port_and_deletes_a_created_one(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    users = await neutron.port(net)
    await stack.manager.attach(inst, port_id=users)
    created = (await stack.manager.attach(inst, network_id=net)).vif.id
    assert (await stack.manager.detach(inst, users)).deleted_port is False
    assert (await stack.manager.detach(inst, created)).deleted_port is True
    assert (await neutron.show(users))["device_id"] == ""
    r = await stack.admin.get(f"/v2.0/ports/{created}")
    assert r.status_code == 404
    assert await stack.virt.nics(inst) == []
    assert len(await stack.manager.interfaces(inst)) == 0
    await assert_consistent(stack)


async def test_detach_of_a_port_not_attached(stack: InProcessStack, neutron: Neutron) -> None:
    inst = await new_instance(stack)
    with pytest.raises(E.InterfaceNotAttached):
        await stack.manager.detach(inst, str(uuid.uuid4()))


async def test_a_guest_that_never_lets_go_changes_nothing(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    await stack.manager.attach(inst, port_id=port)
    stack.virt.set_guest(inst, "never")
    with pytest.raises(E.GuestDidNotRelease, match="did not release"):
        await stack.manager.detach(inst, port)
    assert (await neutron.show(port))["device_id"] == inst
    assert len(await stack.virt.nics(inst)) == 1
    assert (await stack.manager.interfaces(inst)).port_ids() == (port,)
    entry = (await stack.manager.journal(inst))[0]
    assert (entry.kind, entry.state) == ("detach", "failed")
    report = await stack.manager.heal()
    assert report.drift == 0  # consistent: the NIC, the binding and the row all stayed


# ---------------------------------------------------------------- events
async def test_events_follow_neutron(stack: InProcessStack, neutron: Neutron) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    await stack.manager.attach(inst, port_id=port)
    # the agent brings the port up: vif-plugged reaches the engine through the notifier
    r = await stack.admin.post(f"/_sim/ports/{port}/status", json={"status": "ACTIVE"})
    assert r.status_code == 200
    await stack.sim.notifier.flush()
    await stack.manager.drain()
    vif = await stack.manager.interface(inst, port)
    assert vif.active is True
    row = await stack.store.vif(port)
    assert row is not None
    assert row.revision == (await neutron.show(port))["revision_number"]
    # a port deleted at Neutron: vif-deleted unplugs it and tombstones the row
    await neutron.delete(port)
    await stack.sim.notifier.flush()
    await stack.manager.drain()
    assert await stack.virt.nics(inst) == []
    assert len(await stack.manager.interfaces(inst)) == 0
    names = [e["name"] for e in stack.events_delivered]
    assert "network-vif-plugged" in names
    assert "network-vif-deleted" in names


async def test_events_for_unknown_instances_are_404(stack: InProcessStack) -> None:
    answers = await stack.manager.events(
        [ExternalEvent("network-changed", str(uuid.uuid4()), str(uuid.uuid4()))]
    )
    assert [a.code for a in answers] == [404]


async def test_untagged_network_changed_refreshes_the_instance(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    ports = [await neutron.port(net) for _ in range(3)]
    for p in ports:
        await stack.manager.attach(inst, port_id=p)
    r = await stack.admin.put(f"/v2.0/networks/{net}", json={"network": {"mtu": 1400}})
    assert r.status_code == 200
    await stack.manager.events([ExternalEvent("network-changed", inst)])
    await stack.manager.drain()
    assert {v.mtu for v in await stack.manager.interfaces(inst)} == {1400}


# ---------------------------------------------------------------- heal
async def test_heal_finds_and_repairs_drift_behind_hotports_back(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    kept, unbound = await neutron.port(net), await neutron.port(net)
    for p in (kept, unbound):
        await stack.manager.attach(inst, port_id=p)
    # behind hotport's back: a port unbound at Neutron (no event is sent for that), a
    # NIC added in the hypervisor, the NIC of a cached port removed
    await neutron.update(unbound, device_id="", device_owner="", **{"binding:host_id": None})
    await stack.virt.add_nic_behind_back(inst, NIC(mac="fa:16:3e:00:00:99", dev="tapdeadbeef"))
    kept_mac = (await neutron.show(kept))["mac_address"]
    await stack.virt.remove_nic_behind_back(inst, kept_mac)
    report = await stack.manager.heal()
    assert report.removed == [unbound]
    assert {o["mac"] for o in report.orphan_nics} >= {"fa:16:3e:00:00:99"}
    assert [m["port_id"] for m in report.missing_nics] == [kept]
    await assert_consistent(stack)
    assert (await stack.manager.heal()).drift == 0


async def test_heal_adds_a_port_bound_at_neutron_directly(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(
        net, device_id=inst, device_owner="compute:nova", **{"binding:host_id": HOST}
    )
    report = await stack.manager.heal()
    assert report.added == [port]
    await assert_consistent(stack)


async def test_no_request_waits_for_a_heal(stack: InProcessStack, neutron: Neutron) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    locks = stack.manager.engine.locks
    # a heal (or an untagged refresh) of this instance holds its refresh lock...
    async with locks.instance_refresh(inst):
        # ...and attach + detach still complete (a liveness bound, not a timing check)
        await asyncio.wait_for(stack.manager.attach(inst, port_id=port), 30)
        await asyncio.wait_for(stack.manager.detach(inst, port), 30)


# ---------------------------------------------------------------- recovery
async def test_recovery_undoes_an_attach_cut_short(tmp_path: Path) -> None:
    # hotport was down: the events of the bind below never reached it
    stack = await make_stack(tmp_path, deliver_events=False)
    try:
        await _attach_cut_short(stack, Neutron(stack))
    finally:
        await stack.close()


async def _attach_cut_short(stack: InProcessStack, neutron: Neutron) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    # a crash after the bind and the plug, before the row was written
    entry = await stack.store.journal_start(inst, port, "attach", {"created": False})
    await stack.client.bind_port(port, device_id=inst, host=HOST)
    shown = await neutron.show(port)
    await stack.virt.add_nic_behind_back(inst, NIC(mac=shown["mac_address"], port_id=port))
    report = await stack.manager.recover()
    assert report.undone == [entry]
    assert (await neutron.show(port))["device_id"] == ""
    assert await stack.virt.nics(inst) == []
    await assert_consistent(stack)


async def test_recovery_finishes_a_detach_cut_short(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    port = await neutron.port(net)
    await stack.manager.attach(inst, port_id=port)
    entry = await stack.store.journal_start(inst, port, "detach", {"created": False})
    report = await stack.manager.recover()
    assert report.finished == [entry]
    assert (await neutron.show(port))["device_id"] == ""
    assert len(await stack.manager.interfaces(inst)) == 0
    await assert_consistent(stack)


async def test_recovery_deletes_a_created_port_found_by_its_marker(
    stack: InProcessStack, neutron: Neutron
) -> None:
    net = await neutron.network()
    inst = await new_instance(stack)
    entry = await stack.store.journal_start(
        inst, None, "attach", {"network_id": net, "created": True}
    )
    # the crash came right after the create, before its id was journaled
    await stack.client.create_port(net, device_id=inst, host=HOST, name=f"hotport-attach-{entry}")
    report = await stack.manager.recover()
    assert report.undone == [entry]
    r = await stack.admin.get("/v2.0/ports", params={"device_id": inst})
    assert r.json()["ports"] == []


class _ForeignVMs(MemoryDriver):
    """A driver that does not own VMs (as libvirt's): domains appear from outside."""

    name = "foreign"

    async def create_domain(self, instance_uuid: str, name: str) -> Domain:
        raise NotSupported("this driver does not create domains")

    async def remove_domain(self, instance_uuid: str) -> None:
        raise NotSupported("this driver does not remove domains")


async def test_a_driver_that_cannot_create_adopts_an_existing_domain(tmp_path: Path) -> None:
    virt = _ForeignVMs(plug_time=0.0, unplug_time=0.0)
    stack = await make_stack(tmp_path, virt=virt)
    try:
        missing = str(uuid.uuid4())
        with pytest.raises(E.NotSupportedError, match="define and start domain"):
            await stack.manager.create_instance(missing, "vm")
        assert await stack.manager.list_instances() == []

        present = str(uuid.uuid4())
        await MemoryDriver.create_domain(virt, present, "outside")  # made by someone else
        row = await stack.manager.create_instance(present, "vm")
        assert row.uuid == present
        await stack.manager.delete_instance(present)  # forgets it, keeps the domain
        assert await stack.manager.list_instances() == []
        assert [d.uuid for d in await virt.domains()] == [present]
    finally:
        await stack.close()
