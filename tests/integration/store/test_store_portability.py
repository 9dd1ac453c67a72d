"""Portable by design: every statement the store sends compiles for PostgreSQL (with
`FOR UPDATE` where rows are read to be written), the migration renders for PostgreSQL, the
only raw SQL is the SQLite engine set-up, and URLs without a driver get the async one."""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from store_testlib import INSTANCE_A, INSTANCE_B, vif_json

from hotport.store.sql import SqlStore, alembic_config, normalize_url, open_store


async def exercise(store: SqlStore) -> None:
    await store.create_instance(INSTANCE_A, "vm-a", "h")
    await store.create_instance(INSTANCE_B, "vm-b", "h")
    await store.get_instance(INSTANCE_A)
    await store.list_instances("h")
    await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    await store.put_vif(INSTANCE_A, "p2", vif_json("p2"), 1)
    await store.put_vif(INSTANCE_B, "p1", vif_json("p1"), 2)  # a move
    await store.put_vif(INSTANCE_B, "p1", vif_json("p1"), 3, expect=2, expect_deleted=False)
    await store.set_active("p1", True)
    await store.tombstone_vif("p2", 1)
    await store.replace_instance_vifs(INSTANCE_A, [("p3", vif_json("p3"), 1)])
    await store.replace_instance_vifs(INSTANCE_A, [("p3", vif_json("p3"), 2)])
    await store.vifs(INSTANCE_A, include_deleted=True)
    await store.vif("p1")
    await store.all_vifs()
    await store.purge_tombstones(1e12)
    entry = await store.journal_start(INSTANCE_A, "p1", "attach")
    await store.journal_update(entry, {"a": 1})
    await store.journal_finish(entry, "done")
    await store.journal(instance_uuid=INSTANCE_A, open_only=True, limit=5)
    await store.open_ports()
    await store.delete_instance(INSTANCE_B)


async def test_every_statement_compiles_for_postgresql(db_url: str) -> None:
    store = await open_store(db_url)
    statements: list[Any] = []

    def record(_conn: Any, clause: Any, *_args: Any) -> None:
        statements.append(clause)

    event.listen(store.engine.sync_engine, "before_execute", record)
    try:
        await exercise(store)
    finally:
        event.remove(store.engine.sync_engine, "before_execute", record)
        await store.close()

    raw = [s for s in statements if isinstance(s, str)]
    assert set(raw) <= {"BEGIN", "BEGIN IMMEDIATE"}  # the SQLite hooks, nothing else
    compiled = [
        str(s.compile(dialect=postgresql.dialect()))
        for s in statements
        if isinstance(s, sa.sql.ClauseElement)
    ]
    assert len(compiled) > 30
    locking = [c for c in compiled if c.startswith("SELECT") and "FOR UPDATE" in c]
    # the VIF row of each conditional write, the instance of create, journal entries
    assert any("FROM vifs" in c for c in locking)
    assert any("FROM instances" in c for c in locking)
    assert any("FROM journal" in c for c in locking)
    assert any(c.startswith("UPDATE instances SET next_position") for c in compiled)


async def test_the_migration_renders_for_postgresql() -> None:
    cfg = alembic_config()
    cfg.set_main_option("sqlalchemy.url", "postgresql+asyncpg://hotport@db.invalid/hotport")
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)  # offline: no driver, no server needed
    ddl = cfg.output_buffer.getvalue()
    for table in ("instances", "vifs", "journal"):
        assert f"CREATE TABLE {table}" in ddl
    assert "DOUBLE PRECISION" in ddl
    assert "vif JSON NOT NULL" in ddl
    assert "id SERIAL" in ddl
    assert "PRAGMA" not in ddl


def test_urls_get_their_async_driver() -> None:
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalize_url("sqlite+aiosqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


async def test_a_plain_sqlite_url_works(tmp_path: Any) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        assert store.engine.url.drivername == "sqlite+aiosqlite"
        await store.create_instance(INSTANCE_A, "vm", "h")
        assert (await store.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)).applied
    finally:
        await store.close()


async def test_an_in_memory_store_works() -> None:
    store = await open_store("sqlite+aiosqlite://")
    try:
        await exercise(store)
        assert [r.port_id for r in await store.vifs(INSTANCE_A)] == ["p3"]
    finally:
        await store.close()
