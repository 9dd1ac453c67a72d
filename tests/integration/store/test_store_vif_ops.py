"""set_active, the unconditional replace_instance_vifs, tombstone purge, and the reads
(one query for every row of every instance)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock, vif_json

from hotport.store import schema
from hotport.store.base import InstanceNotFound, StoreError
from hotport.store.sql import SqlStore


@contextmanager
def statements(store: SqlStore) -> Iterator[list[str]]:
    """Every SQL statement the store's engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sync_engine = store.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


# -- set_active ---------------------------------------------------------------------------


async def test_set_active_edits_the_live_vif_only(store: SqlStore, clock: FakeClock) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1", active=False), 4)
    before = await store.vif("p1")
    clock.advance(3)

    assert await store.set_active("p1", True) is True

    after = await store.vif("p1")
    assert before is not None
    assert after is not None
    assert after.vif == {**before.vif, "active": True}
    assert (after.revision, after.position, after.deleted) == (4, 0, False)
    assert after.updated_at == clock.now
    assert await store.set_active("p1", False) is True
    assert (await store.vif("p1")).vif["active"] is False  # type: ignore[union-attr]


async def test_set_active_on_a_tombstone_or_unknown_port(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    await store.tombstone_vif("p1", 1)
    before = await store.vif("p1")
    assert await store.set_active("p1", True) is False
    assert await store.vif("p1") == before
    assert await store.set_active("nobody", True) is False


async def test_set_active_does_not_make_an_older_write_win(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 4)
    await store.set_active("p1", True)
    assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 3)).reason == "stale"
    assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 4, expect=4)).applied


# -- replace_instance_vifs ------------------------------------------------------------------


async def test_replace_overwrites_newer_revisions_that_is_its_purpose(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1", v="newest"), 9)
    # a whole-blob writer that read the instance at revision 3 writes it back
    await store.replace_instance_vifs(INSTANCE_A, [("p1", vif_json("p1", v="old"), 3)])
    row = await store.vif("p1")
    assert row is not None
    assert (row.revision, row.vif["v"], row.deleted) == (3, "old", False)
    assert store.refused_writes() == {"stale": 0, "conflict": 0}  # nothing was refused


async def test_replace_loses_a_concurrent_attach(store: SqlStore) -> None:
    """The lost-update race the `article` policy reproduces: read, attach, write back."""
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    snapshot = await store.vifs(INSTANCE_A)
    await store.put_vif(INSTANCE_A, "p2", vif_json("p2"), 1)  # another attach meanwhile
    await store.replace_instance_vifs(
        INSTANCE_A, [(r.port_id, r.vif, r.revision) for r in snapshot]
    )
    assert [r.port_id for r in await store.vifs(INSTANCE_A)] == ["p1"]  # p2 lost
    gone = await store.vif("p2")
    assert gone is not None
    assert gone.deleted
    assert gone.revision == 1


async def test_replace_positions_and_tombstones(store: SqlStore, clock: FakeClock) -> None:
    for port in ("p1", "p2", "p3"):
        await store.put_vif(INSTANCE_A, port, vif_json(port), 2)
    await store.tombstone_vif("p3", 2)
    await store.put_vif(INSTANCE_B, "b1", vif_json("b1"), 5)
    p2 = await store.vif("p2")
    clock.advance(10)

    await store.replace_instance_vifs(
        INSTANCE_A,
        [
            ("p2", vif_json("p2", v=2), 1),  # live here: keeps position 1
            ("new", vif_json("new"), 1),  # new: next position
            ("p3", vif_json("p3"), 1),  # tombstone: resurrected at a new position
            ("b1", vif_json("b1"), 1),  # B's: moved here, new position
        ],
    )

    rows = await store.vifs(INSTANCE_A, include_deleted=True)
    assert [(r.port_id, r.position, r.deleted, r.revision) for r in rows] == [
        ("p1", 0, True, 2),  # not listed: tombstoned, revision kept
        ("p2", 1, False, 1),
        ("new", 3, False, 1),
        ("p3", 4, False, 1),
        ("b1", 5, False, 1),
    ]
    assert await store.vifs(INSTANCE_B, include_deleted=True) == []
    by_port = {r.port_id: r for r in rows}
    assert p2 is not None
    assert by_port["p2"].created_at == p2.created_at
    assert all(r.updated_at == clock.now for r in rows)
    assert by_port["new"].created_at == by_port["p3"].created_at == clock.now


async def test_replace_with_nothing_tombstones_every_live_row(store: SqlStore) -> None:
    for port in ("p1", "p2"):
        await store.put_vif(INSTANCE_A, port, vif_json(port), 1)
    await store.put_vif(INSTANCE_B, "b1", vif_json("b1"), 1)
    await store.replace_instance_vifs(INSTANCE_A, [])
    assert await store.vifs(INSTANCE_A) == []
    assert len(await store.vifs(INSTANCE_A, include_deleted=True)) == 2
    assert [r.port_id for r in await store.vifs(INSTANCE_B)] == ["b1"]


async def test_replace_bad_input(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    with pytest.raises(InstanceNotFound):
        await store.replace_instance_vifs("no-such-instance", [])
    with pytest.raises(ValueError, match="twice"):
        await store.replace_instance_vifs(
            INSTANCE_A, [("p2", vif_json("p2"), 1), ("p2", vif_json("p2"), 2)]
        )
    assert [r.port_id for r in await store.vifs(INSTANCE_A, include_deleted=True)] == ["p1"]


# -- purge -------------------------------------------------------------------------------


async def test_purge_removes_only_old_tombstones(store: SqlStore, clock: FakeClock) -> None:
    clock.now = 50.0
    await store.put_vif(INSTANCE_A, "live-old", vif_json("live-old"), 1)
    await store.put_vif(INSTANCE_A, "t100", vif_json("t100"), 1)
    await store.put_vif(INSTANCE_A, "t150", vif_json("t150"), 1)
    await store.put_vif(INSTANCE_A, "t200", vif_json("t200"), 1)
    clock.now = 100.0
    await store.tombstone_vif("t100", 1)
    clock.now = 150.0
    await store.tombstone_vif("t150", 1)
    clock.now = 200.0
    await store.tombstone_vif("t200", 1)

    assert await store.purge_tombstones(150.0) == 1  # strictly older than
    left = {r.port_id for r in await store.all_vifs(include_deleted=True)}
    assert left == {"live-old", "t150", "t200"}
    assert await store.purge_tombstones(150.0) == 0
    assert await store.purge_tombstones(1e12) == 2
    assert [r.port_id for r in await store.all_vifs(include_deleted=True)] == ["live-old"]


async def test_a_purged_port_can_come_back(store: SqlStore, clock: FakeClock) -> None:
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 7)
    await store.tombstone_vif("p1", 7)
    clock.advance(1)
    assert await store.purge_tombstones(clock.now) == 1
    assert (await store.tombstone_vif("p1", 8)).reason == "missing"
    # without its tombstone the port is new again (the purge horizon bounds that risk)
    assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 7)).applied


# -- reads -------------------------------------------------------------------------------


async def test_all_vifs_is_one_query(store: SqlStore) -> None:
    """200 instances x 10 VIFs, read back by one SELECT (no N+1)."""
    now = time.time()
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.insert(schema.instances),
            [
                {"uuid": f"i{i:04d}", "name": f"vm{i}", "host": "h", "created_at": now}
                for i in range(200)
            ],
        )
        await conn.execute(
            sa.insert(schema.vifs),
            [
                {
                    "port_id": f"i{i:04d}-p{j}",
                    "instance_uuid": f"i{i:04d}",
                    "position": j,
                    "vif": vif_json(f"i{i:04d}-p{j}"),
                    "revision": 1,
                    "deleted": j == 9,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(200)
                for j in range(10)
            ],
        )

    with statements(store) as seen:
        live = await store.all_vifs()
        everything = await store.all_vifs(include_deleted=True)
        one = await store.vifs("i0007")

    selects = [s for s in seen if s.upper().startswith("SELECT")]
    assert len(selects) == 3  # one per call
    assert len(live) == 200 * 9
    assert len(everything) == 2000
    keys = [(r.instance_uuid, r.position) for r in everything]
    assert keys == sorted(keys)
    assert [r.position for r in one] == list(range(9))


async def test_write_transactions_begin_immediate_reads_do_not(store: SqlStore) -> None:
    with statements(store) as writes:
        await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    with statements(store) as reads:
        await store.vif("p1")
    assert writes[0] == "BEGIN IMMEDIATE"
    assert reads[0] == "BEGIN"
    assert not any("IMMEDIATE" in s for s in reads)


async def test_a_closed_store_refuses_work(store: SqlStore) -> None:
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.vif("p1")
    with pytest.raises(StoreError, match="closed"):
        await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
