"""The heal: the periodic safety net that makes the cache and the hypervisor match Neutron.

Owns: one heal of the whole host. Its cost in network-service requests does not grow
with the number of instances or ports: ONE list of every port bound to this host (with
`fields=`: only what the VIF builder reads and whose the port is), then, concurrently,
ONE list of the floating IPs (by port id, or all of them when the ports are too many for
one URL) and the network cache refreshed for the networks in use (one request for the
networks, one for their subnets): 4 requests, 2 round trips.

The order matters: the VIF rows are read BEFORE Neutron is listed (`Store.vif_heads`:
port, instance, revision, deleted flag; no VIF), and every write is a compare-and-swap on
the row's revision as read; so an attach or detach that completes while the heal runs
always wins (its write changed the row: the heal's is refused, or not even tried, and
counted as a conflict). Ports whose lock is held or whose journal entry is open are
skipped this round, and so are instances whose refresh lock is held.

How it stays cheap (100,000 VIFs: see docs/engine.md, "Scale"): a row whose revision is
newer than the port's is in line; a row at the port's revision is in line when its
stored JSON text (`Store.vif_texts`, read instance batch by instance batch, never
decoded) is exactly what the builder would write now (`hotport.model.vifcheck`: the
network's and subnets' parts serialised once per network; a floating IP or network
change does not move the port's revision, and is seen there). Only the rows that differ
are decoded and built (`build_vif`), and only under the instance's refresh lock, tried
only then. The garbage collector is paused for the heal (`_collector_paused`).

It then compares the rows with the NICs each domain really has: NICs no row accounts for
(orphans) and rows whose NIC is missing are reported, and repaired when configured
(`EngineConfig.repair`). The rows it compares with are those the diff vouched for, unless
an instance's rows were written since the heal read them or its NICs differ: then they
are read again, and only that fresh read is reported from. Finally it purges tombstones
older than `tombstone_age`.

Must never: make an attach or detach wait (it only ever TRIES port locks).

Concurrency: runs as one task; may overlap with any operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import operator
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hotport.engine.context import Engine, describe, translate_errors
from hotport.engine.detach import unplug_quietly, vif_for_nic
from hotport.engine.events import kept_from_row
from hotport.engine.netcache import NetworkDetails
from hotport.engine.trace import OperationTrace
from hotport.model import VIF
from hotport.model.build import PORT_FIELDS, build_vif
from hotport.model.vifcheck import VifTemplate
from hotport.network.models import FloatingIP, PartialPort
from hotport.store.base import VifHead, VifRow, VifText
from hotport.virt.base import NIC

log = logging.getLogger("hotport.engine.heal")

_PORT_ID = operator.attrgetter("port_id")

LIST_FIELDS = (*PORT_FIELDS, "device_id", "device_owner", "revision_number")
"""What the heal lists of each port: what the VIF builder reads, and whose it is."""

_TEXT_BATCH = 500  # instances whose stored VIF texts are read at once
_CLOCK_SLACK = 5.0  # seconds the store's wall clock may step back during a heal
_NIC_QUERIES = 32  # hypervisor NIC listings in flight at once


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
        with _collector_paused():
            # (what the heal read and listed is freed when _heal returns, before the
            # collector resumes: it never walks it)
            await _heal(engine, report, trace)
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


async def _heal(engine: Engine, report: HealReport, trace: OperationTrace) -> None:
    with translate_errors("heal"):
        with trace.phase("read-cache"):
            instances = {i.uuid for i in await engine.store.list_instances(engine.host)}
            # (the store's clock before the read: rows written later have later stamps)
            mark = engine.store.now()
            read = await engine.store.vif_heads()
            heads = dict(zip(map(_PORT_ID, read), read, strict=True))
            del read
        with trace.phase("list"):
            ports, fips = await _list_network(engine)
        report.instances = len(instances)
        report.ports_seen = len(ports)
        busy = await engine.store.open_ports()
        by_instance: dict[str, list[PartialPort]] = defaultdict(list)
        for p in ports:
            if p.device_id in instances:
                by_instance[p.device_id].append(p)
            elif (p.device_owner or "").startswith("compute:"):
                report.foreign_ports.append({"port_id": p.id, "device_id": p.device_id})
        del ports
        live_by_instance: dict[str, list[VifHead]] = defaultdict(list)
        for h in heads.values():
            if not h[3]:  # (deleted)
                live_by_instance[h[1]].append(h)  # (instance_uuid)
        fips_by_port: dict[str, list[FloatingIP]] = defaultdict(list)
        for f in fips:
            if f.port_id:
                fips_by_port[f.port_id].append(f)
        diff = _Diff(engine, report, heads, fips_by_port, busy)
        with trace.phase("diff"):
            ordered = sorted(instances)
            for start in range(0, len(ordered), _TEXT_BATCH):
                batch = ordered[start : start + _TEXT_BATCH]
                # the stored texts of the batch's live rows, read now (after the list):
                # they only tell which rows are in line; every write stays a
                # compare-and-swap on the revision read BEFORE the list
                with_rows = [i for i in batch if i in live_by_instance]
                texts = {t.port_id: t for t in await engine.store.vif_texts(with_rows)}
                for inst in batch:
                    await diff.instance(
                        inst, by_instance.get(inst, []), live_by_instance.get(inst, []), texts
                    )
        del heads, live_by_instance, by_instance
        with trace.phase("nics"):

            async def forget_moved() -> None:
                # rows written since the heal read them (by an operation, or by the
                # heal), asked AFTER the NICs are listed: a row written before or while
                # they were listed is then never vouched for by what the diff learnt
                diff.moved(await engine.store.vif_heads(since=mark - _CLOCK_SLACK))

            await _compare_nics(engine, report, instances, busy, diff.macs, forget_moved)
        report.purged_tombstones = await engine.store.purge_tombstones(
            engine.clock() - engine.config.tombstone_age
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the heal.

    A heal of 100,000 VIFs allocates millions of containers (the listed ports above all),
    and every few hundred allocations the collector walks the young ones, every few
    thousand ALL of the process's objects: a third of the heal's CPU. What the heal
    allocates forms no reference cycles (reference counting frees it when the heal
    ends), so nothing accumulates meanwhile but the cycles other tasks make in those
    seconds, collected as soon as it ends. The previous state is restored (a collector
    that was off stays off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _list_network(engine: Engine) -> tuple[list[PartialPort], list[FloatingIP]]:
    listed = await engine.network.list_ports(host=engine.host, fields=LIST_FIELDS)
    ports = [p for p in listed if p.id and p.network_id]  # (never ours without them)
    del listed
    ids = [p.id for p in ports if p.id]
    fip_filter: Sequence[str] | None = ids if len(ids) <= engine.network.id_chunk else None
    fips, _ = await asyncio.gather(
        engine.network.list_floating_ips(fip_filter) if ids else _no_fips(),
        engine.netcache.refresh(sorted({p.network_id for p in ports if p.network_id})),
    )
    return ports, fips


async def _no_fips() -> list[FloatingIP]:
    return []


class _Diff:
    """One heal's comparison: the rows as read before the list (`heads`), the floating
    IPs by port, the ports busy in the journal, a VIF template per network, and what it
    learnt of each instance's live rows for the NIC check (`macs`: port id -> (MAC,
    revision) of every live row, None for an instance whose rows it cannot vouch for)."""

    def __init__(
        self,
        engine: Engine,
        report: HealReport,
        heads: dict[str, VifHead],
        fips_by_port: dict[str, list[FloatingIP]],
        busy: set[str],
    ) -> None:
        self.engine = engine
        self.report = report
        self.heads = heads
        self.fips_by_port = fips_by_port
        self.busy = busy
        self.macs: dict[str, dict[str, tuple[str, int]] | None] = {}
        self._templates: dict[str, tuple[NetworkDetails, VifTemplate]] = {}

    def moved(self, changed: list[VifHead]) -> None:
        _moved_rows(self.macs, changed)

    def template(self, network_id: str, details: NetworkDetails) -> VifTemplate:
        known = self._templates.get(network_id)
        if known is None or known[0] is not details:  # (refetched meanwhile: rebuild)
            known = (details, VifTemplate(details.network, details.subnets))
            self._templates[network_id] = known
        return known[1]

    def in_line_text(
        self,
        port: PartialPort,
        port_id: str,
        network_id: str,
        details: NetworkDetails,
        stored: str,
    ) -> bool:
        """The stored text is what the builder makes of `port` now (ignoring `active`)."""
        known = self._templates.get(network_id)
        template = (
            known[1]
            if known is not None and known[0] is details
            else self.template(network_id, details)
        )
        fips = self.fips_by_port.get(port_id)
        # (a listed port's other keys are untyped extras: cheaper to parse 100,000 of;
        # whatever shape they have, the template answers False on a doubt)
        extra = port.model_extra or {}
        try:
            fixed = [(ip["subnet_id"], ip["ip_address"]) for ip in extra.get("fixed_ips") or ()]
        except (TypeError, KeyError):
            return False
        return template.matches(
            stored,
            port_id,
            port.mac_address or "",
            port.vif_type,
            extra.get("binding:vif_details") or {},
            extra.get("binding:vnic_type"),
            extra.get("binding:profile") or {},
            fixed,
            [f.to_neutron() for f in fips] if fips else (),
        )

    async def instance(
        self,
        inst: str,
        desired: list[PartialPort],
        live: list[VifHead],
        texts: dict[str, VifText],
    ) -> None:
        """Compare the instance's ports with its rows; write (under its refresh lock,
        only tried) what differs."""
        engine, report, heads = self.engine, self.report, self.heads
        if engine.locks.refresh_held(inst):
            report.skipped_instances.append(inst)
            self.macs[inst] = None
            return
        known: dict[str, tuple[str, int]] | None = {}
        todo: list[tuple[PartialPort, str, NetworkDetails, VifHead | None]] = []
        for port in desired:
            port_id, network_id = port.id, port.network_id
            if not port_id or not network_id:
                continue  # (never listed: see _list_network)
            details = engine.netcache.peek(network_id)
            if details is None:
                known = None  # the network vanished between the two lists: next round
                continue
            head = heads.get(port_id)
            revision = port.revision_number or 0
            if head is not None and not head.deleted and head.instance_uuid == inst:
                if head.revision > revision:
                    known = None  # newer than listed: in line, its MAC unread
                    continue
                stored = texts.get(port_id)
                if (
                    head.revision == revision
                    and stored is not None
                    and stored.revision == revision
                    and self.in_line_text(port, port_id, network_id, details, stored.text)
                ):
                    if known is not None:  # in line: nothing decoded, nothing built
                        known[port_id] = ((port.mac_address or "").lower(), revision)
                    continue
            todo.append((port, port_id, details, head))
        wanted = {p.id for p in desired}
        gone = [h for h in live if h.port_id not in wanted]
        if todo or gone:
            async with engine.locks.try_instance_refresh(inst) as got:
                if not got:
                    report.skipped_instances.append(inst)
                    self.macs[inst] = None
                    return
                for port, port_id, details, head in todo:
                    row = await self._rebuild(inst, port, port_id, details, head)
                    if row is None:
                        known = None
                    elif known is not None:
                        known[port_id] = row
                for head in gone:
                    if not await self._remove(inst, head):
                        known = None
        self.macs[inst] = known

    async def _rebuild(
        self,
        inst: str,
        port: PartialPort,
        port_id: str,
        details: NetworkDetails,
        head: VifHead | None,
    ) -> tuple[str, int] | None:
        """Build the port's VIF and write it unless its row already says the same; the
        (MAC, revision) of the instance's live row for the port afterwards (None:
        unknown)."""
        engine, report = self.engine, self.report
        row: VifRow | None = None
        if head is not None:
            row = await engine.store.vif(port_id)
            if row is None or (row.revision, row.deleted, row.instance_uuid) != (
                head.revision,
                head.deleted,
                head.instance_uuid,
            ):
                # changed since the heal read it: an operation won, and the
                # compare-and-swap below would be refused
                report.conflicts.append(port_id)
                return None
        preserve, tag = kept_from_row(row)
        try:
            vif = build_vif(
                port.to_neutron(),
                details.network,
                details.subnets,
                [f.to_neutron() for f in self.fips_by_port.get(port_id, [])],
                preserve_on_delete=preserve,
                tag=tag,
            ).to_json()
        except ValueError as exc:
            log.warning("heal: cannot build the VIF of port %s: %s", port_id, exc)
            return None
        revision = port.revision_number or 0
        current = row is not None and not row.deleted and row.instance_uuid == inst
        if (
            current
            and row is not None
            and (row.revision > revision or (row.revision == revision and _same(row.vif, vif)))
        ):
            return str(row.vif.get("address", "")).lower(), row.revision  # in line after all
        if port_id in self.busy:
            report.skipped_busy.append(port_id)
            return None
        async with engine.locks.try_port(port_id) as got:
            if not got:
                report.skipped_busy.append(port_id)
                return None
            snap = await engine.policy.snapshot(engine.store, inst)
            outcome = await engine.policy.put(
                engine.store,
                snap,
                inst,
                port_id,
                vif,
                revision,
                expect=None if head is None else head.revision,
                expect_deleted=None if head is None else head.deleted,
            )
        if outcome.applied:
            (report.updated if current else report.added).append(port_id)
            return str(vif.get("address", "")).lower(), revision
        report.conflicts.append(port_id)
        return None

    async def _remove(self, inst: str, head: VifHead) -> bool:
        """Tombstone a live row whose port is no longer bound here; whether it is gone."""
        engine, report = self.engine, self.report
        if head.port_id in self.busy:
            report.skipped_busy.append(head.port_id)
            return False
        async with engine.locks.try_port(head.port_id) as got:
            if not got:
                report.skipped_busy.append(head.port_id)
                return False
            snap = await engine.policy.snapshot(engine.store, inst)
            outcome = await engine.policy.remove(
                engine.store, snap, inst, head.port_id, head.revision, expect=head.revision
            )
        (report.removed if outcome.applied else report.conflicts).append(head.port_id)
        return outcome.applied


def _moved_rows(macs: dict[str, dict[str, tuple[str, int]] | None], changed: list[VifHead]) -> None:
    """Forget what was learnt of the instances whose rows were written since the heal
    read them, unless the write is the one it learnt (its own)."""
    if not changed:
        return
    owner = {port_id: inst for inst, known in macs.items() if known for port_id in known}
    for h in changed:
        known = macs.get(h.instance_uuid)
        if not h.deleted and known is not None and known.get(h.port_id, ("", -1))[1] != h.revision:
            macs[h.instance_uuid] = None
        was = owner.get(h.port_id)
        if was is not None and (h.deleted or was != h.instance_uuid):
            macs[was] = None


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal VIFs, ignoring the link status (recorded from events between heals)."""
    return {**a, "active": None} == {**b, "active": None}


async def _compare_nics(
    engine: Engine,
    report: HealReport,
    instances: set[str],
    busy: set[str],
    macs: dict[str, dict[str, tuple[str, int]] | None],
    forget_moved: Callable[[], Awaitable[None]],
) -> None:
    """Compare each domain's NICs with the instance's live rows. The rows come from what
    the diff learnt (`macs`, less the instances whose rows were written since); an
    instance it cannot vouch for, or whose NICs differ from what it learnt, is read again
    from the store, and only that fresh read is reported from."""
    domains = {d.uuid for d in await engine.virt.domains()}
    report.unknown_domains = sorted(domains - instances)
    checked = sorted(instances & domains)
    nic_lists = await _nics_of(engine, checked)
    await forget_moved()  # after the listing (see heal)
    for inst, nics in zip(checked, nic_lists, strict=True):
        learnt = macs.get(inst)
        if learnt is not None and {mac for mac, _ in learnt.values()} == {
            n.mac.lower() for n in nics
        }:
            continue  # in line
        present = {n.mac.lower(): n for n in nics}
        rows = {str(r.vif.get("address", "")).lower(): r for r in await engine.store.vifs(inst)}
        for mac, nic in present.items():
            if mac not in rows:
                await _orphan(engine, report, inst, nic, busy)
        for mac, row in rows.items():
            if mac not in present:
                await _missing(engine, report, inst, row, busy)


async def _nics_of(engine: Engine, instances: list[str]) -> list[list[NIC]]:
    """Every instance's NICs, asked `_NIC_QUERIES` at a time (a task per query instead of
    one per instance: 10,000 tasks cost more than the in-memory answers)."""
    out: list[list[NIC]] = [[] for _ in instances]
    todo = iter(range(len(instances)))

    async def worker() -> None:
        for i in todo:
            out[i] = await engine.virt.nics(instances[i])

    await asyncio.gather(*(worker() for _ in range(min(_NIC_QUERIES, len(instances)))))
    return out


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
