"""The libvirt driver through the engine, on a real libvirtd with real QEMU guests.

See conftest.py for the set-up (skips loudly without it; fails with HOTPORT_E2E=required).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from hotport.engine import errors as E
from hotport.engine.audit import audit
from hotport.model import devname

pytestmark = pytest.mark.e2e


def interfaces(xml: str) -> list[ET.Element]:
    devices = ET.fromstring(xml).find("devices")
    return [] if devices is None else devices.findall("interface")


def macs(xml: str) -> list[str]:
    return sorted(
        (i.find("mac").get("address") or "").lower()  # type: ignore[union-attr]
        for i in interfaces(xml)
    )


async def adopt(stack: Any, guests: Any, kind: str = "guest") -> tuple[str, str]:
    dom_uuid, name = await guests.start(kind)
    await stack.manager.adopt_instance(dom_uuid, name)
    return dom_uuid, name


async def test_attach_ten_ports_then_detach_them_all(make_stack, guests, neutron) -> None:
    stack = await make_stack()
    nt = neutron(stack)
    inst, name = await adopt(stack, guests)
    net = await nt.network(mtu=1400)
    ports = [await nt.port(net) for _ in range(10)]

    results = await asyncio.gather(*(stack.manager.attach(inst, port_id=p) for p in ports))
    by_port = {r.vif.id: r.vif for r in results}
    assert set(by_port) == set(ports)

    live = guests.virsh("dumpxml", name)
    assert macs(live) == sorted(v.address.lower() for v in by_port.values())
    for iface in interfaces(live):
        port = iface.find("alias").get("name").removeprefix("ua-")  # type: ignore[union-attr]
        assert port in by_port
        assert iface.get("type") == "ethernet"
        assert iface.find("target").get("dev") == devname(port)  # type: ignore[union-attr]
        assert iface.find("model").get("type") == "virtio"  # type: ignore[union-attr]
        assert iface.find("mtu").get("size") == "1400"  # type: ignore[union-attr]
    # persistent too: the domain keeps them across a restart
    assert macs(guests.virsh("dumpxml", "--inactive", name)) == macs(live)
    assert {devname(p) for p in ports} <= guests.taps()
    nics = await stack.virt.nics(inst)
    assert {n.port_id for n in nics} == set(ports)
    for p in ports:
        assert (await nt.show(p))["device_id"] == inst
    assert (await audit(stack.manager.engine)).ok

    await asyncio.gather(*(stack.manager.detach(inst, p) for p in ports))

    assert interfaces(guests.virsh("dumpxml", name)) == []
    assert interfaces(guests.virsh("dumpxml", "--inactive", name)) == []
    assert not ({devname(p) for p in ports} & guests.taps())
    assert await stack.virt.nics(inst) == []
    assert len(await stack.manager.interfaces(inst)) == 0
    for p in ports:
        assert (await nt.show(p))["device_id"] == ""
    assert (await audit(stack.manager.engine)).ok


async def test_rapid_attach_detach_attach_on_several_ports(make_stack, guests, neutron) -> None:
    stack = await make_stack()
    nt = neutron(stack)
    inst, name = await adopt(stack, guests)
    net = await nt.network()
    ports = [await nt.port(net) for _ in range(4)]

    async def churn(port: str) -> None:
        for _ in range(20):
            await stack.manager.attach(inst, port_id=port)
            await stack.manager.detach(inst, port)
        await stack.manager.attach(inst, port_id=port)

    await asyncio.gather(*(churn(p) for p in ports))
    await stack.manager.drain()

    nics = await stack.virt.nics(inst)
    assert sorted(n.port_id or "" for n in nics) == sorted(ports)  # no orphan, no duplicate
    assert len({n.mac for n in nics}) == len(nics)
    assert len(interfaces(guests.virsh("dumpxml", name))) == 4
    assert len(interfaces(guests.virsh("dumpxml", "--inactive", name))) == 4
    assert {devname(p) for p in ports} <= guests.taps()
    report = await audit(stack.manager.engine)
    assert report.ok, report.to_dict()
    heal = await stack.manager.heal()
    assert heal.drift == 0, heal.to_dict()


@pytest.mark.parametrize(
    "deadline",
    [
        3.0,  # within libvirt's own 5 s wait: one detach sent, never re-sent
        12.0,  # long enough for a re-send after libvirt's 5 s wait returned
    ],
)
async def test_a_guest_that_never_releases_fails_typed_and_changes_nothing(
    make_stack, guests, neutron, deadline: float
) -> None:
    stack = await make_stack(detach_timeout=deadline)
    nt = neutron(stack)
    inst, name = await adopt(stack, guests, "noguest")
    net = await nt.network()
    port = await nt.port(net)
    attached = await stack.manager.attach(inst, port_id=port)
    before = await stack.virt.nics(inst)
    assert [n.port_id for n in before] == [port]

    started = time.monotonic()
    with pytest.raises(E.GuestDidNotRelease):
        await stack.manager.detach(inst, port)
    elapsed = time.monotonic() - started
    assert deadline - 0.2 <= elapsed <= deadline + 1.0, elapsed

    assert await stack.virt.nics(inst) == before  # the NIC is still there
    assert macs(guests.virsh("dumpxml", "--inactive", name)) == [attached.vif.address.lower()]
    assert devname(port) in guests.taps()
    assert (await stack.manager.interface(inst, port)).id == port  # the cache unchanged
    assert (await nt.show(port))["device_id"] == inst  # still bound
    journal = await stack.manager.journal(inst)
    assert journal[0].state == "failed", journal[0]
    assert "did not release" in (journal[0].error or "")

    heal = await stack.manager.heal()  # consistent: nothing to report or fix
    assert heal.drift == 0, heal.to_dict()
    assert heal.orphan_nics == []
    assert heal.missing_nics == []
    assert (await audit(stack.manager.engine)).ok
    assert [n.port_id for n in await stack.virt.nics(inst)] == [port]


async def test_libvirtd_restart_mid_run_reconnects(make_stack, guests, neutron) -> None:
    stack = await make_stack()
    nt = neutron(stack)
    inst, _name = await adopt(stack, guests)
    net = await nt.network()
    p1, p2 = await nt.port(net), await nt.port(net)
    await stack.manager.attach(inst, port_id=p1)

    await guests.restart_libvirtd()

    await stack.manager.attach(inst, port_id=p2)  # the next operation works
    assert {n.port_id for n in await stack.virt.nics(inst)} == {p1, p2}
    assert stack.virt.reconnects >= 1
    await stack.manager.detach(inst, p1)  # and the device-removed events flow again
    await stack.manager.detach(inst, p2)
    assert await stack.virt.nics(inst) == []
    assert (await audit(stack.manager.engine)).ok


async def test_heal_reports_nics_added_and_removed_behind_its_back(
    make_stack, guests, neutron
) -> None:
    stack = await make_stack(repair=False)
    nt = neutron(stack)
    inst, name = await adopt(stack, guests)
    net = await nt.network()
    kept, lost = await nt.port(net), await nt.port(net)
    await stack.manager.attach(inst, port_id=kept)
    lost_vif = (await stack.manager.attach(inst, port_id=lost)).vif
    assert (await stack.manager.heal()).drift == 0

    foreign_mac = "52:54:00:e2:e0:01"
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(
            f"<interface type='ethernet'><mac address='{foreign_mac}'/>"
            "<target dev='tapforeign0' managed='yes'/><model type='virtio'/></interface>"
        )
        f.flush()
        guests.virsh("attach-device", name, f.name, "--live")
    guests.virsh("detach-interface", name, "ethernet", "--mac", lost_vif.address, "--live")
    for _ in range(100):  # the guest acks asynchronously
        if lost_vif.address.lower() not in macs(guests.virsh("dumpxml", name)):
            break
        await asyncio.sleep(0.05)

    heal = await stack.manager.heal()
    assert [o["mac"] for o in heal.orphan_nics] == [foreign_mac], heal.to_dict()
    assert heal.orphan_nics[0]["instance"] == inst
    assert [m["port_id"] for m in heal.missing_nics] == [lost], heal.to_dict()
    assert heal.repaired == []  # repair is off: reported only
    assert len(interfaces(guests.virsh("dumpxml", name))) == 2


async def test_lifecycle_events_reach_listeners_and_the_engine(make_stack, guests) -> None:
    stack = await make_stack()
    inst, name = await adopt(stack, guests)
    seen: list[tuple[str, str]] = []
    stack.virt.add_lifecycle_listener(lambda u, e: seen.append((u, e)))
    await stack.virt.domains()  # connected, listening
    await asyncio.to_thread(guests.remove, name)
    for _ in range(100):
        if (inst, "undefined") in seen:
            break
        await asyncio.sleep(0.05)
    assert (inst, "destroyed") in seen, seen
    assert (inst, "undefined") in seen, seen
    assert (inst, "undefined") in stack.manager.domain_events  # wired by the composition root
    assert inst not in {d.uuid for d in await stack.virt.domains()}


def tap_vif(mac: str, vif_type: str = "tap", bridge: str | None = None) -> Any:
    from hotport.model import VIF
    from hotport.model.values import Network

    network = Network(id="net-x", label="x", bridge=bridge, meta={"mtu": 1400})
    return VIF(id=str(uuid.uuid4()), address=mac, network=network, type=vif_type)


async def test_a_shut_off_domain_gets_config_only(make_stack, guests) -> None:
    stack = await make_stack()
    inst, name = await guests.start("noguest")
    guests.virsh("destroy", name)  # persistent, shut off
    assert {d.uuid: d.state for d in await stack.virt.domains()}[inst] == "shutoff"
    vif = tap_vif("fa:16:3e:5e:00:01")
    await stack.virt.plug(inst, vif)
    await stack.virt.plug(inst, vif)  # idempotent
    assert [n.port_id for n in await stack.virt.nics(inst)] == [vif.id]
    assert macs(guests.virsh("dumpxml", "--inactive", name)) == [vif.address]
    assert devname(vif.id) not in guests.taps()  # nothing live
    await stack.virt.unplug(inst, vif, within=5.0)
    await stack.virt.unplug(inst, vif, within=5.0)  # absent: success
    assert interfaces(guests.virsh("dumpxml", "--inactive", name)) == []


async def test_unknown_domains_and_missing_bridges_are_typed_errors(make_stack, guests) -> None:
    from hotport.virt.base import DomainNotFound, HostLacks, NotSupported

    stack = await make_stack()
    inst, _name = await guests.start("noguest")
    nobody = str(uuid.uuid4())
    with pytest.raises(DomainNotFound):
        await stack.virt.nics(nobody)
    with pytest.raises(DomainNotFound):
        await stack.virt.plug(nobody, tap_vif("fa:16:3e:5e:00:02"))
    with pytest.raises(DomainNotFound):
        await stack.virt.unplug(nobody, tap_vif("fa:16:3e:5e:00:02"), within=1.0)
    with pytest.raises(HostLacks, match="brq-hp-missing"):
        await stack.virt.plug(inst, tap_vif("fa:16:3e:5e:00:03", "bridge", "brq-hp-missing"))
    with pytest.raises(HostLacks, match="br-hp-missing"):
        await stack.virt.plug(inst, tap_vif("fa:16:3e:5e:00:04", "ovs", "br-hp-missing"))
    with pytest.raises(HostLacks, match="vhostuser"):
        await stack.virt.plug(inst, tap_vif("fa:16:3e:5e:00:05", "vhostuser"))
    assert await stack.virt.nics(inst) == []  # nothing was touched
    with pytest.raises(NotSupported):
        await stack.virt.create_domain(nobody, "x")
    with pytest.raises(NotSupported):
        await stack.virt.remove_domain(inst)


async def test_plug_restores_a_nic_only_the_config_still_has(make_stack, guests) -> None:
    """A late guest ack after a timed-out unplug leaves the NIC in the config only."""
    from hotport.virt.libvirt_xml import interface_xml

    stack = await make_stack()
    inst, name = await guests.start("guest")
    vif = tap_vif("fa:16:3e:5e:00:10")
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(interface_xml(vif))
        f.flush()
        guests.virsh("attach-device", name, f.name, "--config")
    assert await stack.virt.nics(inst) == []
    await stack.virt.plug(inst, vif)
    assert [n.port_id for n in await stack.virt.nics(inst)] == [vif.id]
    assert macs(guests.virsh("dumpxml", "--inactive", name)) == [vif.address]
    await stack.virt.unplug(inst, vif, within=10.0)
    assert interfaces(guests.virsh("dumpxml", name)) == []
    assert interfaces(guests.virsh("dumpxml", "--inactive", name)) == []
