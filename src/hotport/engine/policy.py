"""Cache write policies: how an operation's result reaches the VIF rows.

Owns: `CachePolicy` and its implementations, and `POLICIES`, the policies by name (the
`--policy` of `hotport serve`, `build_manager(policy=...)`).

- `HotportPolicy` (ours): one row per VIF, every write conditional on the port's Neutron
  revision (and, for the heal, compare-and-swap on the row's revision). No instance lock
  is needed for correctness: two ports of one instance never touch each other's row.
- `ArticlePolicy` (the reference design with the KNOWN RACE, kept on purpose so that the
  invariant tests can show they catch it and the benchmarks can compare with it): the
  instance's whole network info is read when the operation starts (`snapshot`) and
  written back whole, unconditionally, when it ends (read-modify-write of the blob under
  only the port lock). Two operations on different ports of one instance that overlap
  lose one of the two updates. The requests its operations send are those of the
  article's design (`hotport.engine.reference`), not hotport's.
- `LegacyPolicy` (the old design, upstream Nova): the same whole-blob writes; its
  operations (`hotport.engine.reference`) rebuild the whole network info from the network
  service under `refresh_cache-{instance}` and write it back whole; only the
  `network-vif-deleted` handler and recovery use these read-modify-write writes.

Which operations run is the manager's choice by policy name: `hotport` runs attach.py,
detach.py, events.py and heal.py; `article` and `legacy` run `hotport.engine.reference`.

Must never: take locks, call the network service or the hypervisor.

Concurrency: stateless; each call is one store transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hotport.store.base import Store, WriteOutcome

Snapshot = tuple[tuple[str, dict[str, Any], int], ...] | None


class CachePolicy(Protocol):
    name: str

    async def snapshot(self, store: Store, instance_uuid: str) -> Snapshot:
        """Called when an operation starts, before any network or hypervisor call."""
        ...

    async def put(
        self,
        store: Store,
        snap: Snapshot,
        instance_uuid: str,
        port_id: str,
        vif: Mapping[str, Any],
        revision: int,
        *,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> WriteOutcome: ...

    async def remove(
        self,
        store: Store,
        snap: Snapshot,
        instance_uuid: str,
        port_id: str,
        revision: int,
        *,
        expect: int | None = None,
    ) -> WriteOutcome: ...


class HotportPolicy:
    name = "hotport"

    async def snapshot(self, store: Store, instance_uuid: str) -> Snapshot:
        return None  # nothing to read: every write is conditional on its own row

    async def put(
        self,
        store: Store,
        snap: Snapshot,
        instance_uuid: str,
        port_id: str,
        vif: Mapping[str, Any],
        revision: int,
        *,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> WriteOutcome:
        return await store.put_vif(
            instance_uuid, port_id, vif, revision, expect=expect, expect_deleted=expect_deleted
        )

    async def remove(
        self,
        store: Store,
        snap: Snapshot,
        instance_uuid: str,
        port_id: str,
        revision: int,
        *,
        expect: int | None = None,
    ) -> WriteOutcome:
        return await store.tombstone_vif(port_id, revision, expect=expect)


class ArticlePolicy:
    """Read-modify-write of the whole instance blob. Deliberately racy (see module doc)."""

    name = "article"

    async def snapshot(self, store: Store, instance_uuid: str) -> Snapshot:
        rows = await store.vifs(instance_uuid)
        return tuple((r.port_id, dict(r.vif), r.revision) for r in rows)

    async def put(
        self,
        store: Store,
        snap: Snapshot,
        instance_uuid: str,
        port_id: str,
        vif: Mapping[str, Any],
        revision: int,
        *,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> WriteOutcome:
        base = snap if snap is not None else await self.snapshot(store, instance_uuid)
        assert base is not None
        blob = [row for row in base if row[0] != port_id]
        blob.append((port_id, dict(vif), revision))
        await store.replace_instance_vifs(instance_uuid, blob)
        return WriteOutcome("applied", await store.vif(port_id))

    async def remove(
        self,
        store: Store,
        snap: Snapshot,
        instance_uuid: str,
        port_id: str,
        revision: int,
        *,
        expect: int | None = None,
    ) -> WriteOutcome:
        base = snap if snap is not None else await self.snapshot(store, instance_uuid)
        assert base is not None
        await store.replace_instance_vifs(instance_uuid, [r for r in base if r[0] != port_id])
        return WriteOutcome("applied", await store.vif(port_id))


class LegacyPolicy(ArticlePolicy):
    """The old design's cache writes: whole-blob, unconditional (Nova's info cache save)."""

    name = "legacy"


POLICIES: dict[str, CachePolicy] = {
    "hotport": HotportPolicy(),
    "article": ArticlePolicy(),
    "legacy": LegacyPolicy(),
}
