"""An in-memory `VirtDriver` with a latency model, guest behaviours and fault injection.

Owns: `MemoryDriver`: domains and the NICs each really has (in plug order), the time a plug
and an unplug take (`plug_time`, `unplug_time`, scaled by `time_scale`, spent through an
injectable `sleep`), how each domain's guest answers a detach (`"ack"`, `"never"`,
`"fail"`, `"slow"`), the VIF types (and optionally the bridges) the host supports, fault
injection (one-shot failures, per-call hooks, the hypervisor going away), counters by
outcome, and test hooks that change a domain behind hotport's back.

Must never: import the engine, the store or the network client; read the wall clock
(every delay goes through `sleep`); start a task per NIC or per domain (10,000 domains x
10 NICs are plain slotted values); change anything on a call that fails, except where a
failure is documented as happening after the change (none is).

Concurrency: one event loop, not thread-safe. Calls for different domains, and for
different NICs of one domain, run concurrently. A plug checks for the MAC again after its
delay and inserts with no await in between, so concurrent plugs of one MAC leave one NIC;
an unplug removes with no await after its delay, so concurrent unplugs of one NIC are
safe (the second finds it gone: success). A domain removed (or re-created) while a call
sleeps makes that call raise `DomainNotFound` without touching the new domain. MACs are
compared case-insensitively and stored lower-case, as libvirt reports them.

The latency model: a plug sleeps `plug_time * time_scale`; an unplug is acknowledged after
`unplug_time * time_scale` (guest "ack") or `slow_ack_time * time_scale` (guest "slow",
per-domain overridable); a guest "never" acknowledges. The caller's `within` is NOT scaled
(it is the caller's own deadline): when the acknowledgement would come after `within`, the
unplug sleeps `within` and raises `DeviceDetachTimeout` with the NIC still present. A late
acknowledgement after a timeout is not modelled (the NIC stays until the next unplug).
The default times are illustrative, not measured.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hotport.virt.base import (
    NIC,
    DeviceDetachFailed,
    DeviceDetachTimeout,
    Domain,
    DomainExists,
    DomainNotFound,
    HostLacks,
    HypervisorUnavailable,
)

if TYPE_CHECKING:
    from hotport.model import VIF

__all__ = [
    "DEFAULT_VIF_TYPES",
    "GuestBehaviour",
    "MemoryDriver",
    "VirtHook",
]

GuestBehaviour = Literal["ack", "never", "fail", "slow"]
GUEST_BEHAVIOURS: frozenset[str] = frozenset({"ack", "never", "fail", "slow"})
DEFAULT_VIF_TYPES: frozenset[str] = frozenset({"ovs", "bridge", "tap", "ethernet"})
# VIF types whose host side is a bridge that must exist (checked when `bridges` is given).
BRIDGED_TYPES: frozenset[str] = frozenset({"ovs", "bridge"})

Sleep = Callable[[float], Awaitable[None]]
VirtHook = Callable[[str, "VIF"], Awaitable[None] | None]
"""Called with (instance_uuid, vif) at the start of every plug (or unplug), after the
availability check; it may raise (the call fails with that error, nothing changed) or
await (the call is in flight meanwhile)."""

Op = Literal["plug", "unplug"]


@dataclass(slots=True)
class _Dom:
    uuid: str
    name: str
    nics: dict[str, NIC] = field(default_factory=dict)  # lower-case MAC -> NIC, plug order
    guest: GuestBehaviour = "ack"
    ack_after: float | None = None  # per-domain delay of a "slow" guest (model seconds)


class _Note:
    """The outcome a call reports for the counters when it does not end with "ok"."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome: str | None = None


def _mac_key(mac: str) -> str:
    return mac.lower()


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, DomainNotFound):
        return "not_found"
    if isinstance(exc, HostLacks):
        return "host_lacks"
    if isinstance(exc, HypervisorUnavailable):
        return "unavailable"
    if isinstance(exc, DeviceDetachTimeout):
        return "timeout"
    if isinstance(exc, DeviceDetachFailed):
        return "failed"
    return "error"


def _nonneg(value: float, what: str) -> float:
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return value


class MemoryDriver:
    """A hypervisor in a dict: see the module docstring for the model."""

    name: str = "memory"

    def __init__(
        self,
        *,
        plug_time: float = 0.1,
        unplug_time: float = 0.2,
        slow_ack_time: float = 5.0,
        time_scale: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        vif_types: Iterable[str] = DEFAULT_VIF_TYPES,
        bridges: Collection[str] | None = None,
        name: str = "memory",
    ) -> None:
        self.plug_time = _nonneg(plug_time, "plug_time")
        self.unplug_time = _nonneg(unplug_time, "unplug_time")
        self.slow_ack_time = _nonneg(slow_ack_time, "slow_ack_time")
        self.time_scale = _nonneg(time_scale, "time_scale")
        self.vif_types = frozenset(vif_types)
        self.bridges = None if bridges is None else frozenset(bridges)
        self.name = name
        self._sleep = sleep
        self._domains: dict[str, _Dom] = {}
        self._available = True
        self._closed = False
        self._faults: dict[Op, deque[tuple[str | None, BaseException]]] = {
            "plug": deque(),
            "unplug": deque(),
        }
        self._hooks: dict[Op, VirtHook | None] = {"plug": None, "unplug": None}
        self._counts: dict[Op, Counter[str]] = {"plug": Counter(), "unplug": Counter()}
        self._in_flight: Counter[Op] = Counter()

    # -- VirtDriver: NICs ---------------------------------------------------------------

    async def plug(self, instance_uuid: str, vif: VIF) -> None:
        """Attach a NIC for `vif` after `plug_time`; a NIC with that MAC is success."""
        note = _Note()
        await self._counted("plug", self._plug(instance_uuid, vif, note), note)

    async def unplug(self, instance_uuid: str, vif: VIF, *, within: float) -> None:
        """Detach the NIC with `vif`'s MAC and wait for the guest, at most `within` seconds
        (not scaled). Absent is success; on timeout or refusal the NIC stays."""
        within = _nonneg(within, "within")
        note = _Note()
        await self._counted("unplug", self._unplug(instance_uuid, vif, within, note), note)

    async def nics(self, instance_uuid: str) -> list[NIC]:
        self._check_up()
        return list(self._dom(instance_uuid).nics.values())

    # -- VirtDriver: domains ------------------------------------------------------------

    async def domains(self) -> list[Domain]:
        self._check_up()
        return [Domain(d.uuid, d.name, "running") for d in self._domains.values()]

    async def create_domain(self, instance_uuid: str, name: str) -> Domain:
        self._check_up()
        if not isinstance(instance_uuid, str) or not instance_uuid:
            raise ValueError(f"a domain needs a non-empty uuid, got {instance_uuid!r}")
        if instance_uuid in self._domains:
            raise DomainExists(f"domain {instance_uuid} already exists")
        self._domains[instance_uuid] = _Dom(instance_uuid, name)
        return Domain(instance_uuid, name, "running")

    async def remove_domain(self, instance_uuid: str) -> None:
        self._check_up()
        if self._domains.pop(instance_uuid, None) is None:
            raise DomainNotFound(f"no domain {instance_uuid}")

    async def close(self) -> None:
        """Idempotent; every later call raises `HypervisorUnavailable`."""
        self._closed = True

    # -- test hooks: acting behind hotport's back ----------------------------------------
    # (async like the driver's calls, though they never wait and ignore `set_available`)

    async def add_nic_behind_back(self, instance_uuid: str, nic: NIC) -> None:
        """A NIC appears without hotport (someone ran `virsh attach-interface`)."""
        dom = self._dom(instance_uuid)
        key = _mac_key(nic.mac)
        if key in dom.nics:
            raise ValueError(f"domain {instance_uuid} already has a NIC with MAC {nic.mac}")
        dom.nics[key] = nic

    async def remove_nic_behind_back(self, instance_uuid: str, mac: str) -> bool:
        """A NIC disappears without hotport; returns whether there was one."""
        return self._dom(instance_uuid).nics.pop(_mac_key(mac), None) is not None

    def set_guest(
        self, instance_uuid: str, behaviour: GuestBehaviour, *, ack_after: float | None = None
    ) -> None:
        """How the guest of `instance_uuid` answers detaches from now on. `ack_after` sets
        the delay of a "slow" guest (model seconds, scaled; default `slow_ack_time`)."""
        if behaviour not in GUEST_BEHAVIOURS:
            raise ValueError(f"guest behaviour must be one of {sorted(GUEST_BEHAVIOURS)}")
        dom = self._dom(instance_uuid)
        dom.guest = behaviour
        dom.ack_after = None if ack_after is None else _nonneg(ack_after, "ack_after")

    def guest(self, instance_uuid: str) -> GuestBehaviour:
        return self._dom(instance_uuid).guest

    # -- fault injection ----------------------------------------------------------------

    def set_available(self, available: bool) -> None:
        """False: every driver call raises `HypervisorUnavailable` (the test hooks above
        still work: they act behind the connection)."""
        self._available = available

    def fail_next_plug(self, instance_uuid: str | None, exc: BaseException) -> None:
        """The next plug of `instance_uuid` (of any domain if None) raises `exc` before
        anything changes. Queued: several calls fail several plugs, in order."""
        self._faults["plug"].append((instance_uuid, exc))

    def fail_next_unplug(self, instance_uuid: str | None, exc: BaseException) -> None:
        """As `fail_next_plug`, for unplugs."""
        self._faults["unplug"].append((instance_uuid, exc))

    def clear_faults(self) -> None:
        """Forget every queued plug and unplug failure (`fail_next_plug`/`_unplug`) that
        has not fired yet."""
        for queued in self._faults.values():
            queued.clear()

    def set_plug_hook(self, hook: VirtHook | None) -> None:
        self._hooks["plug"] = hook

    def set_unplug_hook(self, hook: VirtHook | None) -> None:
        self._hooks["unplug"] = hook

    # -- counters -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Counters and state: plugs/unplugs by outcome ("ok", "already"/"absent",
        "timeout", "failed", "host_lacks", "not_found", "unavailable", "injected",
        "cancelled", "error"), calls in flight, domains and NICs, the model's settings."""
        return {
            "name": self.name,
            "available": self._available and not self._closed,
            "closed": self._closed,
            "domains": len(self._domains),
            "nics": sum(len(d.nics) for d in self._domains.values()),
            "plugs": dict(self._counts["plug"]),
            "unplugs": dict(self._counts["unplug"]),
            "in_flight": {"plug": self._in_flight["plug"], "unplug": self._in_flight["unplug"]},
            "model": {
                "plug_time": self.plug_time,
                "unplug_time": self.unplug_time,
                "slow_ack_time": self.slow_ack_time,
                "time_scale": self.time_scale,
                "vif_types": sorted(self.vif_types),
                "bridges": None if self.bridges is None else sorted(self.bridges),
            },
        }

    # -- the mechanics --------------------------------------------------------------------

    async def _counted(self, op: Op, call: Awaitable[None], note: _Note) -> None:
        self._in_flight[op] += 1
        try:
            await call
        except asyncio.CancelledError:
            self._counts[op]["cancelled"] += 1
            raise
        except BaseException as exc:
            self._counts[op][note.outcome or _outcome_of(exc)] += 1
            raise
        else:
            self._counts[op][note.outcome or "ok"] += 1
        finally:
            self._in_flight[op] -= 1

    def _check_up(self) -> None:
        if self._closed:
            raise HypervisorUnavailable(f"{self.name} driver is closed")
        if not self._available:
            raise HypervisorUnavailable(f"{self.name} hypervisor is unavailable")

    def _dom(self, instance_uuid: str) -> _Dom:
        dom = self._domains.get(instance_uuid)
        if dom is None:
            raise DomainNotFound(f"no domain {instance_uuid}")
        return dom

    def _still(self, dom: _Dom) -> None:
        """After a delay: the hypervisor is still there and so is the very same domain."""
        self._check_up()
        if self._domains.get(dom.uuid) is not dom:
            raise DomainNotFound(f"domain {dom.uuid} went away during the call")

    async def _inject(self, op: Op, instance_uuid: str, vif: VIF, note: _Note) -> None:
        faults = self._faults[op]
        for i, (target, exc) in enumerate(faults):
            if target is None or target == instance_uuid:
                del faults[i]
                note.outcome = "injected"
                raise exc
        hook = self._hooks[op]
        if hook is not None:
            note.outcome = "injected"  # if the hook raises
            result = hook(instance_uuid, vif)
            if inspect.isawaitable(result):
                await result
            note.outcome = None

    def _check_vif(self, vif: VIF) -> None:
        if vif.type not in self.vif_types:
            raise HostLacks(
                f"VIF type {vif.type!r} of port {vif.id} is not supported by this host "
                f"(supported: {', '.join(sorted(self.vif_types))})"
            )
        if self.bridges is not None and vif.type in BRIDGED_TYPES:
            bridge = vif.details.get("bridge_name") or vif.network.bridge
            creatable = vif.type == "bridge" and vif.network.should_create_bridge
            if not creatable and bridge not in self.bridges:
                raise HostLacks(
                    f"port {vif.id} needs bridge {bridge!r}, which this host lacks "
                    f"(bridges: {', '.join(sorted(self.bridges))})"
                )

    async def _plug(self, instance_uuid: str, vif: VIF, note: _Note) -> None:
        self._check_up()
        await self._inject("plug", instance_uuid, vif, note)
        dom = self._dom(instance_uuid)
        self._check_vif(vif)
        key = _mac_key(vif.address)
        if key in dom.nics:
            note.outcome = "already"
            return
        await self._sleep(self.plug_time * self.time_scale)
        self._still(dom)
        # No await from here on: the presence check and the insert are one step.
        if key in dom.nics:
            note.outcome = "already"
            return
        dom.nics[key] = NIC(mac=key, dev=vif.devname or None, port_id=vif.id)

    async def _unplug(self, instance_uuid: str, vif: VIF, within: float, note: _Note) -> None:
        self._check_up()
        await self._inject("unplug", instance_uuid, vif, note)
        dom = self._dom(instance_uuid)
        key = _mac_key(vif.address)
        if key not in dom.nics:
            note.outcome = "absent"
            return
        guest = dom.guest
        if guest == "fail":
            raise DeviceDetachFailed(
                f"guest of {instance_uuid} refused to release NIC {key} (port {vif.id})"
            )
        if guest == "never":
            ack = math.inf
        elif guest == "slow":
            ack = (self.slow_ack_time if dom.ack_after is None else dom.ack_after) * self.time_scale
        else:
            ack = self.unplug_time * self.time_scale
        if ack > within:
            await self._sleep(within)
            raise DeviceDetachTimeout(
                f"guest of {instance_uuid} did not release NIC {key} (port {vif.id}) "
                f"within {within:g} s; the NIC is still attached"
            )
        await self._sleep(ack)
        self._still(dom)
        # No await from here on.
        if dom.nics.pop(key, None) is None:
            note.outcome = "absent"  # a concurrent unplug (or someone else) got there first
