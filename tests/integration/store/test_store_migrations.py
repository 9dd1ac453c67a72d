"""Alembic: a fresh file comes up at head, opening twice is idempotent, the migrated schema
is exactly the Python schema, the SQLite pragmas hold on every connection."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from store_testlib import INSTANCE_A, sqlite_url, vif_json

from hotport.store import schema
from hotport.store.base import StoreError, StoreUnavailable
from hotport.store.sql import MIGRATIONS_DIR, SqlStore, alembic_config, open_store

TABLES = {"instances", "vifs", "journal"}


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(store: SqlStore) -> str | None:
    async with store.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def schema_diff(store: SqlStore) -> list[Any]:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadata))

    async with store.engine.connect() as conn:
        return await conn.run_sync(diff)


def test_the_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert head() == "0001"


async def test_fresh_file_is_migrated_to_head(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "hotport.db"  # parents are created
    store = await open_store(sqlite_url(path))
    try:
        assert path.is_file()
        assert await current_revision(store) == head()
        async with store.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert names == TABLES | {"alembic_version"}
    finally:
        await store.close()


async def test_migrated_schema_matches_the_python_schema(empty_store: SqlStore) -> None:
    assert await schema_diff(empty_store) == []


async def test_opening_twice_is_idempotent(db_url: str) -> None:
    first = await open_store(db_url)
    await first.create_instance(INSTANCE_A, "vm", "h")
    await first.put_vif(INSTANCE_A, "p1", vif_json("p1"), 1)
    second = await open_store(db_url)  # while the first is still open
    try:
        assert await current_revision(second) == head()
        assert [r.port_id for r in await second.all_vifs()] == ["p1"]
        assert await schema_diff(second) == []
    finally:
        await first.close()
        await second.close()
    third = await open_store(db_url)
    try:
        assert await third.get_instance(INSTANCE_A) is not None
    finally:
        await third.close()


async def test_concurrent_opens_in_one_loop(db_url: str) -> None:
    stores = await asyncio.gather(*(open_store(db_url) for _ in range(4)))
    try:
        for store in stores:
            assert await current_revision(store) == head()
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_opens_from_separate_processes(db_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from hotport.store.sql import open_store

        async def main(url: str, me: str) -> None:
            store = await open_store(url)
            await store.create_instance(me, me, "host")
            await store.put_vif(me, "port-" + me, {"id": "port-" + me}, 1)
            await store.close()

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            sqlite_url(db_path),
            f"proc-{n}",
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(3)
    ]
    results = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in results]
    store = await open_store(sqlite_url(db_path), migrate=False)
    try:
        assert sorted(r.port_id for r in await store.all_vifs()) == [
            "port-proc-0",
            "port-proc-1",
            "port-proc-2",
        ]
    finally:
        await store.close()


async def test_downgrade_to_base_and_up_again(empty_store: SqlStore) -> None:
    def run(conn: Connection, target: str) -> None:
        cfg = alembic_config(conn)
        if target == "base":
            command.downgrade(cfg, "base")
        else:
            command.upgrade(cfg, target)

    async with empty_store.engine.begin() as conn:
        await conn.run_sync(run, "base")
    async with empty_store.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert names & TABLES == set()
    async with empty_store.engine.begin() as conn:
        await conn.run_sync(run, "head")
    assert await schema_diff(empty_store) == []


async def test_without_migration_a_fresh_file_has_no_tables(db_url: str) -> None:
    store = await open_store(db_url, migrate=False)
    try:
        with pytest.raises(StoreError) as info:
            await store.list_instances()
        assert not isinstance(info.value, StoreUnavailable)  # a permanent error
        assert "no such table" in str(info.value)
    finally:
        await store.close()


async def test_a_database_from_the_future_is_refused(db_path: Path, db_url: str) -> None:
    store = await open_store(db_url)
    await store.close()
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'ffff'")
    with pytest.raises(StoreError, match="ffff"):
        await open_store(db_url)


async def test_sqlite_pragmas(empty_store: SqlStore, db_path: Path) -> None:
    async with empty_store.engine.connect() as conn:
        pragmas = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }
    with sqlite3.connect(db_path) as raw:  # WAL is a property of the file
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_foreign_keys_are_enforced(empty_store: SqlStore) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        async with empty_store.engine.begin() as conn:
            await conn.execute(
                sa.insert(schema.vifs).values(
                    port_id="p1",
                    instance_uuid="no-such-instance",
                    position=0,
                    vif={},
                    revision=1,
                    deleted=False,
                    created_at=0.0,
                    updated_at=0.0,
                )
            )


async def test_an_unopenable_database_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "hotport.db").mkdir()  # a directory where the file should be
    with pytest.raises(StoreUnavailable, match="unable to open") as info:
        await open_store(sqlite_url(tmp_path / "hotport.db"))
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)


async def test_a_directory_that_cannot_be_made_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory"):
        await open_store(sqlite_url(blocker / "hotport.db"))
