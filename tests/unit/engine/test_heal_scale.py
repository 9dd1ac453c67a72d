"""The heal at scale: what it compares without decoding or building, and what it still
finds. The whole stack in one process, seeded in bulk (`hotport.sim.bulk`), events off
(every change below happens behind hotport's back: only the heal can find it)."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotport.compose import InProcessStack, in_process_stack
from hotport.engine import heal as heal_module
from hotport.engine.context import EngineConfig
from hotport.engine.heal import LIST_FIELDS
from hotport.model.build import PORT_FIELDS
from hotport.sim.bulk import BulkLayout, seed_host
from hotport.sim.config import SimConfig
from hotport.store.sql import SqlStore
from hotport.virt.base import NIC
from hotport.virt.memory import MemoryDriver

HOST = "compute-1"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcessStack]:
    s = await in_process_stack(
        tmp_path / "hotport.db",
        host=HOST,
        sim=SimConfig(profile="instant", active_delay=None, seed=5),
        engine=EngineConfig(host=HOST),
        virt=MemoryDriver(plug_time=0.0, unplug_time=0.0),
        deliver_events=False,
    )
    try:
        yield s
    finally:
        await s.close()


async def seeded(stack: InProcessStack, **kwargs: Any) -> BulkLayout:
    """Instances x ports bound at the simulator, in line in the store and the domains."""
    args: dict[str, Any] = {"instances": 6, "ports_per_instance": 3, "networks": 2}
    assert isinstance(stack.store, SqlStore)
    assert isinstance(stack.virt, MemoryDriver)
    return await seed_host(
        stack.sim.state, stack.store, stack.virt, host=HOST, **{**args, **kwargs}
    )


def first_port(layout: BulkLayout) -> str:
    return layout.ports[layout.instances[0]][0]


async def test_in_line_cache_costs_four_requests_and_writes_nothing(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = await seeded(stack, floating_ips=3)

    def not_called(*_: Any, **__: Any) -> Any:
        raise AssertionError("an in-line row was decoded and rebuilt")

    monkeypatch.setattr(heal_module, "build_vif", not_called)  # the text comparison sufficed
    before = {r.port_id: r for r in await stack.store.all_vifs()}
    report = await stack.manager.heal()
    assert report.drift == 0, report.to_dict()
    assert report.network_requests == 4
    assert report.ports_seen == layout.port_count
    assert (report.added, report.updated, report.removed, report.conflicts) == ([], [], [], [])
    assert {r.port_id: r for r in await stack.store.all_vifs()} == before  # untouched


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


async def test_the_ports_are_listed_with_only_the_fields_the_builder_reads(
    tmp_path: Path,
) -> None:
    recorders: list[Recorder] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        recorders.append(Recorder(inner))
        return recorders[0]

    stack = await in_process_stack(
        tmp_path / "hotport.db", host=HOST, deliver_events=False, wrap_transport=wrap
    )
    try:
        await seeded(stack)
        report = await stack.manager.heal()
        assert report.drift == 0
    finally:
        await stack.close()
    [listing] = [r for r in recorders[0].requests if r.url.path == "/v2.0/ports"]
    assert listing.url.params.get_list("binding:host_id") == [HOST]
    assert set(listing.url.params.get_list("fields")) == set(LIST_FIELDS)
    assert set(PORT_FIELDS) <= set(LIST_FIELDS)


async def test_a_floating_ip_moved_behind_the_back_is_found(stack: InProcessStack) -> None:
    layout = await seeded(stack, floating_ips=2)
    fip = stack.sim.state.floatingips[layout.floating_ips[0]]
    port_id = fip["port_id"]
    fip.update(port_id=None, fixed_ip_address=None)  # the port's revision does not move
    report = await stack.manager.heal()
    assert report.updated == [port_id]
    row = await stack.store.vif(port_id)
    assert row is not None
    assert row.revision == stack.sim.state.ports[port_id]["revision_number"]
    assert all(not ip["floating_ips"] for s in row.vif["network"]["subnets"] for ip in s["ips"])
    assert (await stack.manager.heal()).drift == 0


async def test_a_network_change_reaches_every_vif_on_it(stack: InProcessStack) -> None:
    layout = await seeded(stack)
    net = layout.networks[0]
    r = await stack.admin.put(f"/v2.0/networks/{net}", json={"network": {"mtu": 1400}})
    assert r.status_code == 200
    on_it = sorted(
        p
        for ports in layout.ports.values()
        for p in ports
        if stack.sim.state.ports[p]["network_id"] == net
    )
    report = await stack.manager.heal()
    assert sorted(report.updated) == on_it
    assert {
        r.vif["network"]["meta"]["mtu"] for r in await stack.store.all_vifs() if r.port_id in on_it
    } == {1400}


async def test_a_new_port_revision_is_rebuilt(stack: InProcessStack) -> None:
    layout = await seeded(stack)
    port_id = first_port(layout)
    r = await stack.admin.put(f"/v2.0/ports/{port_id}", json={"port": {"name": "renamed"}})
    assert r.status_code == 200
    report = await stack.manager.heal()
    assert report.updated == [port_id]
    row = await stack.store.vif(port_id)
    assert row is not None
    assert row.revision == r.json()["port"]["revision_number"]


async def test_a_row_in_another_key_order_is_decoded_and_left_alone(
    stack: InProcessStack,
) -> None:
    layout = await seeded(stack)
    port_id = first_port(layout)
    row = await stack.store.vif(port_id)
    assert row is not None
    reordered = dict(reversed(list(row.vif.items())))
    assert json.dumps(reordered) != json.dumps(row.vif)
    await stack.store.put_vif(row.instance_uuid, port_id, reordered, row.revision)
    report = await stack.manager.heal()
    assert report.drift == 0
    assert report.updated == []


async def test_preserve_tag_and_link_status_are_kept(stack: InProcessStack) -> None:
    layout = await seeded(stack)
    port_id = first_port(layout)
    row = await stack.store.vif(port_id)
    assert row is not None
    changed = {**row.vif, "preserve_on_delete": False, "meta": {"tag": "nic-ü"}, "active": False}
    await stack.store.put_vif(row.instance_uuid, port_id, changed, row.revision)
    assert (await stack.manager.heal()).drift == 0
    # a port change rebuilds the VIF: the row's preserve flag and tag survive it
    await stack.admin.put(f"/v2.0/ports/{port_id}", json={"port": {"name": "x"}})
    assert (await stack.manager.heal()).updated == [port_id]
    rebuilt = await stack.store.vif(port_id)
    assert rebuilt is not None
    assert (rebuilt.vif["preserve_on_delete"], rebuilt.vif["meta"]) == (False, {"tag": "nic-ü"})


async def test_a_row_changed_during_the_heal_wins(stack: InProcessStack) -> None:
    """The rows are read before the list; the texts after it. A row that moved in
    between is an operation that won: reported as a conflict, never overwritten."""
    layout = await seeded(stack)
    port_id = first_port(layout)
    store = stack.store
    assert isinstance(store, SqlStore)
    original = store.vif_texts

    async def racing(instance_uuids: Any) -> Any:
        row = await store.vif(port_id)
        assert row is not None
        await store.put_vif(row.instance_uuid, port_id, {**row.vif, "type": "raced"}, 99)
        return await original(instance_uuids)

    store.vif_texts = racing  # type: ignore[method-assign]
    try:
        report = await stack.manager.heal()
    finally:
        del store.vif_texts  # type: ignore[method-assign]
    assert report.conflicts == [port_id]
    row = await store.vif(port_id)
    assert row is not None
    assert (row.revision, row.vif["type"]) == (99, "raced")


async def test_missing_and_orphan_nics_are_still_found(stack: InProcessStack) -> None:
    layout = await seeded(stack)
    inst = layout.instances[1]
    port_id = layout.ports[inst][0]
    virt = stack.virt
    assert isinstance(virt, MemoryDriver)
    await virt.remove_nic_behind_back(inst, stack.sim.state.ports[port_id]["mac_address"])
    await virt.add_nic_behind_back(inst, NIC(mac="fa:16:3e:ff:ff:01"))
    report = await stack.manager.heal()
    assert [m["port_id"] for m in report.missing_nics] == [port_id]
    assert [o["mac"] for o in report.orphan_nics] == ["fa:16:3e:ff:ff:01"]


async def test_a_port_unbound_behind_the_back_is_removed(stack: InProcessStack) -> None:
    layout = await seeded(stack)
    port_id = first_port(layout)
    stack.sim.state.ports[port_id]["binding:host_id"] = ""  # not listed for the host any more
    report = await stack.manager.heal()
    assert report.removed == [port_id]
    row = await stack.store.vif(port_id)
    assert row is not None
    assert row.deleted


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_collector_is_left_as_it_was(stack: InProcessStack, enabled: bool) -> None:
    await seeded(stack)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        await stack.manager.heal()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
