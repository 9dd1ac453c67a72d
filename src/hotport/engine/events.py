"""The network service's events: what each one does to the cache and the hypervisor.

Owns: accepting a batch of `os-server-external-events` (answering per event at once;
the work runs in the background) and the work itself:

- `network-vif-plugged` / `network-vif-unplugged`: wake the operations waiting for it,
  record the link status in the row, and refresh that one VIF (the status change bumped
  the port's revision; keeping the cached revision current keeps detach at one write).
- `network-changed` with a tag: refresh that one VIF under its port lock, coalesced: a
  burst of events for one port yields one refresh (plus one more if an event arrives
  while the refresh runs). Cost: the port and its floating IPs, read concurrently
  through `engine.reads` (refreshes of several ports at once share coalesced list
  requests under hotport's policy), plus network-cache misses.
- `network-changed` without a tag: refresh the whole instance under
  `refresh_cache-{instance}`: one list of the instance's ports, one of their floating
  IPs, its networks re-read through the cache. Ports with an operation in flight are
  skipped (their operation writes them).
- `network-vif-deleted`: under the port lock, unplug if still plugged, tombstone the row.

A refresh that finds the port gone, or bound to another device, treats it like a delete.
Every row write is revision-checked, so a late or duplicated event can never put an
older port state over a newer one.

Must never: make an attach or detach wait (events work under the port lock like any
operation on that port, and the instance refresh lock is never taken by attach/detach).

Concurrency: background tasks, coalesced per port (see `background.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hotport.engine.context import Engine, translate_errors
from hotport.engine.detach import unplug_quietly
from hotport.engine.waiters import EVENT_NAMES, ExternalEvent
from hotport.model import VIF
from hotport.model.build import build_vif
from hotport.network import errors as net
from hotport.network.models import FloatingIP, Port
from hotport.store.base import VifRow

log = logging.getLogger("hotport.engine.events")


@dataclass(frozen=True)
class EventAnswer:
    event: ExternalEvent
    code: int  # 200 accepted, 404 unknown instance, 400 malformed, 422 unprocessable
    message: str = ""


async def accept_events(
    engine: Engine,
    events: Sequence[ExternalEvent],
    *,
    work: Callable[[Engine, ExternalEvent], None] | None = None,
) -> list[EventAnswer]:
    """Answer each event now; schedule its work. Unknown instances get 404.

    `work` schedules an accepted event's work (default: hotport's `schedule`; the
    reference designs of `hotport.engine.reference` pass their own)."""
    answers: list[EventAnswer] = []
    known: dict[str, bool] = {}
    for ev in events:
        if ev.name not in EVENT_NAMES:
            answers.append(EventAnswer(ev, 400, f"unknown event name {ev.name!r}"))
            continue
        if ev.server_uuid not in known:
            with translate_errors("event"):
                known[ev.server_uuid] = await engine.store.get_instance(ev.server_uuid) is not None
        if not known[ev.server_uuid]:
            answers.append(EventAnswer(ev, 404, f"no instance {ev.server_uuid} on this host"))
            continue
        engine.waiters.resolve(ev)
        (work or schedule)(engine, ev)
        answers.append(EventAnswer(ev, 200))
    return answers


def schedule(engine: Engine, ev: ExternalEvent) -> None:
    inst, port = ev.server_uuid, ev.tag
    if ev.name == "network-changed" and port is None:
        engine.background.submit(
            f"instance-{inst}", lambda started: refresh_instance(engine, inst, started)
        )
    elif ev.name == "network-vif-deleted" and port is not None:
        engine.background.submit(
            f"deleted-{port}", lambda started: vif_deleted(engine, inst, port, started)
        )
    elif port is not None:
        if ev.name in ("network-vif-plugged", "network-vif-unplugged"):
            active = ev.name == "network-vif-plugged" and ev.status == "completed"
            engine.background.spawn(engine.store.set_active(port, active), f"status-{port}")
        engine.background.submit(
            f"port-{port}", lambda started: refresh_port(engine, inst, port, started)
        )


async def refresh_port(
    engine: Engine, instance_uuid: str, port_id: str, started: object = None
) -> None:
    async with (
        engine.traced("refresh", instance_uuid, port_id) as trace,
        engine.locks.port(port_id) as waited,
    ):
        if callable(started):
            started()
        trace.add_lock_wait("port", waited)
        with translate_errors("refresh"):
            try:
                port, fips = await asyncio.gather(
                    engine.reads.show_port(port_id),
                    engine.reads.port_floating_ips(port_id),
                )
            except net.PortNotFound:
                await _forget(engine, instance_uuid, port_id)
                return
            if port.device_id != instance_uuid or port.host != engine.host:
                await _forget(engine, instance_uuid, port_id, port.revision_number)
                return
            await write_port(engine, instance_uuid, port, fips)


async def write_port(
    engine: Engine,
    instance_uuid: str,
    port: Port,
    fips: Sequence[FloatingIP],
    *,
    expect: int | None = None,
    expect_deleted: bool | None = None,
) -> bool:
    """Build the VIF of a port bound to the instance and write it, revision-checked."""
    row = await engine.store.vif(port.id)
    details = (
        await engine.netcache.get(
            [port.network_id],
            need_subnets={port.network_id: [ip.subnet_id for ip in port.fixed_ips]},
        )
    )[port.network_id]
    preserve, tag = kept_from_row(row)
    vif = build_vif(
        port.to_neutron(),
        details.network,
        details.subnets,
        [f.to_neutron() for f in fips if f.port_id == port.id],
        preserve_on_delete=preserve,
        tag=tag,
    )
    snap = await engine.policy.snapshot(engine.store, instance_uuid)
    outcome = await engine.policy.put(
        engine.store,
        snap,
        instance_uuid,
        port.id,
        vif.to_json(),
        port.revision_number or 0,
        expect=expect,
        expect_deleted=expect_deleted,
    )
    return outcome.applied


def kept_from_row(row: VifRow | None) -> tuple[bool, str | None]:
    """What a rebuilt VIF keeps from the row it replaces, since Neutron does not know it:
    whether the port is the user's (`preserve_on_delete`) and the device tag."""
    if row is None:
        return True, None
    meta = row.vif.get("meta") or {}
    return bool(row.vif.get("preserve_on_delete", True)), meta.get("tag")


async def _forget(
    engine: Engine, instance_uuid: str, port_id: str, revision: int | None = None
) -> None:
    """The port is gone or no longer ours: unplug its NIC if present, tombstone the row."""
    row = await engine.store.vif(port_id)
    if row is None or row.deleted or row.instance_uuid != instance_uuid:
        return
    problem = await unplug_quietly(engine, instance_uuid, VIF.from_json(row.vif))
    if problem is not None:
        log.warning(
            "port %s left instance %s but its NIC stays: %s", port_id, instance_uuid, problem
        )
        return  # keep the row: the NIC is still there; the heal reports it
    snap = await engine.policy.snapshot(engine.store, instance_uuid)
    await engine.policy.remove(
        engine.store, snap, instance_uuid, port_id, max(revision or 0, row.revision)
    )


async def vif_deleted(
    engine: Engine, instance_uuid: str, port_id: str, started: object = None
) -> None:
    async with engine.traced("vif-deleted", instance_uuid, port_id), engine.locks.port(port_id):
        if callable(started):
            started()
        with translate_errors("vif-deleted"):
            await _forget(engine, instance_uuid, port_id)


async def refresh_instance(engine: Engine, instance_uuid: str, started: object = None) -> None:
    async with (
        engine.traced("refresh-instance", instance_uuid) as trace,
        engine.locks.instance_refresh(instance_uuid) as waited,
    ):
        if callable(started):
            started()
        trace.add_lock_wait("refresh", waited)
        with translate_errors("refresh"):
            rows = {r.port_id: r for r in await engine.store.vifs(instance_uuid)}
            ports = [
                p
                for p in await engine.network.list_ports(device_id=instance_uuid)
                if p.host == engine.host
            ]
            ids = [p.id for p in ports]
            nets = {p.network_id for p in ports}
            engine.netcache.invalidate(nets)
            fips, _ = await asyncio.gather(
                engine.network.list_floating_ips(ids) if ids else _nothing(),
                engine.netcache.get(nets),
            )
            busy = await engine.store.open_ports()
            for port in ports:
                if port.id in busy or engine.locks.port_held(port.id):
                    continue
                row = rows.get(port.id)
                await write_port(
                    engine,
                    instance_uuid,
                    port,
                    fips,
                    expect=None if row is None else row.revision,
                )
            for port_id in rows:
                if port_id in ids or port_id in busy or engine.locks.port_held(port_id):
                    continue
                async with engine.locks.try_port(port_id) as got:
                    if got:
                        await _forget(engine, instance_uuid, port_id)


async def _nothing() -> list[FloatingIP]:
    return []
