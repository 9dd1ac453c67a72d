"""Checking DESIGN.md's invariants: what the tests and the consistency benchmark measure.

Owns:
- `audit(engine)`: compares, for every instance of the host, the ports bound to it at
  the network service, the live VIF rows of the cache, and the NICs its domain really
  has. Reports lost VIFs (bound, no row), ghost rows (a row, not bound), orphan NICs (a
  NIC no row accounts for), missing NICs (a row without its NIC), duplicates (one MAC
  twice in a domain, one port in two instances) and rows older than the port's revision.
- `RevisionWatch`: a `Store` wrapper that sees every applied VIF write and records any
  that put an older port revision over a newer one (it must never happen with hotport's
  policy; the `article` policy's whole-blob writes do it).

Must never: change anything (it only reads), or be used on the request path.

Concurrency: meaningful only once operations have settled (`InterfaceManager.drain`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hotport.engine.context import Engine
from hotport.store.base import Store, WriteOutcome


@dataclass
class AuditReport:
    instances: int = 0
    bound_ports: int = 0
    lost_vifs: list[dict[str, Any]] = field(default_factory=list)
    ghost_rows: list[dict[str, Any]] = field(default_factory=list)
    orphan_nics: list[dict[str, Any]] = field(default_factory=list)
    missing_nics: list[dict[str, Any]] = field(default_factory=list)
    duplicate_nics: list[dict[str, Any]] = field(default_factory=list)
    stale_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return (
            len(self.lost_vifs)
            + len(self.ghost_rows)
            + len(self.orphan_nics)
            + len(self.missing_nics)
            + len(self.duplicate_nics)
            + len(self.stale_rows)
        )

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "violations": self.violations}


async def audit(engine: Engine) -> AuditReport:
    report = AuditReport()
    instances = {i.uuid for i in await engine.store.list_instances(engine.host)}
    report.instances = len(instances)
    ports = [
        p for p in await engine.network.list_ports(host=engine.host) if p.device_id in instances
    ]
    report.bound_ports = len(ports)
    bound = {p.id: p for p in ports}
    rows = [r for r in await engine.store.all_vifs() if r.instance_uuid in instances]
    by_port = {r.port_id: r for r in rows}
    for p in ports:
        row = by_port.get(p.id)
        if row is None or row.instance_uuid != p.device_id:
            report.lost_vifs.append({"port_id": p.id, "instance": p.device_id})
        elif row.revision < (p.revision_number or 0):
            report.stale_rows.append(
                {"port_id": p.id, "row_revision": row.revision, "port_revision": p.revision_number}
            )
    for r in rows:
        if r.port_id not in bound:
            report.ghost_rows.append({"port_id": r.port_id, "instance": r.instance_uuid})
    macs_by_instance: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        macs_by_instance[r.instance_uuid].add(str(r.vif.get("address", "")).lower())
    for inst in sorted(instances):
        nics = [n.mac.lower() for n in await engine.virt.nics(inst)]
        for mac, count in Counter(nics).items():
            if count > 1:
                report.duplicate_nics.append({"instance": inst, "mac": mac, "count": count})
        for mac in set(nics) - macs_by_instance[inst]:
            report.orphan_nics.append({"instance": inst, "mac": mac})
        for mac in macs_by_instance[inst] - set(nics):
            report.missing_nics.append({"instance": inst, "mac": mac})
    return report


class RevisionWatch:
    """Wraps a `Store`; records applied writes that went backwards in port revision."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.max_seen: dict[str, int] = {}
        self.backwards: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _saw(self, port_id: str, revision: int, how: str) -> None:
        top = self.max_seen.get(port_id)
        if top is not None and revision < top:
            self.backwards.append(
                {"port_id": port_id, "revision": revision, "over": top, "by": how}
            )
        else:
            self.max_seen[port_id] = revision

    async def put_vif(
        self,
        instance_uuid: str,
        port_id: str,
        vif: Mapping[str, Any],
        revision: int,
        *,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> WriteOutcome:
        out = await self._inner.put_vif(
            instance_uuid, port_id, vif, revision, expect=expect, expect_deleted=expect_deleted
        )
        if out.applied:
            self._saw(port_id, revision, "put_vif")
        return out

    async def tombstone_vif(
        self, port_id: str, revision: int, *, expect: int | None = None
    ) -> WriteOutcome:
        out = await self._inner.tombstone_vif(port_id, revision, expect=expect)
        if out.applied:
            self._saw(port_id, revision, "tombstone_vif")
        return out

    async def replace_instance_vifs(
        self, instance_uuid: str, rows: Sequence[tuple[str, Mapping[str, Any], int]]
    ) -> None:
        before = {r.port_id: r.revision for r in await self._inner.vifs(instance_uuid)}
        await self._inner.replace_instance_vifs(instance_uuid, rows)
        for port_id, _vif, revision in rows:
            self._saw(port_id, revision, "replace_instance_vifs")
        listed = {r[0] for r in rows}
        for port_id, revision in before.items():
            if port_id not in listed:
                self._saw(port_id, revision, "replace_instance_vifs (dropped)")
