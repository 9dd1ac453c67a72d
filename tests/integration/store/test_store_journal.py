"""The operation journal: start, update, finish, listing newest first, open ports."""

from __future__ import annotations

import pytest
from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock

from hotport.store.base import StoreError
from hotport.store.sql import JournalEntryClosed, JournalEntryNotFound, SqlStore


async def test_lifecycle(empty_store: SqlStore, clock: FakeClock) -> None:
    store = empty_store
    clock.now = 10.0
    entry_id = await store.journal_start(INSTANCE_A, "p1", "attach", {"request": "r-1"})
    [entry] = await store.journal()
    assert (entry.id, entry.instance_uuid, entry.port_id, entry.kind) == (
        entry_id,
        INSTANCE_A,
        "p1",
        "attach",
    )
    assert (entry.state, entry.open, entry.error) == ("started", True, None)
    assert entry.details == {"request": "r-1"}
    assert entry.created_at == entry.updated_at == 10.0

    clock.now = 11.0
    await store.journal_update(entry_id, {"bound": True, "revision": 3})
    clock.now = 12.0
    await store.journal_update(entry_id, {"revision": 4})
    [entry] = await store.journal()
    assert entry.details == {"request": "r-1", "bound": True, "revision": 4}
    assert entry.updated_at == 12.0
    assert entry.open

    clock.now = 13.0
    await store.journal_finish(entry_id, "done", details={"plugged": True})
    [entry] = await store.journal()
    assert (entry.state, entry.open, entry.error) == ("done", False, None)
    assert entry.details == {"request": "r-1", "bound": True, "revision": 4, "plugged": True}
    assert (entry.created_at, entry.updated_at) == (10.0, 13.0)


@pytest.mark.parametrize("state", ["done", "failed", "rolled-back"])
async def test_finish_states_and_errors(empty_store: SqlStore, state: str) -> None:
    entry_id = await empty_store.journal_start(INSTANCE_A, "p1", "detach")
    error = None if state == "done" else "guest never released the device"
    await empty_store.journal_finish(entry_id, state, error=error)  # type: ignore[arg-type]
    [entry] = await empty_store.journal()
    assert (entry.state, entry.error, entry.details) == (state, error, {})
    assert await empty_store.open_ports() == set()


async def test_a_closed_entry_cannot_change(empty_store: SqlStore) -> None:
    entry_id = await empty_store.journal_start(INSTANCE_A, "p1", "attach")
    await empty_store.journal_finish(entry_id, "failed", error="boom")
    with pytest.raises(JournalEntryClosed, match="failed"):
        await empty_store.journal_update(entry_id, {"late": True})
    with pytest.raises(JournalEntryClosed):
        await empty_store.journal_finish(entry_id, "done")
    [entry] = await empty_store.journal()
    assert (entry.state, entry.error, entry.details) == ("failed", "boom", {})


async def test_unknown_entries_and_bad_arguments(empty_store: SqlStore) -> None:
    with pytest.raises(JournalEntryNotFound):
        await empty_store.journal_update(4242, {"x": 1})
    with pytest.raises(JournalEntryNotFound):
        await empty_store.journal_finish(4242, "done")
    entry_id = await empty_store.journal_start(INSTANCE_A, None, "heal")
    with pytest.raises(ValueError, match="final state"):
        await empty_store.journal_finish(entry_id, "started")
    with pytest.raises(ValueError, match="kind"):
        await empty_store.journal_start(INSTANCE_A, None, "reboot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        await empty_store.journal(limit=-1)
    assert issubclass(JournalEntryNotFound, StoreError)
    assert issubclass(JournalEntryClosed, StoreError)
    assert len(await empty_store.journal()) == 1


async def test_listing_newest_first_with_filters(empty_store: SqlStore) -> None:
    store = empty_store  # the clock stands still: order comes from the entry ids
    a1 = await store.journal_start(INSTANCE_A, "p1", "attach")
    b1 = await store.journal_start(INSTANCE_B, "p2", "attach")
    a2 = await store.journal_start(INSTANCE_A, None, "refresh")
    a3 = await store.journal_start(INSTANCE_A, "p3", "event", {"event": "network-changed"})
    await store.journal_finish(a2, "done")

    assert [e.id for e in await store.journal()] == [a3, a2, b1, a1]
    assert [e.id for e in await store.journal(instance_uuid=INSTANCE_A)] == [a3, a2, a1]
    assert [e.id for e in await store.journal(open_only=True)] == [a3, b1, a1]
    assert [e.id for e in await store.journal(instance_uuid=INSTANCE_A, open_only=True)] == [
        a3,
        a1,
    ]
    assert [e.id for e in await store.journal(limit=2)] == [a3, a2]
    assert await store.journal(limit=0) == []
    assert await store.journal(instance_uuid="nobody") == []


async def test_open_ports(empty_store: SqlStore) -> None:
    store = empty_store
    e1 = await store.journal_start(INSTANCE_A, "p1", "attach")
    await store.journal_start(INSTANCE_A, "p2", "detach")
    await store.journal_start(INSTANCE_A, "p2", "event")  # same port twice: one entry
    await store.journal_start(INSTANCE_A, None, "heal")  # no port: not listed
    assert await store.open_ports() == {"p1", "p2"}
    await store.journal_finish(e1, "rolled-back", error="bind failed")
    assert await store.open_ports() == {"p2"}


async def test_journal_counts_by_state(empty_store: SqlStore) -> None:
    store = empty_store
    assert await store.journal_counts() == {}
    e1 = await store.journal_start(INSTANCE_A, "p1", "attach")
    e2 = await store.journal_start(INSTANCE_A, "p2", "detach")
    await store.journal_start(INSTANCE_A, "p3", "attach")
    await store.journal_finish(e1, "done")
    await store.journal_finish(e2, "rolled-back", error="unbind failed")
    assert await store.journal_counts() == {"started": 1, "done": 1, "rolled-back": 1}


async def test_the_journal_survives_a_restart(db_url: str, empty_store: SqlStore) -> None:
    from hotport.store.sql import open_store

    entry_id = await empty_store.journal_start(INSTANCE_A, "p1", "attach", {"step": "bind"})
    await empty_store.close()
    again = await open_store(db_url)
    try:
        [entry] = await again.journal(open_only=True)
        assert (entry.id, entry.details) == (entry_id, {"step": "bind"})
        assert await again.open_ports() == {"p1"}
    finally:
        await again.close()


async def test_a_port_learnt_after_the_start_counts_as_open(empty_store: SqlStore) -> None:
    store = empty_store
    entry_id = await store.journal_start(INSTANCE_A, None, "attach", {"created": True})
    assert await store.open_ports() == set()
    await store.journal_update(entry_id, {"port_id": "p-new"})
    assert await store.open_ports() == {"p-new"}
    [entry] = await store.journal()
    assert entry.port_id == "p-new"
    await store.journal_update(entry_id, {"port_id": "p-other"})  # the first one stays
    assert (await store.journal())[0].port_id == "p-new"
