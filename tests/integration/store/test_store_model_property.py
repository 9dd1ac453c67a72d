"""Property: over random sequences of writes, `SqlStore` behaves exactly like the tiny
in-memory model of the rules (same outcome for every call, same rows afterwards)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_reference_model import ModelStore
from store_testlib import INSTANCE_A, INSTANCE_B, FakeClock, sqlite_url

from hotport.store.sql import open_store

INSTANCES = [INSTANCE_A, INSTANCE_B]
PORTS = ["p1", "p2", "p3"]
revisions = st.integers(min_value=0, max_value=3)
# mostly unconditional writes; a compare-and-swap now and then
maybe_revision = st.sampled_from([None, None, None, 0, 1, 2, 3])
maybe_deleted = st.sampled_from([None, None, None, False, True])

put = st.tuples(
    st.just("put"),
    st.sampled_from(INSTANCES),
    st.sampled_from(PORTS),
    revisions,
    maybe_revision,
    maybe_deleted,
)
operations = st.one_of(
    put,
    put,
    put,
    st.tuples(st.just("tombstone"), st.sampled_from(PORTS), revisions, maybe_revision),
    st.tuples(st.just("active"), st.sampled_from(PORTS), st.booleans()),
    st.tuples(
        st.just("replace"),
        st.sampled_from(INSTANCES),
        st.lists(st.tuples(st.sampled_from(PORTS), revisions), unique_by=lambda t: t[0]),
    ),
    st.tuples(st.just("purge"), st.integers(min_value=0, max_value=5)),
)

_counter = itertools.count()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the two instances, copied for every example."""
    path = tmp_path_factory.mktemp("model") / "template.db"

    async def build() -> None:
        store = await open_store(sqlite_url(path))
        for uuid in INSTANCES:
            await store.create_instance(uuid, uuid[:4], "host")
        await store.close()

    asyncio.run(build())
    return path


async def run(path: Path, ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock(0.0)
    store = await open_store(sqlite_url(path), migrate=False, clock=clock)
    model = ModelStore(INSTANCES)
    try:
        for step, op in enumerate(ops):
            clock.advance(1.0)
            now = clock.now
            vif = {"id": "?", "step": step}
            match op:
                case ("put", instance, port, revision, expect, expect_deleted):
                    got = await store.put_vif(
                        instance,
                        port,
                        {**vif, "id": port},
                        revision,
                        expect=expect,
                        expect_deleted=expect_deleted,
                    )
                    want = model.put(
                        instance, port, {**vif, "id": port}, revision, now, expect, expect_deleted
                    )
                    assert got.reason == want, (step, op)
                case ("tombstone", port, revision, expect):
                    got = await store.tombstone_vif(port, revision, expect=expect)
                    assert got.reason == model.tombstone(port, revision, now, expect), (step, op)
                case ("active", port, active):
                    got_active = await store.set_active(port, active)
                    assert got_active == model.set_active(port, active, now), (step, op)
                case ("replace", instance, listed):
                    rows = [(port, {**vif, "id": port}, rev) for port, rev in listed]
                    await store.replace_instance_vifs(instance, rows)
                    model.replace_all(instance, rows, now)
                case ("purge", age):
                    older_than = now - age
                    assert await store.purge_tombstones(older_than) == model.purge(older_than)
                case _:
                    raise AssertionError(op)

        stored = {
            r.port_id: (r.instance_uuid, r.position, r.vif, r.revision, r.deleted, r.updated_at)
            for r in await store.all_vifs(include_deleted=True)
        }
        expected = {
            port: (r.instance, r.position, r.vif, r.revision, r.deleted, r.updated_at)
            for port, r in model.rows.items()
        }
        assert stored == expected
        assert store.refused_writes() == dict(model.refused)
        for instance in INSTANCES:  # live rows in order of position
            live = [r.port_id for r in await store.vifs(instance)]
            want = sorted(
                (p for p, r in model.rows.items() if r.instance == instance and not r.deleted),
                key=lambda p: model.rows[p].position,
            )
            assert live == want
    finally:
        await store.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(operations, min_size=1, max_size=25))
def test_sql_store_matches_the_reference_model(
    template: Path, tmp_path: Path, ops: list[tuple[Any, ...]]
) -> None:
    path = tmp_path / f"example-{next(_counter)}.db"
    shutil.copyfile(template, path)
    try:
        asyncio.run(run(path, ops))
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
