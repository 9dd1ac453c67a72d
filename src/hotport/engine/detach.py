"""Detach: unplug a port from an instance, release it, tombstone its VIF row.

Owns: detach, and the release of a port shared with the event path (vif-deleted) and
recovery. The sequence (DESIGN.md): lock `port-{port_id}`; journal; unplug and wait for
the guest to release the NIC (bounded; a guest that never lets go is a clear error with
the NIC, the binding and the cache unchanged); unbind the user's port with
`If-Match` on the cached revision (0 reads; a 412 costs one re-read and a retry), or
delete a port hotport created; tombstone the row with the resulting revision; journal
`done`. If releasing the port fails after the unplug, the NIC is plugged back (the
state stays as it was) and the error is returned.

Must never: take the instance refresh lock; delete a port hotport did not create; unbind
a port that another device owns by now.

Concurrency: under the port lock; different ports in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from hotport.engine import errors as E
from hotport.engine.context import Engine, describe, translate_errors
from hotport.engine.trace import OperationTrace
from hotport.model import VIF, Network
from hotport.network import errors as net
from hotport.store.base import VifRow
from hotport.virt import base as virt


@dataclass(frozen=True)
class DetachResult:
    port_id: str
    deleted_port: bool
    trace: OperationTrace


async def detach(engine: Engine, instance_uuid: str, port_id: str) -> DetachResult:
    with translate_errors("detach"):
        if await engine.store.get_instance(instance_uuid) is None:
            raise E.InstanceNotFound(f"instance {instance_uuid} is not known on this host")
    async with engine.traced("detach", instance_uuid, port_id) as trace:
        async with engine.locks.port(port_id) as waited:
            trace.add_lock_wait("port", waited)
            with translate_errors("detach"):
                deleted = await _detach_locked(engine, trace, instance_uuid, port_id)
        return DetachResult(port_id, deleted, trace)


async def _detach_locked(
    engine: Engine, trace: OperationTrace, instance_uuid: str, port_id: str
) -> bool:
    row = await engine.store.vif(port_id)
    if row is None or row.deleted or row.instance_uuid != instance_uuid:
        raise E.InterfaceNotAttached(f"port {port_id} is not attached to instance {instance_uuid}")
    vif = VIF.from_json(row.vif)
    created = not vif.preserve_on_delete
    snap = await engine.policy.snapshot(engine.store, instance_uuid)
    entry = await engine.store.journal_start(
        instance_uuid, port_id, "detach", {"revision": row.revision, "created": created}
    )
    try:
        with trace.phase("unplug"):
            await engine.virt.unplug(instance_uuid, vif, within=engine.config.detach_timeout)
    except virt.DeviceDetachTimeout as exc:
        msg = (
            f"the guest of instance {instance_uuid} did not release port {port_id} "
            f"within {engine.config.detach_timeout:g} s; nothing was changed (the NIC, the "
            "port binding and the cache are as before). Retry, or check the guest OS"
        )
        await engine.store.journal_finish(entry, "failed", msg)
        raise E.GuestDidNotRelease(msg) from exc
    except virt.DeviceDetachFailed as exc:
        msg = f"the guest of instance {instance_uuid} refused to release port {port_id}: {exc}"
        await engine.store.journal_finish(entry, "failed", msg)
        raise E.GuestDidNotRelease(msg) from exc
    except BaseException as exc:
        await engine.store.journal_finish(entry, "failed", describe(exc))
        raise
    try:
        with trace.phase("unbind"):
            revision = await release_port(engine, instance_uuid, row, created)
    except BaseException as exc:
        # put the NIC back so that the state stays as it was, then report
        problem = ""
        try:
            await asyncio.shield(engine.virt.plug(instance_uuid, vif))
        except Exception as replug:  # reported in the journal
            problem = f" (re-plug failed: {describe(replug)}; the heal will report it)"
        await asyncio.shield(engine.store.journal_finish(entry, "failed", describe(exc) + problem))
        raise
    with trace.phase("store"):
        await engine.policy.remove(engine.store, snap, instance_uuid, port_id, revision)
    await engine.store.journal_finish(entry, "done", details={"revision": revision})
    return created


async def release_port(engine: Engine, instance_uuid: str, row: VifRow, created: bool) -> int:
    """Unbind (or delete, if hotport created it) a port; returns the revision to tombstone
    with. Idempotent: a port already gone, or already bound elsewhere, is left alone."""
    if created:
        await engine.network.delete_port(row.port_id)  # missing_ok: already gone is fine
        return row.revision
    revision: int | None = row.revision
    for _ in range(engine.config.revision_retries):
        try:
            port = await engine.network.unbind_port(row.port_id, revision=revision)
            return max(port.revision_number or 0, row.revision)
        except net.RevisionMismatch:
            current = await engine.network.show_port(row.port_id)
            if current.device_id != instance_uuid:
                return max(current.revision_number or 0, row.revision)  # not ours anymore
            revision = current.revision_number
        except net.PortNotFound:
            return row.revision
    raise E.ConcurrentUpdate(
        f"port {row.port_id} changed {engine.config.revision_retries} times while "
        "unbinding it; retry the detach"
    )


async def unplug_quietly(engine: Engine, instance_uuid: str, vif: VIF) -> str | None:
    """Unplug for the event and heal paths: returns a problem description or None."""
    with contextlib.suppress(virt.DomainNotFound):
        try:
            await engine.virt.unplug(instance_uuid, vif, within=engine.config.detach_timeout)
        except virt.VirtError as exc:
            return describe(exc)
    return None


def vif_for_nic(mac: str, dev: str | None, port_id: str | None) -> VIF:
    """A VIF standing for a NIC nothing in the cache describes (an orphan found by the
    heal, a NIC left by a crash): enough for a driver to find and unplug it by MAC."""
    return VIF(
        id=port_id or f"unknown-{mac}",
        address=mac,
        network=Network(id="unknown", label="", bridge=None),
        type="unbound",
        devname=dev or "",
    )
