"""Positions: the order of attachment, kept on update, new on resurrection and on a move
between instances, never reused (not even after a purge or a re-created instance)."""

from __future__ import annotations

from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock, vif_json

from hotport.store.sql import SqlStore


async def order(store: SqlStore, instance: str) -> list[tuple[str, int]]:
    return [(r.port_id, r.position) for r in await store.vifs(instance)]


async def test_positions_follow_the_order_of_attachment(store: SqlStore) -> None:
    for port in ("p-c", "p-a", "p-b"):  # not alphabetical on purpose
        assert (await store.put_vif(INSTANCE_A, port, vif_json(port), 1)).applied
    assert await order(store, INSTANCE_A) == [("p-c", 0), ("p-a", 1), ("p-b", 2)]
    assert [r.port_id for r in await store.all_vifs()] == ["p-c", "p-a", "p-b"]


async def test_positions_are_per_instance(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "a1", vif_json("a1"), 1)
    await store.put_vif(INSTANCE_B, "b1", vif_json("b1"), 1)
    await store.put_vif(INSTANCE_A, "a2", vif_json("a2"), 1)
    assert await order(store, INSTANCE_A) == [("a1", 0), ("a2", 1)]
    assert await order(store, INSTANCE_B) == [("b1", 0)]
    # all_vifs: instance by instance, then by position
    rows = [(r.instance_uuid, r.port_id) for r in await store.all_vifs()]
    assert rows == [(INSTANCE_A, "a1"), (INSTANCE_A, "a2"), (INSTANCE_B, "b1")]


async def test_updates_keep_the_position(store: SqlStore, clock: FakeClock) -> None:
    for port in ("p1", "p2", "p3"):
        await store.put_vif(INSTANCE_A, port, vif_json(port), 1)
    created = (await store.vif("p1")).created_at  # type: ignore[union-attr]
    clock.advance(5)
    assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1", x=1), 1)).applied  # equal
    assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1", x=2), 4)).applied  # newer
    assert await store.set_active("p1", True)
    assert await order(store, INSTANCE_A) == [("p1", 0), ("p2", 1), ("p3", 2)]
    row = await store.vif("p1")
    assert row is not None
    assert row.created_at == created
    assert row.updated_at == clock.now


async def test_a_tombstone_keeps_its_position(store: SqlStore) -> None:
    for port in ("p1", "p2"):
        await store.put_vif(INSTANCE_A, port, vif_json(port), 1)
    await store.tombstone_vif("p1", 2)
    rows = await store.vifs(INSTANCE_A, include_deleted=True)
    assert [(r.port_id, r.position, r.deleted) for r in rows] == [
        ("p1", 0, True),
        ("p2", 1, False),
    ]


async def test_resurrection_moves_the_port_to_the_end(store: SqlStore, clock: FakeClock) -> None:
    for port in ("p1", "p2", "p3"):
        await store.put_vif(INSTANCE_A, port, vif_json(port), 1)
    await store.tombstone_vif("p1", 1)
    clock.advance(7)
    assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 2)).applied
    assert await order(store, INSTANCE_A) == [("p2", 1), ("p3", 2), ("p1", 3)]
    row = await store.vif("p1")
    assert row is not None
    assert row.created_at == clock.now


async def test_a_move_to_another_instance_gets_a_new_position_there(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_B, "b1", vif_json("b1"), 1)
    await store.put_vif(INSTANCE_B, "b2", vif_json("b2"), 1)
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 3)
    await store.put_vif(INSTANCE_A, "p2", vif_json("p2"), 3)

    moved = await store.put_vif(INSTANCE_B, "p1", vif_json("p1"), 3)  # equal revision: live
    assert moved.applied
    assert moved.row is not None
    assert (moved.row.instance_uuid, moved.row.position) == (INSTANCE_B, 2)
    assert await order(store, INSTANCE_A) == [("p2", 1)]
    assert await order(store, INSTANCE_B) == [("b1", 0), ("b2", 1), ("p1", 2)]

    # ... and back again: a new position at A too, never the old 0
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 4)
    assert await order(store, INSTANCE_A) == [("p2", 1), ("p1", 2)]


async def test_positions_are_never_reused(store: SqlStore, clock: FakeClock) -> None:
    for port in ("p1", "p2"):
        await store.put_vif(INSTANCE_A, port, vif_json(port), 1)
    await store.tombstone_vif("p2", 1)
    clock.advance(100)
    assert await store.purge_tombstones(clock.now) == 1
    await store.put_vif(INSTANCE_A, "p3", vif_json("p3"), 1)
    assert await order(store, INSTANCE_A) == [("p1", 0), ("p3", 2)]
    # a re-created instance goes on counting
    await store.delete_instance(INSTANCE_A)
    await store.create_instance(INSTANCE_A, "vm-a", "host-1")
    await store.put_vif(INSTANCE_A, "p4", vif_json("p4"), 1)
    assert (await store.vif("p4")).position == 3  # type: ignore[union-attr]


async def test_refused_writes_take_no_position(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 5)
    await store.tombstone_vif("p1", 5)
    assert not (await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 5)).applied  # stale
    assert not (await store.put_vif(INSTANCE_B, "p1", vif_json("p1"), 6, expect=1)).applied
    await store.put_vif(INSTANCE_A, "p2", vif_json("p2"), 1)
    await store.put_vif(INSTANCE_B, "p3", vif_json("p3"), 1)
    assert (await store.vif("p2")).position == 1  # type: ignore[union-attr]
    assert (await store.vif("p3")).position == 0  # type: ignore[union-attr]
