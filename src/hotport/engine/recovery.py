"""Recovery at start-up: every journal entry a crash left open is finished or undone.

Owns: the decision, per open entry, from what the network service, the hypervisor and
the rows say now:

- an attach whose three effects all happened (port bound to the instance on this host,
  row live, NIC present) is finished (`done`); any other is undone: NIC unplugged, the
  user's port unbound (a port hotport created is deleted: found by id, or by the marker
  name it was created with when the crash came before its id was journaled), the row
  tombstoned (`rolled-back`);
- a detach is finished: unplug, release the port, tombstone (`done`), or `failed` with
  the reason (a guest that still holds the NIC);
- any other open entry is closed as `failed` ("interrupted").

Must never: run concurrently with operations on the same ports (it takes their locks);
delete a port hotport did not create.

Concurrency: runs before the service accepts requests, one entry at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hotport.engine.attach import marker_name
from hotport.engine.context import Engine, describe, translate_errors
from hotport.engine.detach import release_port, vif_for_nic
from hotport.model import VIF
from hotport.network import errors as net
from hotport.network.models import Port
from hotport.store.base import JournalEntry
from hotport.virt import base as virt

log = logging.getLogger("hotport.engine.recovery")


@dataclass
class RecoveryReport:
    finished: list[int] = field(default_factory=list)
    undone: list[int] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"finished": self.finished, "undone": self.undone, "failed": self.failed}


async def recover(engine: Engine) -> RecoveryReport:
    report = RecoveryReport()
    async with engine.traced("recovery"):
        with translate_errors("recovery"):
            entries = await engine.store.journal(open_only=True, limit=1_000_000)
        for entry in sorted(entries, key=lambda e: e.id):
            try:
                with translate_errors("recovery"):
                    await _recover_one(engine, report, entry)
            except Exception as exc:  # one bad entry must not stop the rest
                log.warning("recovery of journal entry %d failed: %s", entry.id, describe(exc))
                report.failed.append({"id": entry.id, "error": describe(exc)})
    if entries:
        log.info(
            "recovery: %d finished, %d undone, %d failed",
            len(report.finished),
            len(report.undone),
            len(report.failed),
        )
    return report


async def _recover_one(engine: Engine, report: RecoveryReport, entry: JournalEntry) -> None:
    if entry.kind == "attach":
        await _attach(engine, report, entry)
    elif entry.kind == "detach":
        await _detach(engine, report, entry)
    else:
        await engine.store.journal_finish(entry.id, "failed", "interrupted by a restart")
        report.failed.append({"id": entry.id, "error": "interrupted"})


async def _find_port(engine: Engine, entry: JournalEntry) -> Port | None:
    port_id = entry.port_id or entry.details.get("port_id")
    if port_id:
        try:
            return await engine.network.show_port(str(port_id))
        except net.PortNotFound:
            return None
    if entry.details.get("created"):
        name = marker_name(entry.id)
        for p in await engine.network.list_ports(device_id=entry.instance_uuid):
            if p.name == name:
                return p
    return None


async def _attach(engine: Engine, report: RecoveryReport, entry: JournalEntry) -> None:
    inst = entry.instance_uuid
    created = bool(entry.details.get("created"))
    port = await _find_port(engine, entry)
    if port is None:
        await engine.store.journal_finish(entry.id, "rolled-back", "the port does not exist")
        report.undone.append(entry.id)
        return
    async with engine.locks.port(port.id):
        row = await engine.store.vif(port.id)
        nics = await _nics(engine, inst)
        has_nic = port.mac_address.lower() in nics
        live = row is not None and not row.deleted and row.instance_uuid == inst
        ours = port.device_id == inst and port.host == engine.host
        if ours and live and has_nic:
            await engine.store.journal_finish(entry.id, "done", details={"recovered": True})
            report.finished.append(entry.id)
            return
        if has_nic:
            vif = (
                VIF.from_json(row.vif)
                if row is not None
                else vif_for_nic(port.mac_address, None, port.id)
            )
            await engine.virt.unplug(inst, vif, within=engine.config.detach_timeout)
        if created:
            await engine.network.delete_port(port.id)
        elif port.device_id == inst:
            await engine.network.unbind_port(port.id)
        if live and row is not None:
            await engine.store.tombstone_vif(port.id, max(row.revision, port.revision_number or 0))
        await engine.store.journal_finish(
            entry.id, "rolled-back", "undone by recovery after a restart"
        )
        report.undone.append(entry.id)


async def _detach(engine: Engine, report: RecoveryReport, entry: JournalEntry) -> None:
    inst = entry.instance_uuid
    port_id = entry.port_id
    if port_id is None:
        await engine.store.journal_finish(entry.id, "failed", "no port recorded")
        report.failed.append({"id": entry.id, "error": "no port recorded"})
        return
    async with engine.locks.port(port_id):
        row = await engine.store.vif(port_id)
        if row is None or row.deleted or row.instance_uuid != inst:
            await engine.store.journal_finish(entry.id, "done", details={"recovered": True})
            report.finished.append(entry.id)
            return
        vif = VIF.from_json(row.vif)
        try:
            await engine.virt.unplug(inst, vif, within=engine.config.detach_timeout)
        except (virt.DeviceDetachTimeout, virt.DeviceDetachFailed) as exc:
            await engine.store.journal_finish(entry.id, "failed", describe(exc))
            report.failed.append({"id": entry.id, "error": describe(exc)})
            return
        revision = await release_port(engine, inst, row, not vif.preserve_on_delete)
        await engine.store.tombstone_vif(port_id, revision)
        await engine.store.journal_finish(entry.id, "done", details={"recovered": True})
        report.finished.append(entry.id)


async def _nics(engine: Engine, inst: str) -> set[str]:
    try:
        return {n.mac.lower() for n in await engine.virt.nics(inst)}
    except virt.DomainNotFound:
        return set()
