"""Fixtures of the SQL store tests: a real SQLite file per test and a hand-driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock, sqlite_url

from hotport.store.sql import SqlStore, open_store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "hotport.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return sqlite_url(db_path)


@pytest.fixture
async def empty_store(db_url: str, clock: FakeClock) -> AsyncIterator[SqlStore]:
    store = await open_store(db_url, clock=clock)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(empty_store: SqlStore) -> SqlStore:
    """A store with two instances, A and B, on host-1."""
    await empty_store.create_instance(INSTANCE_A, "vm-a", "host-1")
    await empty_store.create_instance(INSTANCE_B, "vm-b", "host-1")
    return empty_store
