"""The heal: the periodic safety net that makes the cache and the hypervisor match Neutron.

Owns: one heal of the whole host. Its cost in network-service requests does not grow
with the number of instances or ports: ONE list of every port bound to this host, then,
concurrently, ONE list of the floating IPs (by port id, or all of them when the ports
are too many for one URL) and the network cache refreshed for the networks in use (one
request for the networks, one for their subnets): 4 requests, 2 round trips.

The order matters: the VIF rows are read BEFORE Neutron is listed, and every write is a
compare-and-swap on the row's revision as read; so an attach or detach that completes
while the heal runs always wins (its write changed the row: the heal's is refused and
counted as a conflict). Ports whose lock is held or whose journal entry is open are
skipped this round, and so are instances whose refresh lock is held.

It then compares the rows with the NICs each domain really has: NICs no row accounts for
(orphans) and rows whose NIC is missing are reported, and repaired when configured
(`EngineConfig.repair`). Finally it purges tombstones older than `tombstone_age`.

Must never: make an attach or detach wait (it only ever TRIES port locks).

Concurrency: runs as one task; may overlap with any operation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hotport.engine.context import Engine, describe, translate_errors
from hotport.engine.detach import unplug_quietly, vif_for_nic
from hotport.engine.events import kept_from_row
from hotport.model import VIF
from hotport.model.build import build_vif
from hotport.network.models import FloatingIP, Port
from hotport.store.base import VifRow
from hotport.virt.base import NIC

log = logging.getLogger("hotport.engine.heal")


@dataclass
class HealReport:
    instances: int = 0
    ports_seen: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    skipped_busy: list[str] = field(default_factory=list)
    skipped_instances: list[str] = field(default_factory=list)
    orphan_nics: list[dict[str, Any]] = field(default_factory=list)
    missing_nics: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    repair_failed: list[dict[str, Any]] = field(default_factory=list)
    foreign_ports: list[dict[str, Any]] = field(default_factory=list)
    unknown_domains: list[str] = field(default_factory=list)
    purged_tombstones: int = 0
    network_requests: int = 0
    seconds: float = 0.0

    @property
    def drift(self) -> int:
        """How much was found out of line (cache and hypervisor)."""
        return (
            len(self.added)
            + len(self.updated)
            + len(self.removed)
            + len(self.orphan_nics)
            + len(self.missing_nics)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drift": self.drift}


async def heal(engine: Engine) -> HealReport:
    report = HealReport()
    async with engine.traced("heal") as trace:
        with translate_errors("heal"):
            with trace.phase("read-cache"):
                instances = {i.uuid for i in await engine.store.list_instances(engine.host)}
                rows = {r.port_id: r for r in await engine.store.all_vifs(include_deleted=True)}
            with trace.phase("list"):
                ports, fips = await _list_network(engine)
            report.instances = len(instances)
            report.ports_seen = len(ports)
            busy = await engine.store.open_ports()
            by_instance: dict[str, list[Port]] = defaultdict(list)
            for p in ports:
                if p.device_id in instances:
                    by_instance[p.device_id].append(p)
                elif p.device_owner.startswith("compute:"):
                    report.foreign_ports.append({"port_id": p.id, "device_id": p.device_id})
            live_by_instance: dict[str, list[VifRow]] = defaultdict(list)
            for r in rows.values():
                if not r.deleted:
                    live_by_instance[r.instance_uuid].append(r)
            fips_by_port: dict[str, list[FloatingIP]] = defaultdict(list)
            for f in fips:
                if f.port_id:
                    fips_by_port[f.port_id].append(f)
            with trace.phase("diff"):
                for inst in sorted(instances):
                    async with engine.locks.try_instance_refresh(inst) as got:
                        if not got:
                            report.skipped_instances.append(inst)
                            continue
                        await _heal_instance(
                            engine,
                            report,
                            inst,
                            by_instance.get(inst, []),
                            live_by_instance.get(inst, []),
                            rows,
                            fips_by_port,
                            busy,
                        )
            with trace.phase("nics"):
                await _compare_nics(engine, report, instances, busy)
            report.purged_tombstones = await engine.store.purge_tombstones(
                engine.clock() - engine.config.tombstone_age
            )
        report.network_requests = trace.request_count
    report.seconds = trace.seconds
    if report.drift or report.conflicts:
        log.info(
            "heal: %d instances, %d ports: +%d ~%d -%d rows, %d orphan NICs, %d missing NICs, "
            "%d conflicts, %d busy skipped",
            report.instances,
            report.ports_seen,
            len(report.added),
            len(report.updated),
            len(report.removed),
            len(report.orphan_nics),
            len(report.missing_nics),
            len(report.conflicts),
            len(report.skipped_busy),
        )
    return report


async def _list_network(engine: Engine) -> tuple[list[Port], list[FloatingIP]]:
    ports = await engine.network.list_ports(host=engine.host)
    ids = [p.id for p in ports]
    fip_filter: Sequence[str] | None = ids if len(ids) <= engine.network.id_chunk else None
    fips, _ = await asyncio.gather(
        engine.network.list_floating_ips(fip_filter) if ids else _no_fips(),
        engine.netcache.refresh(sorted({p.network_id for p in ports})),
    )
    return ports, fips


async def _no_fips() -> list[FloatingIP]:
    return []


async def _heal_instance(
    engine: Engine,
    report: HealReport,
    inst: str,
    desired: list[Port],
    live: list[VifRow],
    rows: dict[str, VifRow],
    fips_by_port: dict[str, list[FloatingIP]],
    busy: set[str],
) -> None:
    wanted = {p.id for p in desired}
    for port in desired:
        row = rows.get(port.id)
        details = engine.netcache.peek(port.network_id)
        if details is None:
            continue  # the network vanished between the two lists: next round
        preserve, tag = kept_from_row(row)
        try:
            vif = build_vif(
                port.to_neutron(),
                details.network,
                details.subnets,
                [f.to_neutron() for f in fips_by_port.get(port.id, [])],
                preserve_on_delete=preserve,
                tag=tag,
            ).to_json()
        except ValueError as exc:
            log.warning("heal: cannot build the VIF of port %s: %s", port.id, exc)
            continue
        in_line = (
            row is not None
            and not row.deleted
            and row.instance_uuid == inst
            and (
                row.revision > (port.revision_number or 0)
                or (row.revision == port.revision_number and _same(row.vif, vif))
            )
        )
        if in_line:
            continue  # as listed (or newer than what was listed)
        if port.id in busy:
            report.skipped_busy.append(port.id)
            continue
        async with engine.locks.try_port(port.id) as got:
            if not got:
                report.skipped_busy.append(port.id)
                continue
            snap = await engine.policy.snapshot(engine.store, inst)
            outcome = await engine.policy.put(
                engine.store,
                snap,
                inst,
                port.id,
                vif,
                port.revision_number or 0,
                expect=None if row is None else row.revision,
                expect_deleted=None if row is None else row.deleted,
            )
        if outcome.applied:
            fresh = row is None or row.deleted or row.instance_uuid != inst
            (report.added if fresh else report.updated).append(port.id)
        else:
            report.conflicts.append(port.id)
    for row in live:
        if row.port_id in wanted:
            continue
        if row.port_id in busy:
            report.skipped_busy.append(row.port_id)
            continue
        async with engine.locks.try_port(row.port_id) as got:
            if not got:
                report.skipped_busy.append(row.port_id)
                continue
            snap = await engine.policy.snapshot(engine.store, inst)
            outcome = await engine.policy.remove(
                engine.store, snap, inst, row.port_id, row.revision, expect=row.revision
            )
        (report.removed if outcome.applied else report.conflicts).append(row.port_id)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal VIFs, ignoring the link status (recorded from events between heals)."""
    return {**a, "active": None} == {**b, "active": None}


async def _compare_nics(
    engine: Engine, report: HealReport, instances: set[str], busy: set[str]
) -> None:
    domains = {d.uuid for d in await engine.virt.domains()}
    report.unknown_domains = sorted(domains - instances)
    live: dict[str, dict[str, VifRow]] = defaultdict(dict)
    for r in await engine.store.all_vifs():
        live[r.instance_uuid][str(r.vif.get("address", "")).lower()] = r
    checked = sorted(instances & domains)
    nic_lists = await asyncio.gather(*(engine.virt.nics(i) for i in checked))
    for inst, nics in zip(checked, nic_lists, strict=True):
        rows = live.get(inst, {})
        present = {n.mac.lower(): n for n in nics}
        for mac, nic in present.items():
            if mac not in rows:
                await _orphan(engine, report, inst, nic, busy)
        for mac, row in rows.items():
            if mac not in present:
                await _missing(engine, report, inst, row, busy)


async def _orphan(engine: Engine, report: HealReport, inst: str, nic: NIC, busy: set[str]) -> None:
    item = {"instance": inst, "mac": nic.mac, "dev": nic.dev, "port_id": nic.port_id}
    if nic.port_id is not None and (nic.port_id in busy or engine.locks.port_held(nic.port_id)):
        report.skipped_busy.append(nic.port_id)
        return
    report.orphan_nics.append(item)
    if not engine.config.repair:
        return
    key = nic.port_id or f"mac-{nic.mac}"
    async with engine.locks.try_port(key) as got:
        if not got:
            return
        if any(r.vif.get("address") == nic.mac for r in await engine.store.vifs(inst)):
            return  # an attach recorded it meanwhile: not an orphan any more
        problem = await unplug_quietly(engine, inst, vif_for_nic(nic.mac, nic.dev, nic.port_id))
    (report.repair_failed if problem else report.repaired).append(
        {**item, "action": "unplug", **({"error": problem} if problem else {})}
    )


async def _missing(
    engine: Engine, report: HealReport, inst: str, row: VifRow, busy: set[str]
) -> None:
    item = {"instance": inst, "mac": row.vif.get("address"), "port_id": row.port_id}
    if row.port_id in busy or engine.locks.port_held(row.port_id):
        report.skipped_busy.append(row.port_id)
        return
    report.missing_nics.append(item)
    if not engine.config.repair:
        return
    async with engine.locks.try_port(row.port_id) as got:
        if not got:
            return
        current = await engine.store.vif(row.port_id)
        if current is None or current.deleted or current.instance_uuid != inst:
            return  # detached meanwhile
        try:
            await engine.virt.plug(inst, VIF.from_json(current.vif))
        except Exception as exc:  # reported
            report.repair_failed.append({**item, "action": "plug", "error": describe(exc)})
            return
    report.repaired.append({**item, "action": "plug"})
