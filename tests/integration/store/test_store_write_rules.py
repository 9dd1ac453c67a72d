"""The write rules of base.py, case by case: no row / live / tombstone x older / equal /
newer x compare-and-swap (none, match, mismatch), for live writes and for tombstones."""

from __future__ import annotations

import logging

import pytest
from store_testlib import INSTANCE_A, FakeClock, vif_json

from hotport.store.base import InstanceNotFound, VifRow
from hotport.store.sql import SqlStore

PORT = "port-1"
ROW_REV = 5  # the revision the existing row (live or tombstone) carries
OLDER, EQUAL, NEWER = ROW_REV - 1, ROW_REV, ROW_REV + 1
MATCH, MISMATCH = ROW_REV, ROW_REV - 2


async def given(store: SqlStore, clock: FakeClock, state: str) -> VifRow | None:
    """Put the port's row in `state`: 'none', 'live' or 'tombstone' (at ROW_REV)."""
    if state == "none":
        return None
    assert (await store.put_vif(INSTANCE_A, PORT, vif_json(PORT, v="old"), ROW_REV)).applied
    if state == "tombstone":
        assert (await store.tombstone_vif(PORT, ROW_REV)).applied
    clock.advance(10)
    row = await store.vif(PORT)
    assert row is not None
    return row


# (state, revision, expect, expect_deleted, outcome)
PUT_CASES = [
    # no row: created whatever the revision; any expectation fails (there is no row)
    ("none", OLDER, None, None, "applied"),
    ("none", EQUAL, None, None, "applied"),
    ("none", NEWER, None, None, "applied"),
    ("none", NEWER, MATCH, None, "conflict"),
    ("none", NEWER, MISMATCH, None, "conflict"),
    ("none", NEWER, None, False, "conflict"),
    ("none", NEWER, None, True, "conflict"),
    # live row: revision >= row.revision applies
    ("live", OLDER, None, None, "stale"),
    ("live", EQUAL, None, None, "applied"),
    ("live", NEWER, None, None, "applied"),
    ("live", OLDER, MATCH, None, "stale"),
    ("live", EQUAL, MATCH, None, "applied"),
    ("live", NEWER, MATCH, None, "applied"),
    ("live", OLDER, MISMATCH, None, "conflict"),
    ("live", EQUAL, MISMATCH, None, "conflict"),
    ("live", NEWER, MISMATCH, None, "conflict"),
    ("live", NEWER, MATCH, False, "applied"),
    ("live", NEWER, MATCH, True, "conflict"),
    ("live", NEWER, None, False, "applied"),
    ("live", NEWER, None, True, "conflict"),
    # tombstone: only a strictly newer revision resurrects
    ("tombstone", OLDER, None, None, "stale"),
    ("tombstone", EQUAL, None, None, "stale"),
    ("tombstone", NEWER, None, None, "applied"),
    ("tombstone", OLDER, MATCH, None, "stale"),
    ("tombstone", EQUAL, MATCH, None, "stale"),
    ("tombstone", NEWER, MATCH, None, "applied"),
    ("tombstone", OLDER, MISMATCH, None, "conflict"),
    ("tombstone", EQUAL, MISMATCH, None, "conflict"),
    ("tombstone", NEWER, MISMATCH, None, "conflict"),
    ("tombstone", NEWER, MATCH, True, "applied"),
    ("tombstone", NEWER, MATCH, False, "conflict"),
    ("tombstone", NEWER, None, True, "applied"),
    ("tombstone", NEWER, None, False, "conflict"),
]


@pytest.mark.parametrize(("state", "revision", "expect", "expect_deleted", "outcome"), PUT_CASES)
async def test_put_vif_rule(
    store: SqlStore,
    clock: FakeClock,
    state: str,
    revision: int,
    expect: int | None,
    expect_deleted: bool | None,
    outcome: str,
) -> None:
    before = await given(store, clock, state)
    new = vif_json(PORT, v="new")

    result = await store.put_vif(
        INSTANCE_A, PORT, new, revision, expect=expect, expect_deleted=expect_deleted
    )

    assert result.reason == outcome
    after = await store.vif(PORT)
    assert result.row == after
    if outcome == "applied":
        assert after is not None
        assert (after.revision, after.deleted, after.vif) == (revision, False, new)
        assert after.instance_uuid == INSTANCE_A
        assert after.updated_at == clock.now
        assert store.refused_writes() == {"stale": 0, "conflict": 0}
    else:
        assert after == before  # nothing changed, not even updated_at
        assert store.refused_writes()[outcome] == 1


# (state, revision, expect, outcome)
TOMBSTONE_CASES = [
    ("none", OLDER, None, "missing"),
    ("none", EQUAL, None, "missing"),
    ("none", NEWER, None, "missing"),
    ("none", NEWER, MATCH, "missing"),
    ("none", NEWER, MISMATCH, "missing"),
    ("live", OLDER, None, "stale"),
    ("live", EQUAL, None, "applied"),
    ("live", NEWER, None, "applied"),
    ("live", OLDER, MATCH, "stale"),
    ("live", EQUAL, MATCH, "applied"),
    ("live", NEWER, MATCH, "applied"),
    ("live", OLDER, MISMATCH, "conflict"),
    ("live", EQUAL, MISMATCH, "conflict"),
    ("live", NEWER, MISMATCH, "conflict"),
    ("tombstone", OLDER, None, "stale"),
    ("tombstone", EQUAL, None, "applied"),
    ("tombstone", NEWER, None, "applied"),
    ("tombstone", OLDER, MATCH, "stale"),
    ("tombstone", EQUAL, MATCH, "applied"),
    ("tombstone", NEWER, MATCH, "applied"),
    ("tombstone", OLDER, MISMATCH, "conflict"),
    ("tombstone", EQUAL, MISMATCH, "conflict"),
    ("tombstone", NEWER, MISMATCH, "conflict"),
]


@pytest.mark.parametrize(("state", "revision", "expect", "outcome"), TOMBSTONE_CASES)
async def test_tombstone_vif_rule(
    store: SqlStore,
    clock: FakeClock,
    state: str,
    revision: int,
    expect: int | None,
    outcome: str,
) -> None:
    before = await given(store, clock, state)

    result = await store.tombstone_vif(PORT, revision, expect=expect)

    assert result.reason == outcome
    after = await store.vif(PORT)
    assert result.row == after
    if outcome == "applied":
        assert before is not None
        assert after is not None
        assert (after.revision, after.deleted) == (revision, True)
        # a tombstone keeps the VIF, its instance, its position and its creation time
        assert (after.vif, after.instance_uuid, after.position, after.created_at) == (
            before.vif,
            before.instance_uuid,
            before.position,
            before.created_at,
        )
        assert after.updated_at == clock.now
    else:
        assert after == before
    expected_refusals = {"stale": 0, "conflict": 0}
    if outcome in expected_refusals:
        expected_refusals[outcome] = 1
    assert store.refused_writes() == expected_refusals  # 'missing' is no refusal


async def test_tombstoned_row_is_hidden_from_live_reads(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 1)
    await store.tombstone_vif(PORT, 1)
    assert await store.vifs(INSTANCE_A) == []
    assert [r.port_id for r in await store.vifs(INSTANCE_A, include_deleted=True)] == [PORT]
    assert await store.all_vifs() == []
    assert [r.port_id for r in await store.all_vifs(include_deleted=True)] == [PORT]
    row = await store.vif(PORT)  # `vif` returns tombstones too
    assert row is not None
    assert row.deleted


async def test_refusals_accumulate_by_reason(store: SqlStore) -> None:
    await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 3)
    await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 1)
    await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 2)
    await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 4, expect=9)
    await store.tombstone_vif(PORT, 1)
    await store.tombstone_vif("nobody", 1)
    assert store.refused_writes() == {"stale": 3, "conflict": 1}


async def test_refusal_is_logged_at_debug_without_the_vif(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "MARKER-IN-VIF-JSON"
    await store.put_vif(INSTANCE_A, PORT, vif_json(PORT, note=marker), 7)
    with caplog.at_level(logging.DEBUG, logger="hotport.store"):
        await store.put_vif(INSTANCE_A, PORT, vif_json(PORT, note=marker), 6)
        await store.tombstone_vif(PORT, 8, expect=3)
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2
    assert all(r.levelno == logging.DEBUG for r in refusals)
    text = refusals[0].getMessage()
    assert PORT in text
    assert "revision=6" in text
    assert "row_revision=7" in text
    assert "reason=stale" in text
    assert "reason=conflict" in refusals[1].getMessage()
    assert not any(marker in r.getMessage() for r in caplog.records)


async def test_put_vif_to_an_unknown_or_deleted_instance(store: SqlStore) -> None:
    with pytest.raises(InstanceNotFound):
        await store.put_vif("no-such-instance", PORT, vif_json(PORT), 1)
    await store.delete_instance(INSTANCE_A)
    with pytest.raises(InstanceNotFound):
        await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 1)
    assert await store.vif(PORT) is None


async def test_bad_input_is_refused_before_anything_changes(store: SqlStore) -> None:
    with pytest.raises(TypeError):
        await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), "3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.tombstone_vif(PORT, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot be stored"):
        await store.put_vif(INSTANCE_A, PORT, {"id": PORT, "x": object()}, 1)
    assert await store.vif(PORT) is None
    assert await store.vifs(INSTANCE_A, include_deleted=True) == []


async def test_applied_write_stores_a_copy_of_the_vif(store: SqlStore) -> None:
    data = vif_json(PORT)
    await store.put_vif(INSTANCE_A, PORT, data, 1)
    data["active"] = True  # the caller's dict changing later changes nothing stored
    row = await store.vif(PORT)
    assert row is not None
    assert row.vif["active"] is False
