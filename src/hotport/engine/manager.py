"""`InterfaceManager`: the engine's one entry point for the API, the CLI and the benchmarks.

Owns: input validation (bad input is refused with `InvalidRequest` before anything is
touched), instance management (domains of drivers that can create them), and the
delegation of each operation to its module (attach, detach, events, heal, recovery).
It also runs the periodic heal when asked to.

Which modules run is chosen by the engine's policy, once, here: `hotport` runs
attach.py, detach.py, events.py and heal.py; the reference designs `article` and
`legacy` run `hotport.engine.reference` (upstream Nova's requests and locks). Under
`legacy` and `article`, `heal()` heals ONE instance per call (Nova's periodic task heals
one per run; its report names which): a whole host takes as many calls as it has
instances. Validation, instances, recovery and the journal are the same for all.

Must never: import a concrete backend (the composition root, `hotport.compose`, builds
it); hold a lock across operations.

Concurrency: every public coroutine may be called concurrently from one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotport.engine import errors as E
from hotport.engine import reference
from hotport.engine.attach import AttachResult, attach_network, attach_port
from hotport.engine.context import Engine, translate_errors
from hotport.engine.detach import DetachResult, detach
from hotport.engine.events import EventAnswer, accept_events
from hotport.engine.heal import HealReport, heal
from hotport.engine.recovery import RecoveryReport, recover
from hotport.engine.waiters import ExternalEvent
from hotport.model import VIF, NetworkInfo
from hotport.store.base import InstanceExists as StoreInstanceExists
from hotport.store.base import InstanceRow, JournalEntry
from hotport.virt import base as virt
from hotport.virt.base import NIC

log = logging.getLogger("hotport.engine")


@dataclass(frozen=True)
class InstanceView:
    instance: InstanceRow
    interfaces: NetworkInfo  # what the cache says
    nics: tuple[NIC, ...]  # what the domain really has


def check_uuid(value: str, what: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise E.InvalidRequest(f"{what} {value!r} is not a valid UUID") from None


class InterfaceManager:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._heal_task: asyncio.Task[None] | None = None
        self.last_heal: HealReport | None = None
        #: called with every heal's report (API and periodic loop alike): metrics hook here
        self.on_heal: list[Callable[[HealReport], None]] = []
        #: the hypervisor's recent domain lifecycle events (uuid, event), newest last
        self.domain_events: collections.deque[tuple[str, str]] = collections.deque(maxlen=1000)
        #: the reference design's operations (`article`, `legacy`); None: hotport's own
        self.reference = reference.operations_for(engine)

    def domain_event(self, instance_uuid: str, event: str) -> None:
        """A domain lifecycle event from the driver (destroyed, undefined, ...): recorded
        and logged; the next heal reconciles what it changed (a vanished domain's NICs)."""
        self.domain_events.append((instance_uuid, event))
        log.info("domain %s: %s", instance_uuid, event)

    # -- instances -------------------------------------------------------------------
    async def create_instance(self, instance_uuid: str, name: str) -> InstanceRow:
        """Create the domain and record the instance; on a driver that cannot create
        domains, record (adopt) an existing domain, or refuse with NotSupportedError."""
        instance_uuid = check_uuid(instance_uuid, "instance")
        if not name or len(name) > 255:
            raise E.InvalidRequest("name must be 1 to 255 characters")
        with translate_errors("create instance"):
            if await self.engine.store.get_instance(instance_uuid) is not None:
                raise E.InstanceExists(f"instance {instance_uuid} already exists")
            try:
                await self.engine.virt.create_domain(instance_uuid, name)
            except virt.DomainExists as exc:
                raise E.InstanceExists(f"a domain {instance_uuid} already exists") from exc
            except virt.NotSupported as exc:
                # a driver that does not own VMs (libvirt): adopt the domain if it is there
                if not any(d.uuid == instance_uuid for d in await self.engine.virt.domains()):
                    raise E.NotSupportedError(
                        f"the {self.engine.virt.name} driver cannot create domains; define "
                        f"and start domain {instance_uuid} with it first, then create the "
                        "instance again to adopt it"
                    ) from exc
            try:
                return await self.engine.store.create_instance(
                    instance_uuid, name, self.engine.host
                )
            except StoreInstanceExists as exc:
                await self.engine.virt.remove_domain(instance_uuid)
                raise E.InstanceExists(f"instance {instance_uuid} already exists") from exc

    async def adopt_instance(self, instance_uuid: str, name: str) -> InstanceRow:
        """Record an instance whose domain already exists (drivers that cannot create)."""
        instance_uuid = check_uuid(instance_uuid, "instance")
        with translate_errors("adopt instance"):
            existing = await self.engine.store.get_instance(instance_uuid)
            if existing is not None:
                return existing
            return await self.engine.store.create_instance(instance_uuid, name, self.engine.host)

    async def delete_instance(self, instance_uuid: str) -> None:
        """Detach every interface, remove the domain (a driver that does not own VMs
        keeps it), forget the instance."""
        instance_uuid = check_uuid(instance_uuid, "instance")
        await self._require(instance_uuid)
        with translate_errors("delete instance"):
            for row in await self.engine.store.vifs(instance_uuid):
                await self._detach(instance_uuid, row.port_id)
            with contextlib.suppress(virt.DomainNotFound, virt.NotSupported):
                await self.engine.virt.remove_domain(instance_uuid)
            await self.engine.store.delete_instance(instance_uuid)

    async def list_instances(self) -> list[InstanceRow]:
        with translate_errors("list instances"):
            return await self.engine.store.list_instances(self.engine.host)

    async def get_instance(self, instance_uuid: str) -> InstanceView:
        instance_uuid = check_uuid(instance_uuid, "instance")
        row = await self._require(instance_uuid)
        with translate_errors("show instance"):
            try:
                nics = tuple(await self.engine.virt.nics(instance_uuid))
            except virt.DomainNotFound:
                nics = ()
        return InstanceView(row, await self.interfaces(instance_uuid), nics)

    async def interfaces(self, instance_uuid: str) -> NetworkInfo:
        instance_uuid = check_uuid(instance_uuid, "instance")
        await self._require(instance_uuid)
        with translate_errors("list interfaces"):
            rows = await self.engine.store.vifs(instance_uuid)
        return NetworkInfo(tuple(VIF.from_json(r.vif) for r in rows))

    async def interface(self, instance_uuid: str, port_id: str) -> VIF:
        port_id = check_uuid(port_id, "port")
        vif = (await self.interfaces(instance_uuid)).get(port_id)
        if vif is None:
            raise E.InterfaceNotAttached(
                f"port {port_id} is not attached to instance {instance_uuid}"
            )
        return vif

    async def _require(self, instance_uuid: str) -> InstanceRow:
        with translate_errors("instance"):
            row = await self.engine.store.get_instance(instance_uuid)
        if row is None:
            raise E.InstanceNotFound(f"instance {instance_uuid} is not known on this host")
        return row

    # -- operations ------------------------------------------------------------------
    async def attach(
        self,
        instance_uuid: str,
        *,
        port_id: str | None = None,
        network_id: str | None = None,
        fixed_ips: Sequence[Mapping[str, str]] | None = None,
        tag: str | None = None,
    ) -> AttachResult:
        instance_uuid = check_uuid(instance_uuid, "instance")
        if (port_id is None) == (network_id is None):
            raise E.InvalidRequest("give exactly one of port_id or network_id")
        if tag is not None and (not tag or len(tag) > 60):
            raise E.InvalidRequest("tag must be 1 to 60 characters")
        if port_id is not None:
            if fixed_ips:
                raise E.InvalidRequest("fixed_ips can only be given with network_id")
            port_id = check_uuid(port_id, "port")
            if self.reference is not None:
                return await self.reference.attach_port(instance_uuid, port_id, tag=tag)
            return await attach_port(self.engine, instance_uuid, port_id, tag=tag)
        assert network_id is not None
        network_id = check_uuid(network_id, "network")
        checked = _check_fixed_ips(fixed_ips)
        if self.reference is not None:
            return await self.reference.attach_network(
                instance_uuid, network_id, fixed_ips=checked, tag=tag
            )
        return await attach_network(
            self.engine, instance_uuid, network_id, fixed_ips=checked, tag=tag
        )

    async def detach(self, instance_uuid: str, port_id: str) -> DetachResult:
        return await self._detach(
            check_uuid(instance_uuid, "instance"), check_uuid(port_id, "port")
        )

    async def _detach(self, instance_uuid: str, port_id: str) -> DetachResult:
        if self.reference is not None:
            return await self.reference.detach(instance_uuid, port_id)
        return await detach(self.engine, instance_uuid, port_id)

    async def events(self, events: Sequence[ExternalEvent]) -> list[EventAnswer]:
        if self.reference is not None:
            return await accept_events(self.engine, events, work=self.reference.schedule)
        return await accept_events(self.engine, events)

    async def heal(self) -> HealReport:
        """Heal the host (hotport); under `legacy`/`article`, the next ONE instance."""
        if self.reference is not None:
            report: HealReport = await self.reference.heal()
        else:
            report = await heal(self.engine)
        self.last_heal = report
        for fn in self.on_heal:
            fn(report)
        return report

    async def recover(self) -> RecoveryReport:
        return await recover(self.engine)

    async def journal(
        self, instance_uuid: str | None = None, limit: int = 100
    ) -> list[JournalEntry]:
        if instance_uuid is not None:
            instance_uuid = check_uuid(instance_uuid, "instance")
        with translate_errors("journal"):
            return await self.engine.store.journal(instance_uuid=instance_uuid, limit=limit)

    # -- lifecycle -------------------------------------------------------------------
    def start_heal_loop(self, interval: float) -> None:
        """Heal every `interval` seconds in the background (errors are logged)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.heal()
                except Exception as exc:  # the loop must go on
                    log.warning("periodic heal failed: %s: %s", type(exc).__name__, exc)

        self._heal_task = asyncio.get_running_loop().create_task(loop(), name="hotport-heal")

    async def drain(self) -> None:
        """Wait until the background work (event refreshes) is done."""
        await self.engine.background.drain()

    async def close(self) -> None:
        if self._heal_task is not None:
            self._heal_task.cancel()
            await asyncio.gather(self._heal_task, return_exceptions=True)
        await self.engine.background.close()
        closing = getattr(self.engine.reads, "aclose", None)  # (a coalescer's batches)
        if closing is not None:
            await closing()

    def stats(self) -> dict[str, Any]:
        e = self.engine
        reads = getattr(e.reads, "stats", None)  # (the coalescer's, per kind of read)
        return {
            "policy": e.policy.name,
            "reads": reads() if reads is not None else {},
            "locks": e.locks.stats(),
            "netcache": {
                "entries": len(e.netcache),
                "hits": e.netcache.hits,
                "misses": e.netcache.misses,
                "fetches": e.netcache.fetches,
            },
            "refused_writes": dict(e.store.refused_writes()),
            "background": {
                "busy": e.background.busy,
                "submitted": e.background.submitted,
                "coalesced": e.background.coalesced,
                "failed": e.background.failed,
            },
        }


def _check_fixed_ips(
    fixed_ips: Sequence[Mapping[str, str]] | None,
) -> list[dict[str, str]] | None:
    if fixed_ips is None:
        return None
    out: list[dict[str, str]] = []
    for i, ip in enumerate(fixed_ips):
        keys = set(ip)
        if not keys or not keys <= {"ip_address", "subnet_id"}:
            raise E.InvalidRequest(
                f"fixed_ips[{i}] must have ip_address and/or subnet_id, and nothing else"
            )
        out.append({k: str(v) for k, v in ip.items()})
    return out
