"""The reference designs `legacy` and `article`: what upstream Nova does, on this engine.

Owns: the operations of the two designs hotport is measured against, run on the same
engine, store, locks, hypervisor driver, journal and traces as hotport's own (so request
counts, round trips and lock waits show in traces and metrics exactly as for hotport):

- `legacy`, the old design: attach, detach, every `network-changed` and the heal rebuild
  the instance's whole network info under `refresh_cache-{instance}`, sending exactly the
  requests upstream Nova sends, in the same order, one after another, nothing shared
  between ports.
- `article`, the fix as first described: attach and detach take only the port lock and
  send Nova's attach/detach requests minus the full rebuild (an attach builds only its
  own VIF), then read-modify-write the instance's whole network info (the `article`
  cache policy: read when the operation starts, written back whole, so two operations on
  one instance can lose an update, on purpose); the events and the heal are Nova's,
  full rebuild under the instance lock included.

It mirrors (read from openstack/nova, never copied) `nova.compute.manager.ComputeManager`
`attach_interface` / `_attach_interface`, `detach_interface` / `_detach_interface`,
`external_instance_event`, `_process_instance_vif_deleted_event`,
`_heal_instance_info_cache` / `_require_nw_info_update`, and `nova.network.neutron.API`
`create_resource_requests` / `_get_port_vnic_info`, `allocate_for_instance`
(`_validate_requested_port_ids`, `_validate_requested_network_ids`,
`_get_available_networks`, `_create_port_minimal`, `_update_ports_for_instance`),
`deallocate_port_for_instance`, `_unbind_ports`, `_delete_ports`,
`get_instance_nw_info` / `_build_network_info_model` (`refresh_vif_id`, `force_refresh`),
`_gather_port_ids_and_networks`, `_get_ordered_port_list`, `_build_vif_model`,
`_nw_info_get_ips` / `_get_floating_ips_by_fixed_and_port`, `_get_subnets_from_port`,
`_nw_info_build_network` / `_get_physnet_tunneled_info`, `update_instance_cache_with_nw_info`.

## The requests (S subnets and F fixed IPs per port, typically F = S; N ports before)

One VIF built (`_build_vif_model`), F + 1 + S + P requests, in this order:
`list_floating_ips(port, fixed_ip_address)` x F; `list_subnets(ids)` (none when the port
has no fixed IP); `list_ports(network_id, device_owner=network:dhcp)` x S;
`show_network(fields=segments)`, then `show_network(fields=physnet, type)` unless a
segment names a physical network (P = 2 on a usual single-segment network).

legacy (REBUILD = under `refresh_cache-{instance}`: `list_ports(device_id)`, then
`list_networks(ids)` unless an attach gave them, the VIFs built one by one, the whole
network info written):

- attach a port: `show_port`, P x `show_network` (Nova's create_resource_requests);
  `show_port` (validate), `list_networks([net])`, `bind_port`; REBUILD of the N+1 ports
  (no `list_networks`); plug.
- attach by network: P x `show_network`; `list_networks([net])`, `create_port`,
  `bind_port`; REBUILD as above; plug.
- detach: unplug; `show_port`; the user's port: `show_port`, `show_network(dns_domain)`,
  `unbind_port` (a port Nova created: `delete_port`); REBUILD of the N-1 left.
- `network-changed` with a tag: under the lock, `list_ports`, `list_networks([net])`,
  that one VIF built, written back in place (7 requests).
- `network-changed` without a tag: REBUILD of the cached ports (5N+2).
- `network-vif-deleted`: no request and no lock: the VIF cut from the cache read when
  the event arrived, written back whole, then the NIC unplugged.
- `network-vif-plugged` / `-unplugged`: waiters woken, nothing else.
- heal, one instance: `list_ports(device_id, fields=binding)` (outside the lock; ports
  bound elsewhere or failed are bound here again: `list_ports` + one `bind_port` each);
  REBUILD of Neutron's ports (5N+3).

article: attach and detach send the same requests minus the REBUILD: an attach then
builds only its own VIF (F + 1 + S + P) and writes it by read-modify-write; a detach
removes its VIF by read-modify-write. Everything else is legacy's.

Totals with S = F = 1 (P = 2): legacy attach 5N+12, attach by network 5N+11, detach
5N+1 / 5N-1 (delete), tagged 7, untagged 5N+2, heal 5N+3 per instance; with S = F = 2:
attach 7N+14, detach 7N-1, heal 7N+3. Article: attach 6+F+1+S+P (11; 13 with S = 2),
attach by network 10 (12), detach 4 (unbind) or 2 (delete).

Where this follows Nova rather than hotport's conventions (on purpose): a port that has
any device id is refused (`PortInUse`) even if it is this instance's; binds and unbinds
carry no `If-Match`; a failed unbind on detach is logged and ignored; the rebuild after
an attach takes the other ports' network details from the cache (name and project only:
their MTU is lost, as upstream); the heal neither compares nor repairs NICs; the cache
is written before the plug on attach, and a failed plug is undone by the detach's
release. One deliberate difference: a port a rebuild finds that the cache had lost (a
lost update) would be recorded by Nova as one Nova created, so a later detach would
DELETE the user's port; here it keeps what its row last said (`preserve_on_delete`, tag),
so a lost update is not compounded into a deleted port. Nova passes `fields=` on some
reads (a port's profile, a network's segments); hotport's `show_port` has no `fields`,
so that read returns the whole port: same count, same order, bigger answer.

The heal heals ONE instance per call (Nova's periodic task heals one per run): the next
one of a round-robin list rebuilt from the host's instances whenever it is exhausted;
its report (`ReferenceHealReport`) names it. A whole-host comparison calls it H times.

Must never: be used by the `hotport` policy (its operations live in attach.py, detach.py,
events.py and heal.py and are not touched by this module); share a request between two
ports or send two requests at once (everything here is sequential, as upstream).

Concurrency: the locks are Nova's: `port-{port_id}` stands for Nova's
`interface-{instance}-{port}` (an attach by network takes the pseudo port id
`{instance}-None`, as Nova locks `interface-{instance}-None`); `refresh_cache-{instance}`
is held for every rebuild (waited for, never tried); `network-vif-deleted` takes no lock
(upstream's known race). Event work runs in background tasks, one per event, not
coalesced.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, overload

from hotport.engine import errors as E
from hotport.engine.attach import AttachResult, marker_name, require_instance
from hotport.engine.context import Engine, describe, translate_errors
from hotport.engine.contracts import NetworkAPI
from hotport.engine.detach import DetachResult
from hotport.engine.events import kept_from_row
from hotport.engine.heal import HealReport
from hotport.engine.policy import Snapshot
from hotport.engine.trace import OperationTrace
from hotport.engine.waiters import ExternalEvent
from hotport.model import VIF
from hotport.model.build import build_vif
from hotport.network import errors as net
from hotport.network.models import FloatingIP, Network, PartialPort, Port, Subnet
from hotport.store.base import VifRow
from hotport.virt import base as virt

log = logging.getLogger("hotport.engine.reference")

DHCP_OWNER = "network:dhcp"
FAILED_VIF_TYPES = frozenset({"unbound", "binding_failed"})


@dataclass(frozen=True)
class Design:
    """One reference design: how its attach and detach reach the cache."""

    name: str
    #: attach/detach write only their own VIF (read-modify-write of the instance's network
    #: info under the port lock) instead of rebuilding it all under the instance lock
    incremental: bool
    summary: str


LEGACY = Design("legacy", False, "every operation rebuilds the whole cache (upstream Nova)")
ARTICLE = Design(
    "article", True, "attach/detach incremental, read-modify-write; events and heal as Nova"
)
DESIGNS: dict[str, Design] = {d.name: d for d in (LEGACY, ARTICLE)}


class ReferenceNetwork(NetworkAPI, Protocol):
    """The network calls the reference designs send beyond hotport's own
    (`hotport.network.NeutronClient` has them all)."""

    @overload
    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = ...,
        device_id: str | None = ...,
        device_owner: str | None = ...,
        network_id: str | None = ...,
        host: str | None = ...,
        fields: None = ...,
    ) -> list[Port]: ...

    @overload
    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = ...,
        device_id: str | None = ...,
        device_owner: str | None = ...,
        network_id: str | None = ...,
        host: str | None = ...,
        fields: Sequence[str],
    ) -> list[PartialPort]: ...

    async def show_network(self, network_id: str, *, fields: Sequence[str]) -> dict[str, Any]: ...

    async def list_networks(
        self,
        ids: Sequence[str] | None = None,
        *,
        shared: bool | None = None,
        project_id: str | None = None,
    ) -> list[Network]: ...

    async def list_floating_ips(
        self, port_ids: Sequence[str] | None, *, fixed_ip_address: str | None = None
    ) -> list[FloatingIP]: ...


@dataclass
class ReferenceHealReport(HealReport):
    """One tick of Nova's heal: ONE instance's network info rebuilt from Neutron."""

    #: the instance healed by this call (None: the host has none, or all were gone)
    healed_instance: str | None = None
    #: instances left in this round of the round-robin list
    queued: int = 0


@dataclass
class _Blob:
    """An instance's network info as the cache holds it (Nova's instance.info_cache)."""

    rows: list[VifRow]

    @property
    def port_ids(self) -> list[str]:
        return [r.port_id for r in self.rows]

    @property
    def network_ids(self) -> list[str]:
        return [str(r.vif.get("network", {}).get("id", "")) for r in self.rows]

    @property
    def preserved(self) -> set[str]:
        return {r.port_id for r in self.rows if r.vif.get("preserve_on_delete")}

    def tag(self, port_id: str) -> str | None:
        for r in self.rows:
            if r.port_id == port_id:
                tag = (r.vif.get("meta") or {}).get("tag")
                return None if tag is None else str(tag)
        return None

    def network_stubs(self) -> list[dict[str, Any]]:
        """What `_gather_port_ids_and_networks` makes of the cached networks: id, name and
        project only (no MTU, no provider details)."""
        out = []
        for r in self.rows:
            network = r.vif.get("network") or {}
            out.append(
                {
                    "id": network.get("id"),
                    "name": network.get("label"),
                    "tenant_id": (network.get("meta") or {}).get("tenant_id"),
                }
            )
        return out


@dataclass
class _Attached:
    """What an attach hands to the rebuild (Nova: networks=, port_ids=, preexisting=)."""

    port_id: str
    networks: list[dict[str, Any]]
    preexisting: bool
    tag: str | None


@dataclass
class _Rebuilt:
    rows: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    listed: int = 0


def operations_for(engine: Engine) -> ReferenceOperations | None:
    """The reference operations of the engine's policy; None for hotport's own."""
    design = DESIGNS.get(engine.policy.name)
    return None if design is None else ReferenceOperations(engine, design)


class ReferenceOperations:
    """The operations of one reference design on one engine (the heal's round-robin
    list is per instance of this class, as Nova's is per compute manager)."""

    def __init__(self, engine: Engine, design: Design) -> None:
        self.engine = engine
        self.design = design
        self._to_heal: list[str] = []

    @property
    def _net(self) -> ReferenceNetwork:
        network = self.engine.network
        if not callable(getattr(network, "show_network", None)):
            raise E.NotSupportedError(
                f"the {self.design.name} design needs a network client with show_network "
                "(hotport.network.NeutronClient)"
            )
        return cast(ReferenceNetwork, network)

    # -- attach -----------------------------------------------------------------------
    async def attach_port(
        self, instance_uuid: str, port_id: str, *, tag: str | None = None
    ) -> AttachResult:
        engine = self.engine
        await require_instance(engine, instance_uuid)
        async with engine.traced("attach", instance_uuid, port_id) as trace:
            async with engine.locks.port(port_id) as waited:  # interface-{inst}-{port}
                trace.add_lock_wait("port", waited)
                with translate_errors("attach"):
                    entry = await engine.store.journal_start(
                        instance_uuid, port_id, "attach", {"created": False}
                    )
                    snap = await self._snapshot(instance_uuid)
                    try:
                        with trace.phase("read"):
                            # create_resource_requests: _get_port_vnic_info, physnet
                            port = await self._net.show_port(port_id)
                            await self._physnet_tunneled(port.network_id)
                            # allocate_for_instance: validate the port, then its network
                            port = await self._net.show_port(port_id)
                            _check_usable(port)
                            networks = await self._available_networks([port.network_id])
                        with trace.phase("bind"):
                            port = await self._net.bind_port(
                                port_id,
                                device_id=instance_uuid,
                                host=engine.host,
                                device_owner=engine.config.device_owner,
                            )
                        await engine.store.journal_update(
                            entry, {"bound": True, "revision": port.revision_number}
                        )
                    except BaseException as exc:
                        await engine.store.journal_finish(entry, "failed", describe(exc))
                        raise
                    vif = await self._finish_attach(
                        trace, entry, instance_uuid, port, networks, False, tag, snap
                    )
            return AttachResult(vif, created_port=False, trace=trace)

    async def attach_network(
        self,
        instance_uuid: str,
        network_id: str,
        *,
        fixed_ips: Sequence[Mapping[str, str]] | None = None,
        tag: str | None = None,
    ) -> AttachResult:
        engine = self.engine
        await require_instance(engine, instance_uuid)
        async with engine.traced("attach", instance_uuid) as trace:
            # Nova locks interface-{instance}-None: attaches by network of one instance
            # run one at a time
            async with engine.locks.port(f"{instance_uuid}-None") as waited:
                trace.add_lock_wait("port", waited)
                with translate_errors("attach"):
                    entry = await engine.store.journal_start(
                        instance_uuid, None, "attach", {"network_id": network_id, "created": True}
                    )
                    snap = await self._snapshot(instance_uuid)
                    try:
                        with trace.phase("read"):
                            await self._physnet_tunneled(network_id)
                            networks = await self._available_networks([network_id])
                            if not networks:
                                raise E.NetworkNotFound(
                                    f"attach: network {network_id} could not be found"
                                )
                        with trace.phase("create"):
                            port = await self._net.create_port(
                                network_id,
                                device_id=instance_uuid,
                                host=engine.host,
                                device_owner=engine.config.device_owner,
                                fixed_ips=fixed_ips,
                                name=marker_name(entry),
                            )
                        trace.port_id = port.id
                        await engine.store.journal_update(entry, {"port_id": port.id})
                        with trace.phase("bind"):
                            try:
                                port = await self._net.bind_port(
                                    port.id,
                                    device_id=instance_uuid,
                                    host=engine.host,
                                    device_owner=engine.config.device_owner,
                                )
                            except BaseException:
                                with contextlib.suppress(Exception):  # Nova's _delete_ports
                                    await self._net.delete_port(port.id)
                                raise
                        await engine.store.journal_update(
                            entry, {"bound": True, "revision": port.revision_number}
                        )
                    except BaseException as exc:
                        await engine.store.journal_finish(entry, "failed", describe(exc))
                        raise
                    vif = await self._finish_attach(
                        trace, entry, instance_uuid, port, networks, True, tag, snap
                    )
            return AttachResult(vif, created_port=True, trace=trace)

    async def _finish_attach(
        self,
        trace: OperationTrace,
        entry: int,
        instance_uuid: str,
        port: Port,
        networks: list[dict[str, Any]],
        created: bool,
        tag: str | None,
        snap: Snapshot,
    ) -> VIF:
        """The cache (before the plug, as Nova's allocate_for_instance does), then the
        plug; a failed plug is undone by the detach's release."""
        engine = self.engine
        try:
            if self.design.incremental:
                with trace.phase("build"):
                    vif = await self._build_vif(
                        port, networks, set() if created else {port.id}, tag
                    )
                with trace.phase("store"):
                    await engine.policy.put(
                        engine.store, snap, instance_uuid, port.id, vif.to_json(), _rev(port)
                    )
            else:
                rebuilt = await self._nw_info(
                    trace, instance_uuid, attached=_Attached(port.id, networks, not created, tag)
                )
                mine = [r for r in rebuilt.rows if r[0] == port.id]
                if not mine:  # Nova: allocate_for_instance returned no port
                    raise E.ConflictError(
                        f"attach: port {port.id} is no longer bound to instance "
                        f"{instance_uuid} at the network service"
                    )
                vif = VIF.from_json(mine[0][1])
        except BaseException as exc:
            await engine.store.journal_finish(entry, "failed", describe(exc))
            raise
        try:
            with trace.phase("plug"):
                await engine.virt.plug(instance_uuid, vif)
        except BaseException as exc:
            problem = ""
            try:
                with trace.phase("rollback"):
                    await self._deallocate(port.id, preserve=not created)
                    await self._drop_from_cache(trace, instance_uuid, port.id, snap)
            except Exception as undo:  # reported in the journal
                problem = f" (rollback incomplete: {describe(undo)})"
            await engine.store.journal_finish(entry, "failed", describe(exc) + problem)
            raise
        await engine.store.journal_finish(entry, "done", details={"revision": _rev(port)})
        return vif

    # -- detach -----------------------------------------------------------------------
    async def detach(self, instance_uuid: str, port_id: str) -> DetachResult:
        engine = self.engine
        with translate_errors("detach"):
            if await engine.store.get_instance(instance_uuid) is None:
                raise E.InstanceNotFound(f"instance {instance_uuid} is not known on this host")
        async with engine.traced("detach", instance_uuid, port_id) as trace:
            async with engine.locks.port(port_id) as waited:
                trace.add_lock_wait("port", waited)
                with translate_errors("detach"):
                    deleted = await self._detach_locked(trace, instance_uuid, port_id)
            return DetachResult(port_id, deleted, trace)

    async def _detach_locked(self, trace: OperationTrace, instance_uuid: str, port_id: str) -> bool:
        engine = self.engine
        blob = await self._blob(instance_uuid)  # refresh_info_cache_for_instance
        row = next((r for r in blob.rows if r.port_id == port_id), None)
        if row is None:
            raise E.InterfaceNotAttached(
                f"port {port_id} is not attached to instance {instance_uuid}"
            )
        snap = await self._snapshot(instance_uuid)
        vif = VIF.from_json(row.vif)
        created = not vif.preserve_on_delete
        entry = await engine.store.journal_start(
            instance_uuid, port_id, "detach", {"revision": row.revision, "created": created}
        )
        try:
            with trace.phase("unplug"):
                await engine.virt.unplug(instance_uuid, vif, within=engine.config.detach_timeout)
        except (virt.DeviceDetachTimeout, virt.DeviceDetachFailed) as exc:
            msg = (
                f"the guest of instance {instance_uuid} did not release port {port_id}: "
                f"{exc}; nothing was changed"
            )
            await engine.store.journal_finish(entry, "failed", msg)
            raise E.GuestDidNotRelease(msg) from exc
        except BaseException as exc:
            await engine.store.journal_finish(entry, "failed", describe(exc))
            raise
        try:
            with trace.phase("unbind"):
                await self._deallocate(port_id, preserve=not created)
            await self._drop_from_cache(trace, instance_uuid, port_id, snap)
        except BaseException as exc:  # Nova: the NIC stays unplugged, the cache as it was
            await engine.store.journal_finish(entry, "failed", describe(exc))
            raise
        await engine.store.journal_finish(entry, "done", details={"revision": row.revision})
        return created

    async def _deallocate(self, port_id: str, *, preserve: bool) -> None:
        """Nova's deallocate_port_for_instance before its rebuild: read the port (its
        resource request), then unbind the user's port or delete one Nova created."""
        with contextlib.suppress(net.PortNotFound):
            await self._net.show_port(port_id)
        if not preserve:
            await self._net.delete_port(port_id)  # _delete_ports: a 404 is fine
            return
        # _unbind_ports: the port's profile and network, the network's dns_domain, the PUT
        try:
            port = await self._net.show_port(port_id)
        except net.PortNotFound:
            return
        except net.NetworkServiceError as exc:  # Nova assumes empty profile and network
            log.warning("detach: cannot read port %s: %s", port_id, describe(exc))
        else:
            await self._net.show_network(port.network_id, fields=["dns_domain"])
        try:
            await self._net.unbind_port(port_id)
        except net.PortNotFound:
            pass
        except net.NetworkServiceError as exc:  # Nova logs it and goes on
            log.warning("detach: unable to clear the device id of port %s: %s", port_id, exc)

    async def _drop_from_cache(
        self, trace: OperationTrace, instance_uuid: str, port_id: str, snap: Snapshot
    ) -> None:
        if self.design.incremental:
            with trace.phase("store"):
                await self.engine.policy.remove(self.engine.store, snap, instance_uuid, port_id, 0)
        else:
            await self._nw_info(trace, instance_uuid)

    # -- events -----------------------------------------------------------------------
    def schedule(self, engine: Engine, ev: ExternalEvent) -> None:
        """The work of one accepted event (`accept_events`' hook): one background task
        per event, nothing coalesced (Nova handles every event it receives)."""
        inst, port = ev.server_uuid, ev.tag
        if ev.name == "network-changed":
            if port is None:
                engine.background.spawn(self.refresh_instance(inst), f"refresh-{inst}")
            else:
                engine.background.spawn(self.refresh_port(inst, port), f"refresh-{port}")
        elif ev.name == "network-vif-deleted" and port is not None:
            engine.background.spawn(self.vif_deleted(inst, port), f"deleted-{port}")
        # network-vif-plugged / -unplugged only wake waiters (done by accept_events)

    async def refresh_port(self, instance_uuid: str, port_id: str) -> None:
        """Tagged network-changed: get_instance_nw_info(refresh_vif_id=port)."""
        async with self.engine.traced("refresh", instance_uuid, port_id) as trace:
            with translate_errors("refresh"):
                await self._nw_info(trace, instance_uuid, refresh_vif=port_id)

    async def refresh_instance(self, instance_uuid: str) -> None:
        """Untagged network-changed: get_instance_nw_info() from the cached port list."""
        async with self.engine.traced("refresh-instance", instance_uuid) as trace:
            with translate_errors("refresh"):
                await self._nw_info(trace, instance_uuid)

    async def vif_deleted(self, instance_uuid: str, port_id: str) -> None:
        """No lock, no request: the VIF is cut from the cache read when the event arrived
        and the result written back whole, then the NIC is unplugged."""
        engine = self.engine
        async with engine.traced("vif-deleted", instance_uuid, port_id) as trace:
            with translate_errors("vif-deleted"):
                # the cache as the event found it (both designs: this is Nova's handler)
                snap = await engine.policy.snapshot(engine.store, instance_uuid)
                row = next(
                    (r for r in (await self._blob(instance_uuid)).rows if r.port_id == port_id),
                    None,
                )
                if row is None:
                    return
                with trace.phase("store"):
                    await engine.policy.remove(engine.store, snap, instance_uuid, port_id, 0)
                try:
                    await engine.virt.unplug(
                        instance_uuid,
                        VIF.from_json(row.vif),
                        within=engine.config.detach_timeout,
                    )
                except virt.VirtError as exc:  # Nova logs it
                    log.warning("vif-deleted %s: detaching the NIC failed: %s", port_id, exc)

    # -- heal -------------------------------------------------------------------------
    async def heal(self) -> ReferenceHealReport:
        """One tick of Nova's `_heal_instance_info_cache`: the next instance of the
        round-robin list, its network info rebuilt from Neutron under its lock."""
        engine = self.engine
        report = ReferenceHealReport()
        async with engine.traced("heal") as trace:
            with translate_errors("heal"):
                inst = await self._next_to_heal()
                report.healed_instance = inst
                report.queued = len(self._to_heal)
                if inst is not None:
                    trace.instance_uuid = inst
                    report.instances = 1
                    await self._heal_instance(trace, report, inst)
            report.network_requests = trace.request_count
        report.seconds = trace.seconds
        return report

    async def _next_to_heal(self) -> str | None:
        store, host = self.engine.store, self.engine.host
        if not self._to_heal:
            instances = [i.uuid for i in await store.list_instances(host)]
            if not instances:
                return None
            self._to_heal = instances[1:]
            return instances[0]
        while self._to_heal:
            uuid = self._to_heal.pop(0)
            if await store.get_instance(uuid) is not None:
                return uuid
        return None

    async def _heal_instance(
        self, trace: OperationTrace, report: ReferenceHealReport, inst: str
    ) -> None:
        engine = self.engine
        # _require_nw_info_update: are the bindings this host's?
        bindings = await self._net.list_ports(
            device_id=inst, fields=["binding:host_id", "binding:vif_type"]
        )
        if any(p.host != engine.host or p.vif_type in FAILED_VIF_TYPES for p in bindings):
            # setup_instance_network_on_host: bind them to this host again
            for port in await self._net.list_ports(device_id=inst):
                if port.host != engine.host or port.vif_type in FAILED_VIF_TYPES:
                    await self._net.bind_port(
                        port.id,
                        device_id=inst,
                        host=engine.host,
                        device_owner=engine.config.device_owner,
                    )
        before = {r.port_id: r for r in (await self._blob(inst)).rows}
        rebuilt = await self._nw_info(trace, inst, force=True)
        report.ports_seen = rebuilt.listed
        after = {port_id: (vif, rev) for port_id, vif, rev in rebuilt.rows}
        for port_id, (vif, rev) in after.items():
            old = before.get(port_id)
            if old is None:
                report.added.append(port_id)
            elif old.revision != rev or old.vif != vif:
                report.updated.append(port_id)
        report.removed.extend(p for p in before if p not in after)

    # -- Nova's get_instance_nw_info ----------------------------------------------------
    async def _nw_info(
        self,
        trace: OperationTrace,
        inst: str,
        *,
        attached: _Attached | None = None,
        refresh_vif: str | None = None,
        force: bool = False,
    ) -> _Rebuilt:
        """Under `refresh_cache-{inst}`: list the instance's ports, build the VIFs one
        after another, write the whole network info (unconditionally)."""
        engine = self.engine
        async with engine.locks.instance_refresh(inst) as waited:
            trace.add_lock_wait("refresh", waited)
            with trace.phase("rebuild"):
                blob = await self._blob(inst)
                rebuilt = await self._build_network_info(blob, inst, attached, refresh_vif, force)
            with trace.phase("store"):
                await engine.store.replace_instance_vifs(inst, rebuilt.rows)
        return rebuilt

    async def _build_network_info(
        self,
        blob: _Blob,
        inst: str,
        attached: _Attached | None,
        refresh_vif: str | None,
        force: bool,
    ) -> _Rebuilt:
        ports = await self._net.list_ports(device_id=inst)
        current = {p.id: p for p in ports}
        out = _Rebuilt(listed=len(ports))
        preexisting = blob.preserved
        tags = {port_id: blob.tag(port_id) for port_id in blob.port_ids}
        if attached is not None:
            tags[attached.port_id] = attached.tag
            if attached.preexisting:
                preexisting.add(attached.port_id)
        for port_id in current.keys() - tags.keys():
            # a port the cache lost (a lost update, a failed attach): Nova would record it
            # as created by Nova (and delete it on detach); keep what its row last said
            preserve, tags[port_id] = kept_from_row(await self.engine.store.vif(port_id))
            if preserve:
                preexisting.add(port_id)
        if refresh_vif is not None and blob.rows:
            # one VIF refreshed in (or added to, or removed from) the cached list
            rows = [(r.port_id, dict(r.vif), r.revision) for r in blob.rows]
            port = current.get(refresh_vif)
            if port is None:
                out.rows = [r for r in rows if r[0] != refresh_vif]
                return out
            networks = await self._available_networks([port.network_id])
            vif = await self._build_vif(port, networks, preexisting, tags.get(port.id))
            fresh = (port.id, vif.to_json(), _rev(port))
            index = next((i for i, r in enumerate(rows) if r[0] == port.id), None)
            if index is None:
                rows.append(fresh)
            else:
                rows[index] = fresh
            out.rows = rows
            return out
        if attached is None and force:
            # the heal: Neutron's ports, in attach order (new ones last)
            known = [p for p in blob.port_ids if p in current]
            port_ids = known + [p.id for p in ports if p.id not in set(known)]
            networks = await self._available_networks([current[p].network_id for p in port_ids])
        elif attached is None:
            # _gather_port_ids_and_networks: the cached ports, their networks re-read
            port_ids = blob.port_ids
            networks = await self._available_networks(blob.network_ids)
        else:
            given = {str(n.get("id")) for n in attached.networks}
            networks = attached.networks + [
                n for n in blob.network_stubs() if str(n.get("id")) not in given
            ]
            port_ids = [p for p in blob.port_ids if p != attached.port_id] + [attached.port_id]
        for port_id in port_ids:
            port = current.get(port_id)
            if port is None:
                continue  # no longer the instance's: dropped from the cache
            vif = await self._build_vif(port, networks, preexisting, tags.get(port_id))
            out.rows.append((port_id, vif.to_json(), _rev(port)))
        return out

    async def _build_vif(
        self,
        port: Port,
        networks: Sequence[Mapping[str, Any]],
        preexisting: set[str],
        tag: str | None,
    ) -> VIF:
        """Nova's _build_vif_model: F + 1 + S + P requests, one after another."""
        fips: list[FloatingIP] = []
        for ip in port.fixed_ips:  # _nw_info_get_ips
            fips.extend(
                await self._net.list_floating_ips([port.id], fixed_ip_address=ip.ip_address)
            )
        subnets: list[Subnet] = []
        if port.fixed_ips:  # _get_subnets_from_port
            subnet_ids = list(dict.fromkeys(ip.subnet_id for ip in port.fixed_ips))
            subnets = await self._net.list_subnets(ids=subnet_ids)
            for subnet in subnets:  # the subnet's DHCP port (its address: dhcp_server)
                await self._net.list_ports(network_id=subnet.network_id, device_owner=DHCP_OWNER)
        provider = await self._physnet_tunneled(port.network_id)  # _nw_info_build_network
        network = next((dict(n) for n in networks if n.get("id") == port.network_id), None)
        if network is None:  # not among the networks: Nova takes the port's project
            network = {"id": port.network_id, "name": None, "tenant_id": port.project_id}
        network.update(provider)
        try:
            return build_vif(
                port.to_neutron(),
                network,
                [s.to_neutron() for s in subnets],
                [f.to_neutron() for f in fips],
                preserve_on_delete=port.id in preexisting,
                tag=tag,
            )
        except ValueError as exc:
            raise E.EngineError(f"cannot build the VIF of port {port.id}: {exc}") from exc

    async def _physnet_tunneled(self, network_id: str) -> dict[str, Any]:
        """Nova's _get_physnet_tunneled_info: the network's segments; unless one names a
        physical network, its provider type and physical network (P = 1 or 2)."""
        shown = await self._net.show_network(network_id, fields=["segments"])
        segments = shown.get("segments") or []
        if any(s.get("provider:physical_network") for s in segments):
            return {"segments": segments}
        if segments:
            raise E.EngineError(
                f"none of the segments of network {network_id} provides a physical_network"
            )
        return await self._net.show_network(
            network_id, fields=["provider:physical_network", "provider:network_type"]
        )

    async def _available_networks(self, network_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Nova's _get_available_networks: the given networks in one request; with none
        given, the project's own networks and then the shared ones (two requests)."""
        ids = [n for n in network_ids if n]
        if ids:
            found = await self._net.list_networks(ids)
        else:
            project = self.engine.config.project_id
            found = await self._net.list_networks(None, project_id=project, shared=False)
            found += await self._net.list_networks(None, shared=True)
        return [n.to_neutron() for n in found]

    # -- the cache --------------------------------------------------------------------
    async def _blob(self, instance_uuid: str) -> _Blob:
        return _Blob(await self.engine.store.vifs(instance_uuid))

    async def _snapshot(self, instance_uuid: str) -> Snapshot:
        """The network info read when an operation starts (the article's read-modify-write
        writes back what it read then); the legacy rebuilds read under the lock instead."""
        if not self.design.incremental:
            return None
        return await self.engine.policy.snapshot(self.engine.store, instance_uuid)


def _check_usable(port: Port) -> None:
    """Nova's _validate_requested_port_ids: a port with any device id is in use."""
    if port.device_id:
        raise E.PortInUse(
            f"port {port.id} is in use by device {port.device_id} "
            f"(owner {port.device_owner or 'unknown'}); detach it there first"
        )
    if port.vif_type == "binding_failed":
        raise E.ConflictError(f"the binding of port {port.id} failed; it cannot be attached")


def _rev(port: Port) -> int:
    return port.revision_number or 0
