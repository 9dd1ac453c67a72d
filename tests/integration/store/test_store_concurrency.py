"""Concurrency on one SQLite file through separate `SqlStore` objects (separate engines and
connections, as separate processes would have), and through separate processes.

A trigger records every insert/update of a VIF row in commit order, so the test can check
the history: no applied write was ever older than one applied before it."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path

import pytest
from store_testlib import INSTANCE_A, sqlite_url, vif_json

from hotport.store.base import StoreUnavailable, WriteOutcome
from hotport.store.sql import SqlStore, open_store

PORT = "port-contended"

HISTORY_DDL = [
    """CREATE TABLE vif_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        port_id TEXT NOT NULL, revision INTEGER NOT NULL, deleted INTEGER NOT NULL,
        writer TEXT)""",
    """CREATE TRIGGER vif_history_insert AFTER INSERT ON vifs BEGIN
        INSERT INTO vif_history (port_id, revision, deleted, writer)
        VALUES (NEW.port_id, NEW.revision, NEW.deleted, json_extract(NEW.vif, '$.writer'));
    END""",
    """CREATE TRIGGER vif_history_update AFTER UPDATE ON vifs BEGIN
        INSERT INTO vif_history (port_id, revision, deleted, writer)
        VALUES (NEW.port_id, NEW.revision, NEW.deleted, json_extract(NEW.vif, '$.writer'));
    END""",
]


def install_history(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        for ddl in HISTORY_DDL:
            raw.execute(ddl)


def history(path: Path, port: str = PORT) -> list[tuple[int, bool, str | None]]:
    with sqlite3.connect(path) as raw:
        rows = raw.execute(
            "SELECT revision, deleted, writer FROM vif_history WHERE port_id = ? ORDER BY seq",
            (port,),
        ).fetchall()
    return [(int(r), bool(d), w) for r, d, w in rows]


@pytest.fixture
async def two_stores(db_path: Path) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    first = await open_store(sqlite_url(db_path))
    second = await open_store(sqlite_url(db_path))
    await first.create_instance(INSTANCE_A, "vm-a", "host-1")
    install_history(db_path)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_fifty_live_writers_on_one_port(
    two_stores: tuple[SqlStore, SqlStore], db_path: Path
) -> None:
    rng = random.Random(20251124)
    plan = [[rng.randint(0, 40) for _ in range(4)] for _ in range(50)]
    outcomes: list[tuple[str, int, WriteOutcome]] = []

    async def writer(n: int) -> None:
        store = two_stores[n % 2]
        for k, revision in enumerate(plan[n]):
            await asyncio.sleep(rng.random() / 500)
            name = f"w{n}.{k}"
            outcome = await store.put_vif(INSTANCE_A, PORT, vif_json(PORT, writer=name), revision)
            outcomes.append((name, revision, outcome))

    await asyncio.gather(*(writer(n) for n in range(50)))  # any exception fails the test

    applied = [(name, rev) for name, rev, o in outcomes if o.applied]
    refused = [(rev, o) for _, rev, o in outcomes if not o.applied]
    assert len(outcomes) == 200
    assert applied
    assert refused
    assert all(o.reason == "stale" for _, o in refused)
    # a refusal is justified: the row it met was newer
    assert all(o.row is not None and o.row.revision > rev for rev, o in refused)

    final = await two_stores[0].vif(PORT)
    assert final is not None
    assert not final.deleted
    assert final.revision == max(rev for _, rev in applied)

    seen = history(db_path)
    assert len(seen) == len(applied)  # one history row per applied write, none for refusals
    assert sorted(w for _, _, w in seen) == sorted(name for name, _ in applied)
    revisions = [rev for rev, _, _ in seen]
    assert all(a <= b for a, b in pairwise(revisions)), revisions
    assert (final.revision, final.vif["writer"]) == (seen[-1][0], seen[-1][2])
    assert final.position == 0  # created once, updated in place ever after
    refusals = two_stores[0].refused_writes()["stale"] + two_stores[1].refused_writes()["stale"]
    assert refusals == len(refused)


async def test_fifty_writers_mixing_tombstones_and_cas(
    two_stores: tuple[SqlStore, SqlStore], db_path: Path
) -> None:
    rng = random.Random(7)
    await two_stores[0].put_vif(INSTANCE_A, PORT, vif_json(PORT, writer="seed"), 0)
    applied: list[tuple[str, int, bool]] = []

    async def writer(n: int) -> None:
        store = two_stores[n % 2]
        for k in range(4):
            await asyncio.sleep(rng.random() / 500)
            name = f"w{n}.{k}"
            revision = rng.randint(0, 60)
            choice = rng.random()
            if choice < 0.25:
                outcome = await store.tombstone_vif(PORT, revision)
            elif choice < 0.5:
                row = await store.vif(PORT)
                assert row is not None
                outcome = await store.put_vif(
                    INSTANCE_A,
                    PORT,
                    vif_json(PORT, writer=name),
                    row.revision + 1,
                    expect=row.revision,
                    expect_deleted=row.deleted,
                )
                revision = row.revision + 1
            else:
                outcome = await store.put_vif(
                    INSTANCE_A, PORT, vif_json(PORT, writer=name), revision
                )
            if outcome.applied:
                assert outcome.row is not None
                applied.append((name, revision, outcome.row.deleted))

    await asyncio.gather(*(writer(n) for n in range(50)))

    seen = history(db_path)
    assert len(seen) == len(applied) + 1  # + the seed
    revisions = [rev for rev, _, _ in seen]
    assert all(a <= b for a, b in pairwise(revisions)), revisions
    final = await two_stores[1].vif(PORT)
    assert final is not None
    assert (final.revision, final.deleted) == seen[-1][:2]
    assert final.revision == max(rev for _, rev, _ in applied)


async def test_fifty_new_ports_get_fifty_distinct_positions(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    async def attach(n: int) -> WriteOutcome:
        port = f"port-{n:02d}"
        return await two_stores[n % 2].put_vif(INSTANCE_A, port, vif_json(port), 1)

    outcomes = await asyncio.gather(*(attach(n) for n in range(50)))
    assert all(o.applied for o in outcomes)
    rows = await two_stores[0].vifs(INSTANCE_A)
    assert sorted(r.position for r in rows) == list(range(50))


async def test_compare_and_swap_increments_are_never_lost(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    await two_stores[0].put_vif(INSTANCE_A, PORT, vif_json(PORT), 0)
    won_on: list[int] = []

    async def bump(n: int) -> None:
        store = two_stores[n % 2]
        for _ in range(200):
            row = await store.vif(PORT)
            assert row is not None
            outcome = await store.put_vif(
                INSTANCE_A, PORT, vif_json(PORT), row.revision + 1, expect=row.revision
            )
            if outcome.applied:
                won_on.append(row.revision)
                return
            assert outcome.reason == "conflict"
        raise AssertionError("never won")

    await asyncio.gather(*(bump(n) for n in range(30)))
    assert sorted(won_on) == list(range(30))  # each expected revision won exactly once
    final = await two_stores[0].vif(PORT)
    assert final is not None
    assert final.revision == 30


async def test_a_held_write_lock_is_unavailable_not_a_raw_error(db_path: Path, db_url: str) -> None:
    store = await open_store(db_url, busy_timeout=0.2)
    try:
        await store.create_instance(INSTANCE_A, "vm-a", "host-1")
        await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 1)
        other = sqlite3.connect(db_path, isolation_level=None)  # another process, say
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE vifs SET revision = 2")
            with pytest.raises(StoreUnavailable, match="locked") as info:
                await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 3)
            assert info.value.__cause__ is not None  # chained from the library error
            # WAL: readers are not blocked by the writer, and see the committed state
            row = await store.vif(PORT)
            assert row is not None
            assert row.revision == 1
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert (await store.put_vif(INSTANCE_A, PORT, vif_json(PORT), 3)).applied
    finally:
        await store.close()


async def test_two_processes_writing_one_port(db_path: Path) -> None:
    store = await open_store(sqlite_url(db_path))
    await store.create_instance(INSTANCE_A, "vm-a", "host-1")
    await store.close()
    install_history(db_path)
    script = textwrap.dedent(
        """
        import asyncio, json, random, sys
        from hotport.store.sql import open_store

        async def main(url: str, me: str, seed: int) -> None:
            rng = random.Random(seed)
            store = await open_store(url, migrate=False)
            applied = []

            async def task(n: int) -> None:
                for k in range(5):
                    rev = rng.randint(0, 100)
                    name = f"{me}.{n}.{k}"
                    vif = {"id": "port-contended", "writer": name}
                    o = await store.put_vif(sys.argv[4], "port-contended", vif, rev)
                    if o.applied:
                        applied.append([name, rev])

            await asyncio.gather(*(task(n) for n in range(25)))
            await store.close()
            print(json.dumps(applied))

        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
        """
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            sqlite_url(db_path),
            f"proc{n}",
            str(n),
            INSTANCE_A,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(2)
    ]
    results = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode() for _, err in results]
    applied = [tuple(a) for out, _ in results for a in json.loads(out)]
    seen = history(db_path)
    assert sorted(w for _, _, w in seen) == sorted(name for name, _ in applied)
    revisions = [rev for rev, _, _ in seen]
    assert all(a <= b for a, b in pairwise(revisions)), revisions
    store = await open_store(sqlite_url(db_path))
    try:
        final = await store.vif(PORT)
        assert final is not None
        assert final.revision == max(rev for _, rev in applied)
    finally:
        await store.close()
