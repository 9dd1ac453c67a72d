"""The store's bulk set-up (`bulk_load`) and the heal's light reads (`vif_heads`,
`vif_texts`), on a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock, vif_json

from hotport.sim.bulk import PORT_REVISION, cached_vifs, seed_state
from hotport.sim.state import SimState
from hotport.store.base import StoreError, VifHead
from hotport.store.sql import SqlStore


@contextmanager
def statements(store: SqlStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement.strip())

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)


def rows(count: int, instances: int) -> list[tuple[str, str, dict[str, object], int]]:
    return [
        (f"i{i:04d}", f"i{i:04d}-p{j}", vif_json(f"i{i:04d}-p{j}"), 3)
        for i in range(instances)
        for j in range(count)
    ]


async def test_bulk_load_creates_instances_and_hands_out_positions(
    empty_store: SqlStore, clock: FakeClock
) -> None:
    made = await empty_store.bulk_load("host-1", rows(3, 5), chunk=4)  # chunks split instances
    assert made == (5, 15)
    listed = await empty_store.list_instances("host-1")
    assert sorted(i.uuid for i in listed) == [f"i{i:04d}" for i in range(5)]
    live = await empty_store.vifs("i0002")
    assert [(r.port_id, r.position, r.revision) for r in live] == [
        (f"i0002-p{j}", j, 3) for j in range(3)
    ]
    assert live[0].vif == vif_json("i0002-p0")
    assert live[0].created_at == clock.now
    # positions go on from where the load left them (never reused)
    await empty_store.put_vif("i0002", "new", vif_json("new"), 1)
    assert [r.position for r in await empty_store.vifs("i0002")] == [0, 1, 2, 3]


async def test_bulk_load_refuses_what_exists(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    with pytest.raises(StoreError):
        await store.bulk_load("host-1", [("other", "p1", vif_json("p1"), 1)])
    with pytest.raises(StoreError):  # an instance that exists already
        await store.bulk_load("host-1", [(INSTANCE_B, "p9", vif_json("p9"), 1)])
    assert await store.vif("p9") is None
    with pytest.raises(ValueError, match="chunk"):
        await store.bulk_load("host-1", [], chunk=0)


async def test_vif_heads_are_every_row_without_its_vif(store: SqlStore, clock: FakeClock) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 4)
    clock.now += 10
    await store.put_vif(INSTANCE_B, "p2", vif_json("p2"), 2)
    await store.tombstone_vif("p2", 2)
    with statements(store) as seen:
        heads = await store.vif_heads()
    assert sorted(heads) == [
        VifHead("p1", INSTANCE_A, 4, False, clock.now - 10),
        VifHead("p2", INSTANCE_B, 2, True, clock.now),
    ]
    assert all(isinstance(h.revision, int) and isinstance(h.deleted, bool) for h in heads)
    [select] = [s for s in seen if s.startswith("SELECT")]
    assert "vifs.vif" not in select  # no JSON read
    # only what was written since a moment of the store's clock
    assert store.now() == clock.now
    assert [h.port_id for h in await store.vif_heads(since=store.now())] == ["p2"]
    assert await store.vif_heads(since=clock.now + 1) == []


async def test_vif_texts_are_the_live_rows_as_stored(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1", tag="ünï"), 4)
    await store.put_vif(INSTANCE_A, "p2", vif_json("p2"), 1)
    await store.tombstone_vif("p2", 1)
    await store.put_vif(INSTANCE_B, "p3", vif_json("p3"), 1)
    texts = await store.vif_texts([INSTANCE_A])
    assert [(t.port_id, t.instance_uuid, t.revision) for t in texts] == [("p1", INSTANCE_A, 4)]
    row = await store.vif("p1")
    assert row is not None
    assert json.loads(texts[0].text) == row.vif
    assert await store.vif_texts([]) == []


async def test_vif_texts_of_many_instances_take_a_few_statements(empty_store: SqlStore) -> None:
    await empty_store.bulk_load("h", rows(2, 1200))
    with statements(empty_store) as seen:
        texts = await empty_store.vif_texts([f"i{i:04d}" for i in range(1200)] + ["nobody"])
    assert len(texts) == 2400
    assert len({t.port_id for t in texts}) == 2400
    assert len([s for s in seen if s.startswith("SELECT")]) == 3  # ids in chunks of 500


async def test_seeded_state_and_cached_rows_agree(empty_store: SqlStore) -> None:
    """`hotport.sim.bulk`: the rows it builds are the seeded ports' VIFs, in line."""
    state = SimState(seed=3)
    layout = seed_state(
        state, host="h", instances=4, ports_per_instance=3, networks=2, floating_ips=2
    )
    assert layout.port_count == 12
    assert len(layout.floating_ips) == 2
    loaded = list(cached_vifs(state, layout))
    assert await empty_store.bulk_load("h", loaded) == (4, 12)
    for inst, port_id, vif, revision in loaded:
        port = state.get("port", port_id)
        assert (port["device_id"], port["binding:host_id"], port["status"]) == (inst, "h", "ACTIVE")
        assert port["revision_number"] == revision == PORT_REVISION
        assert vif["address"] == port["mac_address"]
        assert [ip["address"] for s in vif["network"]["subnets"] for ip in s["ips"]] == [
            ip["ip_address"] for ip in port["fixed_ips"]
        ]
    with_fip = [v for _, _, v, _ in loaded if v["network"]["subnets"][0]["ips"][0]["floating_ips"]]
    assert len(with_fip) == 2
    macs = [state.ports[p]["mac_address"] for ports in layout.ports.values() for p in ports]
    assert len(set(macs)) == len(macs)
    addresses = [ip["ip_address"] for p in state.ports.values() for ip in p["fixed_ips"]]
    assert len(set(addresses)) == len(addresses)
