"""Instances: create, get, list (by host), soft delete, re-create."""

from __future__ import annotations

import pytest
from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock, vif_json

from hotport.store.base import InstanceExists, InstanceNotFound, InstanceRow
from hotport.store.sql import SqlStore


async def test_create_get_list(empty_store: SqlStore, clock: FakeClock) -> None:
    store = empty_store
    clock.now = 5.0
    row = await store.create_instance(INSTANCE_A, "vm-a", "host-1")
    assert row == InstanceRow(INSTANCE_A, "vm-a", "host-1", 5.0, False)
    clock.now = 6.0
    await store.create_instance(INSTANCE_B, "vm-b", "host-2")
    clock.now = 7.0
    await store.create_instance("c", "vm-c", "host-1")

    assert await store.get_instance(INSTANCE_A) == row
    assert await store.get_instance("nobody") is None
    assert [r.uuid for r in await store.list_instances()] == [INSTANCE_A, INSTANCE_B, "c"]
    assert [r.uuid for r in await store.list_instances("host-1")] == [INSTANCE_A, "c"]
    assert [r.uuid for r in await store.list_instances(host="host-2")] == [INSTANCE_B]
    assert await store.list_instances("host-9") == []


async def test_duplicate_is_refused(empty_store: SqlStore) -> None:
    await empty_store.create_instance(INSTANCE_A, "vm-a", "host-1")
    with pytest.raises(InstanceExists):
        await empty_store.create_instance(INSTANCE_A, "other", "host-2")
    assert (await empty_store.get_instance(INSTANCE_A)).name == "vm-a"  # type: ignore[union-attr]


async def test_soft_delete_and_recreate(empty_store: SqlStore, clock: FakeClock) -> None:
    store = empty_store
    await store.create_instance(INSTANCE_A, "vm-a", "host-1")
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)

    await store.delete_instance(INSTANCE_A)
    assert await store.get_instance(INSTANCE_A) is None
    assert await store.list_instances() == []
    with pytest.raises(InstanceNotFound):
        await store.delete_instance(INSTANCE_A)  # already gone
    # the rows stay (soft delete): the engine tombstones them through detach
    assert [r.port_id for r in await store.vifs(INSTANCE_A)] == ["p1"]

    clock.now = 99.0
    again = await store.create_instance(INSTANCE_A, "vm-a2", "host-2")
    assert again == InstanceRow(INSTANCE_A, "vm-a2", "host-2", 99.0, False)
    assert await store.get_instance(INSTANCE_A) == again


async def test_delete_unknown(empty_store: SqlStore) -> None:
    with pytest.raises(InstanceNotFound):
        await empty_store.delete_instance("nobody")


async def test_instances_are_independent_of_each_other(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    await store.delete_instance(INSTANCE_B)
    assert [r.uuid for r in await store.list_instances()] == [INSTANCE_A]
    assert [r.port_id for r in await store.all_vifs()] == ["p1"]
