"""Attach: plug a port into an instance and record its VIF, touching one cache row.

Owns: attach by port id and attach by network id (the port created already bound), with
the rollback of every failure path. The sequence (DESIGN.md, "Operations"):

1. lock `port-{port_id}`; journal `attach/started`.
2. read the port and its floating IPs concurrently (one round trip, through
   `engine.reads`: for hotport's policy, concurrent attaches' reads are coalesced into
   shared list requests, see `hotport.network.coalesce`; a lone attach sends exactly
   `GET /ports/{id}` and `GET /floatingips?port_id={id}`); refuse a port that belongs to
   another device (409, nothing changed).
3. bind it in ONE write with `If-Match: revision_number=N` (a 412 means somebody changed
   the port since the read: re-read, re-check ownership, retry a bounded number of
   times); the network details come from the per-host cache meanwhile (a cold miss
   costs one request for the networks and one for the subnets, concurrently).
4. plug the VIF in the hypervisor.
5. write the VIF row (revision-checked); journal `done`.

Any failure after the bind rolls back what was done: unplug, then unbind the user's
port (never delete it) or delete a port hotport created; the journal entry ends `failed`
(or `rolled-back`) with the reason. A crash leaves it `started`: recovery finishes or
undoes it at start-up.

Must never: take the instance refresh lock, wait for a heal, or delete a port it did not
create.

Concurrency: everything for one port runs under its lock; different ports run in
parallel, also on one instance (the rows are independent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hotport.engine import errors as E
from hotport.engine.context import Engine, describe, translate_errors
from hotport.engine.policy import Snapshot
from hotport.engine.trace import OperationTrace
from hotport.model import VIF
from hotport.model.build import build_vif
from hotport.network import errors as net
from hotport.network.models import FloatingIP, Port

log = logging.getLogger("hotport.engine.attach")


@dataclass(frozen=True)
class AttachResult:
    vif: VIF
    created_port: bool
    trace: OperationTrace


def marker_name(entry_id: int) -> str:
    """The name given to a port hotport creates, so recovery can find it after a crash."""
    return f"hotport-attach-{entry_id}"


async def require_instance(engine: Engine, instance_uuid: str) -> None:
    with translate_errors("attach"):
        if await engine.store.get_instance(instance_uuid) is None:
            raise E.InstanceNotFound(f"instance {instance_uuid} is not known on this host")


async def attach_port(
    engine: Engine, instance_uuid: str, port_id: str, *, tag: str | None = None
) -> AttachResult:
    await require_instance(engine, instance_uuid)
    async with engine.traced("attach", instance_uuid, port_id) as trace:
        async with engine.locks.port(port_id) as waited:
            trace.add_lock_wait("port", waited)
            vif = await _attach_locked(engine, trace, instance_uuid, port_id, tag)
        return AttachResult(vif, created_port=False, trace=trace)


async def attach_network(
    engine: Engine,
    instance_uuid: str,
    network_id: str,
    *,
    fixed_ips: Sequence[Mapping[str, str]] | None = None,
    tag: str | None = None,
) -> AttachResult:
    """Create a port on `network_id`, already bound to the instance, and plug it."""
    await require_instance(engine, instance_uuid)
    async with engine.traced("attach", instance_uuid) as trace:
        with translate_errors("attach"):
            entry = await engine.store.journal_start(
                instance_uuid, None, "attach", {"network_id": network_id, "created": True}
            )
            try:
                with trace.phase("create"):
                    port = await engine.network.create_port(
                        network_id,
                        device_id=instance_uuid,
                        host=engine.host,
                        device_owner=engine.config.device_owner,
                        fixed_ips=fixed_ips,
                        name=marker_name(entry),
                    )
            except BaseException as exc:
                await engine.store.journal_finish(entry, "failed", describe(exc))
                raise
        trace.port_id = port.id
        async with engine.locks.port(port.id) as waited:
            trace.add_lock_wait("port", waited)
            with translate_errors("attach"):
                await engine.store.journal_update(entry, {"port_id": port.id, "bound": True})
                # a port created a moment ago has no floating IP: no read for that
                vif = await _finish(engine, trace, entry, instance_uuid, port, [], True, tag)
        return AttachResult(vif, created_port=True, trace=trace)


async def _attach_locked(
    engine: Engine,
    trace: OperationTrace,
    instance_uuid: str,
    port_id: str,
    tag: str | None,
) -> VIF:
    with translate_errors("attach"):
        entry = await engine.store.journal_start(
            instance_uuid, port_id, "attach", {"created": False}
        )
        try:
            with trace.phase("read"):
                port, fips = await asyncio.gather(
                    engine.reads.show_port(port_id),
                    engine.reads.port_floating_ips(port_id),
                )
            _check_owner(port, instance_uuid)
            existing = await engine.store.vif(port_id)
            if (
                existing is not None
                and not existing.deleted
                and existing.instance_uuid == instance_uuid
                and port.device_id == instance_uuid
                and port.host == engine.host
                and existing.revision >= (port.revision_number or 0)
                and any(n.mac == port.mac_address for n in await engine.virt.nics(instance_uuid))
            ):
                # already attached and recorded: idempotent success, nothing to write
                await engine.store.journal_finish(entry, "done", details={"noop": True})
                return VIF.from_json(existing.vif)
            snap = await engine.policy.snapshot(engine.store, instance_uuid)
            with trace.phase("bind"):
                port, _ = await asyncio.gather(
                    _bind(engine, port, instance_uuid),
                    _warm_networks(engine, port),
                )
            await engine.store.journal_update(
                entry, {"bound": True, "revision": port.revision_number}
            )
        except BaseException as exc:
            if isinstance(exc, net.NetworkServiceError) and exc.maybe_applied:
                # the bind's answer was lost: it may have happened; undo it if so
                with contextlib.suppress(Exception):
                    await asyncio.shield(_unbind_if_ours(engine, port, instance_uuid))
            await engine.store.journal_finish(entry, "failed", describe(exc))
            raise
        return await _finish(engine, trace, entry, instance_uuid, port, fips, False, tag, snap)


def _check_owner(port: Port, instance_uuid: str) -> None:
    if port.device_id and port.device_id != instance_uuid:
        raise E.PortInUse(
            f"port {port.id} is in use by device {port.device_id} "
            f"(owner {port.device_owner or 'unknown'}); detach it there first"
        )
    if not port.device_id and port.device_owner and not port.device_owner.startswith("compute:"):
        raise E.PortInUse(
            f"port {port.id} belongs to {port.device_owner}; it cannot be attached to a VM"
        )


async def _bind(engine: Engine, port: Port, instance_uuid: str) -> Port:
    """Bind with If-Match on the revision read; on 412 re-read, re-check, retry."""
    for _ in range(engine.config.revision_retries):
        try:
            return await engine.network.bind_port(
                port.id,
                device_id=instance_uuid,
                host=engine.host,
                device_owner=engine.config.device_owner,
                revision=port.revision_number,
            )
        except net.RevisionMismatch:
            port = await engine.network.show_port(port.id)
            _check_owner(port, instance_uuid)
    raise E.ConcurrentUpdate(
        f"port {port.id} changed {engine.config.revision_retries} times while binding it; "
        "retry the attach"
    )


async def _warm_networks(engine: Engine, port: Port) -> None:
    await engine.netcache.get(
        [port.network_id], need_subnets={port.network_id: [ip.subnet_id for ip in port.fixed_ips]}
    )


async def _finish(
    engine: Engine,
    trace: OperationTrace,
    entry: int,
    instance_uuid: str,
    port: Port,
    fips: list[FloatingIP],
    created: bool,
    tag: str | None,
    snap: Snapshot = None,
) -> VIF:
    """Steps 4-5 for a bound port: build, plug, record; roll back on any failure."""
    vif: VIF | None = None
    plugged = False
    try:
        details = (
            await engine.netcache.get(
                [port.network_id],
                need_subnets={port.network_id: [ip.subnet_id for ip in port.fixed_ips]},
            )
        )[port.network_id]
        vif = build_vif(
            port.to_neutron(),
            details.network,
            details.subnets,
            [f.to_neutron() for f in fips],
            preserve_on_delete=not created,
            tag=tag,
        )
        if snap is None:
            snap = await engine.policy.snapshot(engine.store, instance_uuid)
        with trace.phase("plug"):
            await engine.virt.plug(instance_uuid, vif)
        plugged = True
        with trace.phase("store"):
            outcome = await engine.policy.put(
                engine.store, snap, instance_uuid, port.id, vif.to_json(), _rev(port)
            )
        if not outcome.applied:
            log.info(
                "attach %s: the row already holds a newer revision (%s): kept it",
                port.id,
                outcome.reason,
            )
        await engine.store.journal_finish(entry, "done", details={"revision": _rev(port)})
        return vif
    except BaseException as exc:
        await _rollback(
            engine, trace, entry, instance_uuid, port, created, vif if plugged else None, exc
        )
        raise


async def _rollback(
    engine: Engine,
    trace: OperationTrace,
    entry: int,
    instance_uuid: str,
    port: Port,
    created: bool,
    plugged: VIF | None,
    cause: BaseException,
) -> None:
    """Undo a half-done attach. Shielded from cancellation: it must run to the end."""

    async def undo() -> str:
        problems: list[str] = []
        if plugged is not None:
            try:
                await engine.virt.unplug(
                    instance_uuid, plugged, within=engine.config.detach_timeout
                )
            except Exception as exc:  # reported in the journal
                problems.append(f"unplug: {describe(exc)}")
        try:
            if created:
                await engine.network.delete_port(port.id)
            else:
                await _unbind_if_ours(engine, port, instance_uuid)
        except Exception as exc:  # reported in the journal
            problems.append(f"unbind: {describe(exc)}")
        return "; ".join(problems)

    with trace.phase("rollback"):
        problems = await asyncio.shield(undo())
    error = describe(cause) + (f" (rollback incomplete: {problems})" if problems else "")
    await asyncio.shield(
        engine.store.journal_finish(entry, "failed", error, {"rolled_back": not problems})
    )


async def _unbind_if_ours(engine: Engine, port: Port, instance_uuid: str) -> None:
    revision = port.revision_number
    for _ in range(engine.config.revision_retries):
        try:
            await engine.network.unbind_port(port.id, revision=revision)
            return
        except net.RevisionMismatch:
            current = await engine.network.show_port(port.id)
            if current.device_id != instance_uuid:
                return  # somebody else owns it now: not ours to unbind
            revision = current.revision_number
        except net.PortNotFound:
            return


def _rev(port: Port) -> int:
    return port.revision_number or 0
