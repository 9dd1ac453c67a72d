"""MemoryDriver: domains, plug/unplug with the latency model and guest behaviours, behind-
the-back changes, fault injection, counters and memory. Every delay goes through a fake
sleep (recorded; either instant or gated by the test): no wall-clock time is asserted."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from hotport.model import VIF, Network
from hotport.virt.base import (
    NIC,
    DeviceDetachFailed,
    DeviceDetachTimeout,
    Domain,
    DomainExists,
    DomainNotFound,
    HostLacks,
    HypervisorUnavailable,
    VirtDriver,
    VirtTransient,
)
from hotport.virt.memory import DEFAULT_VIF_TYPES, MemoryDriver

T = TypeVar("T")
UUID = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"


class Sleeper:
    """A fake `sleep`: records every delay; instant (one loop turn) unless `gated`, in which
    case each call waits until the test releases it."""

    def __init__(self, *, gated: bool = False) -> None:
        self.gated = gated
        self.calls: list[float] = []
        self.pending: list[asyncio.Future[None]] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)
        if not self.gated:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        await fut

    def release_all(self) -> None:
        pending, self.pending = self.pending, []
        for fut in pending:
            if not fut.done():
                fut.set_result(None)


async def settle(done: Callable[[], bool], rounds: int = 10_000) -> None:
    for _ in range(rounds):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop did not reach the expected state")


async def finish(*tasks: asyncio.Task[T]) -> list[T]:
    await settle(lambda: all(t.done() for t in tasks))
    return [t.result() for t in tasks]


def vif(
    port_id: str = "aaaaaaaa-0000-0000-0000-000000000001",
    mac: str = "fa:16:3e:00:00:01",
    *,
    type: str = "ovs",
    bridge: str | None = "br-int",
    details: dict[str, Any] | None = None,
    should_create_bridge: bool = False,
) -> VIF:
    meta: dict[str, Any] = {"mtu": 1450}
    if should_create_bridge:
        meta["should_create_bridge"] = True
    network = Network(id="net-1", label="private", bridge=bridge, meta=meta)
    return VIF(id=port_id, address=mac, network=network, type=type, details=details or {})


def nth(i: int) -> VIF:
    """The i-th distinct port (MAC fa:16:3e:00:01:i, ...)."""
    mac = f"fa:16:3e:{i >> 16 & 255:02x}:{(i >> 8 & 255) + 1:02x}:{i & 255:02x}"
    return vif(f"port-{i:08d}-0000-0000-000000000000", mac)


async def driver_with_domain(**kwargs: Any) -> tuple[MemoryDriver, Sleeper]:
    sleeper = kwargs.pop("sleeper", None) or Sleeper()
    driver = MemoryDriver(sleep=sleeper, **kwargs)
    await driver.create_domain(UUID, "instance-00000001")
    return driver, sleeper


# -- the contract and domains ---------------------------------------------------------------


def test_is_a_virt_driver() -> None:
    driver: VirtDriver = MemoryDriver()
    assert driver.name == "memory"


async def test_domains_are_created_listed_and_removed() -> None:
    driver = MemoryDriver(sleep=Sleeper())
    assert await driver.create_domain(UUID, "one") == Domain(UUID, "one", "running")
    await driver.create_domain(OTHER, "two")
    assert await driver.domains() == [
        Domain(UUID, "one", "running"),
        Domain(OTHER, "two", "running"),
    ]
    with pytest.raises(DomainExists):
        await driver.create_domain(UUID, "again")
    await driver.remove_domain(UUID)
    assert [d.uuid for d in await driver.domains()] == [OTHER]
    with pytest.raises(DomainNotFound):
        await driver.remove_domain(UUID)


async def test_an_empty_uuid_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty uuid"):
        await MemoryDriver().create_domain("", "x")


async def test_unknown_domains_raise_domain_not_found_everywhere() -> None:
    driver, sleeper = await driver_with_domain()
    with pytest.raises(DomainNotFound):
        await driver.plug(OTHER, vif())
    with pytest.raises(DomainNotFound):
        await driver.unplug(OTHER, vif(), within=1.0)
    with pytest.raises(DomainNotFound):
        await driver.nics(OTHER)
    with pytest.raises(DomainNotFound):
        await driver.add_nic_behind_back(OTHER, NIC("fa:16:3e:00:00:09"))
    with pytest.raises(DomainNotFound):
        await driver.remove_nic_behind_back(OTHER, "fa:16:3e:00:00:09")
    with pytest.raises(DomainNotFound):
        driver.set_guest(OTHER, "never")
    assert sleeper.calls == []
    snap = driver.snapshot()
    assert snap["plugs"] == {"not_found": 1}
    assert snap["unplugs"] == {"not_found": 1}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="plug_time"):
        MemoryDriver(plug_time=-1)
    with pytest.raises(ValueError, match="time_scale"):
        MemoryDriver(time_scale=float("nan"))


# -- plug -------------------------------------------------------------------------------------


async def test_plug_takes_the_scaled_plug_time_then_adds_the_nic() -> None:
    driver, sleeper = await driver_with_domain(plug_time=2.0, time_scale=0.01)
    v = vif()
    await driver.plug(UUID, v)
    assert sleeper.calls == [pytest.approx(0.02)]
    assert await driver.nics(UUID) == [NIC(mac=v.address, dev=v.devname, port_id=v.id)]
    assert v.devname == "tap" + v.id[:11]


async def test_the_nic_appears_only_after_the_delay() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    t = asyncio.create_task(driver.plug(UUID, vif()))
    await settle(lambda: len(sleeper.pending) == 1)
    assert await driver.nics(UUID) == []
    assert driver.snapshot()["in_flight"] == {"plug": 1, "unplug": 0}
    sleeper.release_all()
    await finish(t)
    assert len(await driver.nics(UUID)) == 1
    assert driver.snapshot()["in_flight"] == {"plug": 0, "unplug": 0}


async def test_plug_is_idempotent_by_mac() -> None:
    driver, sleeper = await driver_with_domain()
    await driver.plug(UUID, vif())
    await driver.plug(UUID, vif())  # same MAC: success at once, no duplicate
    await driver.plug(UUID, vif(mac="FA:16:3E:00:00:01"))  # MACs compare case-insensitively
    assert len(await driver.nics(UUID)) == 1
    assert len(sleeper.calls) == 1
    assert driver.snapshot()["plugs"] == {"ok": 1, "already": 2}


async def test_concurrent_plugs_of_one_mac_leave_one_nic() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    tasks = [asyncio.create_task(driver.plug(UUID, vif())) for _ in range(5)]
    await settle(lambda: len(sleeper.pending) == 5)  # all five past the first check
    sleeper.release_all()
    await finish(*tasks)
    assert len(await driver.nics(UUID)) == 1
    assert driver.snapshot()["plugs"] == {"ok": 1, "already": 4}


async def test_nics_come_in_plug_order() -> None:
    driver, _ = await driver_with_domain()
    a, b, c = nth(1), nth(2), nth(3)
    for v in (a, b, c):
        await driver.plug(UUID, v)
    assert [n.port_id for n in await driver.nics(UUID)] == [a.id, b.id, c.id]
    await driver.unplug(UUID, b, within=10)
    await driver.plug(UUID, b)
    assert [n.port_id for n in await driver.nics(UUID)] == [a.id, c.id, b.id]


async def test_nics_of_one_domain_are_independent_of_another() -> None:
    driver, _ = await driver_with_domain()
    await driver.create_domain(OTHER, "two")
    await driver.plug(UUID, nth(1))
    await driver.plug(OTHER, nth(1))  # the same MAC in another domain is another NIC
    assert len(await driver.nics(UUID)) == 1
    assert len(await driver.nics(OTHER)) == 1


@pytest.mark.parametrize("vif_type", sorted(DEFAULT_VIF_TYPES))
async def test_default_vif_types_plug(vif_type: str) -> None:
    driver, _ = await driver_with_domain()
    await driver.plug(UUID, vif(type=vif_type))
    assert len(await driver.nics(UUID)) == 1


@pytest.mark.parametrize("vif_type", ["vhostuser", "hw_veb", "binding_failed", "unbound", ""])
async def test_an_unsupported_vif_type_is_refused_before_anything_changes(vif_type: str) -> None:
    driver, sleeper = await driver_with_domain()
    with pytest.raises(HostLacks, match="not supported"):
        await driver.plug(UUID, vif(type=vif_type))
    assert await driver.nics(UUID) == []
    assert sleeper.calls == []
    assert driver.snapshot()["plugs"] == {"host_lacks": 1}


async def test_supported_vif_types_are_configurable() -> None:
    driver, _ = await driver_with_domain(vif_types={"vhostuser"})
    await driver.plug(UUID, vif(type="vhostuser"))
    with pytest.raises(HostLacks):
        await driver.plug(UUID, nth(2))  # ovs is not supported by this host
    assert len(await driver.nics(UUID)) == 1


async def test_a_missing_bridge_is_refused_when_the_host_bridges_are_known() -> None:
    driver, sleeper = await driver_with_domain(bridges={"br-int"})
    await driver.plug(UUID, vif(bridge="br-int"))
    with pytest.raises(HostLacks, match="br-ex"):
        await driver.plug(UUID, vif("p2", "fa:16:3e:00:00:02", bridge="br-ex"))
    with pytest.raises(HostLacks, match="br-other"):  # the binding's bridge_name wins
        await driver.plug(UUID, vif("p3", "fa:16:3e:00:00:03", details={"bridge_name": "br-other"}))
    # A Linux-bridge port whose bridge the host creates is fine; tap ports need no bridge.
    await driver.plug(
        UUID,
        vif("p4", "fa:16:3e:00:00:04", type="bridge", bridge="brq1", should_create_bridge=True),
    )
    await driver.plug(UUID, vif("p5", "fa:16:3e:00:00:05", type="tap", bridge=None))
    assert [n.port_id for n in await driver.nics(UUID)] == [vif().id, "p4", "p5"]
    assert len(sleeper.calls) == 3


async def test_a_domain_removed_during_a_plug_is_not_found_and_a_new_one_is_untouched() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    t = asyncio.create_task(driver.plug(UUID, vif()))
    await settle(lambda: len(sleeper.pending) == 1)
    await driver.remove_domain(UUID)
    await driver.create_domain(UUID, "reborn")
    sleeper.release_all()
    await settle(t.done)
    assert isinstance(t.exception(), DomainNotFound)
    assert await driver.nics(UUID) == []


async def test_a_plug_cancelled_during_its_delay_changes_nothing() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    t = asyncio.create_task(driver.plug(UUID, vif()))
    await settle(lambda: len(sleeper.pending) == 1)
    t.cancel()
    await settle(t.done)
    assert t.cancelled()
    assert await driver.nics(UUID) == []
    snap = driver.snapshot()
    assert snap["plugs"] == {"cancelled": 1}
    assert snap["in_flight"]["plug"] == 0


# -- unplug -----------------------------------------------------------------------------------


async def test_unplug_of_an_absent_nic_is_success_at_once() -> None:
    driver, sleeper = await driver_with_domain()
    await driver.unplug(UUID, vif(), within=1.0)
    assert sleeper.calls == []
    assert driver.snapshot()["unplugs"] == {"absent": 1}


async def test_an_acknowledging_guest_releases_after_the_scaled_unplug_time() -> None:
    driver, sleeper = await driver_with_domain(unplug_time=3.0, time_scale=0.1)
    await driver.plug(UUID, vif())
    sleeper.calls.clear()
    await driver.unplug(UUID, vif(mac="FA:16:3E:00:00:01"), within=1.0)
    assert sleeper.calls == [pytest.approx(0.3)]
    assert await driver.nics(UUID) == []
    assert driver.snapshot()["unplugs"] == {"ok": 1}


async def test_an_ack_later_than_within_times_out_with_the_nic_still_there() -> None:
    driver, sleeper = await driver_with_domain(unplug_time=2.0)
    await driver.plug(UUID, vif())
    before = await driver.nics(UUID)
    sleeper.calls.clear()
    with pytest.raises(DeviceDetachTimeout, match="still attached"):
        await driver.unplug(UUID, vif(), within=0.5)
    assert sleeper.calls == [0.5]  # it waited the caller's deadline, unscaled
    assert await driver.nics(UUID) == before
    assert driver.snapshot()["unplugs"] == {"timeout": 1}


async def test_a_guest_that_never_acknowledges_times_out_after_within() -> None:
    driver, sleeper = await driver_with_domain(time_scale=0.01)
    await driver.plug(UUID, vif())
    driver.set_guest(UUID, "never")
    assert driver.guest(UUID) == "never"
    sleeper.calls.clear()
    with pytest.raises(DeviceDetachTimeout) as info:
        await driver.unplug(UUID, vif(), within=7.0)
    assert isinstance(info.value, VirtTransient)
    assert sleeper.calls == [7.0]  # `within` is not scaled: it is the caller's deadline
    assert len(await driver.nics(UUID)) == 1
    driver.set_guest(UUID, "ack")  # a retry once the guest cooperates succeeds
    await driver.unplug(UUID, vif(), within=7.0)
    assert await driver.nics(UUID) == []


async def test_a_refusing_guest_fails_at_once_and_keeps_the_nic() -> None:
    driver, sleeper = await driver_with_domain()
    await driver.plug(UUID, vif())
    driver.set_guest(UUID, "fail")
    sleeper.calls.clear()
    with pytest.raises(DeviceDetachFailed):
        await driver.unplug(UUID, vif(), within=10.0)
    assert sleeper.calls == []
    assert len(await driver.nics(UUID)) == 1
    assert driver.snapshot()["unplugs"] == {"failed": 1}


async def test_a_slow_guest_acknowledges_after_its_delay() -> None:
    driver, sleeper = await driver_with_domain(time_scale=0.5, slow_ack_time=8.0)
    await driver.plug(UUID, vif())
    await driver.plug(UUID, nth(2))
    driver.set_guest(UUID, "slow")  # default delay: slow_ack_time, scaled -> 4.0
    sleeper.calls.clear()
    with pytest.raises(DeviceDetachTimeout):
        await driver.unplug(UUID, vif(), within=3.0)
    await driver.unplug(UUID, vif(), within=5.0)
    assert sleeper.calls == [3.0, 4.0]
    driver.set_guest(UUID, "slow", ack_after=2.0)  # per domain: 2.0 scaled -> 1.0
    sleeper.calls.clear()
    await driver.unplug(UUID, nth(2), within=1.0)
    assert sleeper.calls == [1.0]
    assert await driver.nics(UUID) == []


def test_an_unknown_guest_behaviour_is_refused() -> None:
    driver = MemoryDriver()
    with pytest.raises(ValueError, match="guest behaviour"):
        driver.set_guest(UUID, "maybe")  # type: ignore[arg-type]


async def test_a_negative_within_is_refused() -> None:
    driver, _ = await driver_with_domain()
    with pytest.raises(ValueError, match="within"):
        await driver.unplug(UUID, vif(), within=-1)


async def test_concurrent_unplugs_of_one_nic_are_safe() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    sleeper.gated = False
    await driver.plug(UUID, vif())
    await driver.plug(UUID, nth(2))
    sleeper.gated = True
    tasks = [asyncio.create_task(driver.unplug(UUID, vif(), within=10)) for _ in range(3)]
    await settle(lambda: len(sleeper.pending) == 3)
    assert driver.snapshot()["in_flight"]["unplug"] == 3
    sleeper.release_all()
    await finish(*tasks)
    assert [n.port_id for n in await driver.nics(UUID)] == [nth(2).id]
    assert driver.snapshot()["unplugs"] == {"ok": 1, "absent": 2}


async def test_a_concurrent_plug_and_unplug_of_different_nics_both_apply() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    sleeper.gated = False
    await driver.plug(UUID, nth(1))
    sleeper.gated = True
    p = asyncio.create_task(driver.plug(UUID, nth(2)))
    u = asyncio.create_task(driver.unplug(UUID, nth(1), within=10))
    await settle(lambda: len(sleeper.pending) == 2)
    sleeper.release_all()
    await finish(p, u)
    assert [n.port_id for n in await driver.nics(UUID)] == [nth(2).id]


async def test_a_domain_removed_during_an_unplug_is_not_found() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    sleeper.gated = False
    await driver.plug(UUID, vif())
    sleeper.gated = True
    t = asyncio.create_task(driver.unplug(UUID, vif(), within=10))
    await settle(lambda: len(sleeper.pending) == 1)
    await driver.remove_domain(UUID)
    sleeper.release_all()
    await settle(t.done)
    assert isinstance(t.exception(), DomainNotFound)


# -- behind hotport's back --------------------------------------------------------------------


async def test_nics_added_and_removed_behind_the_back() -> None:
    driver, sleeper = await driver_with_domain()
    stray = NIC(mac="fa:16:3e:ff:ff:ff", dev="tapstray", port_id="stray")
    await driver.add_nic_behind_back(UUID, stray)
    assert await driver.nics(UUID) == [stray]
    with pytest.raises(ValueError, match="already has"):
        await driver.add_nic_behind_back(UUID, NIC(mac="FA:16:3E:FF:FF:FF"))
    await driver.plug(UUID, vif(mac="fa:16:3e:ff:ff:ff"))  # that MAC is there: success
    assert sleeper.calls == []
    await driver.plug(UUID, vif())
    assert await driver.remove_nic_behind_back(UUID, "FA:16:3E:00:00:01")
    assert not await driver.remove_nic_behind_back(UUID, "fa:16:3e:00:00:01")
    await driver.unplug(UUID, vif(), within=1)  # gone already: success
    assert await driver.nics(UUID) == [stray]
    assert driver.snapshot()["unplugs"] == {"absent": 1}


async def test_a_nic_removed_behind_the_back_during_an_unplug_is_success() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    await driver.add_nic_behind_back(UUID, NIC(mac=vif().address))
    t = asyncio.create_task(driver.unplug(UUID, vif(), within=10))
    await settle(lambda: len(sleeper.pending) == 1)
    await driver.remove_nic_behind_back(UUID, vif().address)
    sleeper.release_all()
    await finish(t)
    assert driver.snapshot()["unplugs"] == {"absent": 1}


# -- fault injection --------------------------------------------------------------------------


async def test_fail_next_plug_fails_one_plug_of_that_domain_and_changes_nothing() -> None:
    driver, sleeper = await driver_with_domain()
    await driver.create_domain(OTHER, "two")
    boom = HypervisorUnavailable("libvirtd restarting")
    driver.fail_next_plug(UUID, boom)
    await driver.plug(OTHER, nth(1))  # another domain is not affected
    with pytest.raises(HypervisorUnavailable) as info:
        await driver.plug(UUID, nth(1))
    assert info.value is boom
    assert await driver.nics(UUID) == []
    await driver.plug(UUID, nth(1))  # one shot
    assert len(await driver.nics(UUID)) == 1
    assert driver.snapshot()["plugs"] == {"ok": 2, "injected": 1}
    assert len(sleeper.calls) == 2


async def test_fail_next_plug_for_any_domain_and_queued_in_order() -> None:
    driver, _ = await driver_with_domain()
    driver.fail_next_plug(None, RuntimeError("first"))
    driver.fail_next_plug(None, KeyError("second"))
    with pytest.raises(RuntimeError, match="first"):
        await driver.plug(UUID, vif())
    with pytest.raises(KeyError):
        await driver.plug(UUID, vif())
    await driver.plug(UUID, vif())
    assert driver.snapshot()["plugs"] == {"injected": 2, "ok": 1}


async def test_clear_faults_forgets_the_queued_failures_only() -> None:
    driver, _ = await driver_with_domain()
    driver.fail_next_plug(UUID, RuntimeError("never fired"))
    driver.fail_next_unplug(None, DeviceDetachFailed("never fired"))
    driver.clear_faults()
    await driver.plug(UUID, vif())
    await driver.unplug(UUID, vif(), within=1)
    assert driver.snapshot()["plugs"] == {"ok": 1}
    assert driver.snapshot()["unplugs"] == {"ok": 1}
    driver.fail_next_plug(UUID, RuntimeError("armed again"))  # still usable afterwards
    with pytest.raises(RuntimeError, match="armed again"):
        await driver.plug(UUID, vif())


async def test_fail_next_unplug_fails_one_unplug_and_keeps_the_nic() -> None:
    driver, _ = await driver_with_domain()
    await driver.plug(UUID, vif())
    driver.fail_next_unplug(UUID, DeviceDetachFailed("injected"))
    with pytest.raises(DeviceDetachFailed):
        await driver.unplug(UUID, vif(), within=1)
    assert len(await driver.nics(UUID)) == 1
    await driver.unplug(UUID, vif(), within=1)
    assert await driver.nics(UUID) == []
    assert driver.snapshot()["unplugs"] == {"injected": 1, "ok": 1}


async def test_a_sync_plug_hook_sees_every_call_and_may_raise() -> None:
    driver, _ = await driver_with_domain()
    seen: list[tuple[str, str]] = []

    def hook(uuid: str, v: VIF) -> None:
        seen.append((uuid, v.id))
        if v.id == nth(2).id:
            raise HostLacks("no room")

    driver.set_plug_hook(hook)
    await driver.plug(UUID, nth(1))
    with pytest.raises(HostLacks, match="no room"):
        await driver.plug(UUID, nth(2))
    driver.set_plug_hook(None)
    await driver.plug(UUID, nth(2))
    assert seen == [(UUID, nth(1).id), (UUID, nth(2).id)]
    assert driver.snapshot()["plugs"] == {"ok": 2, "injected": 1}


async def test_an_async_unplug_hook_holds_the_call_in_flight() -> None:
    driver, _ = await driver_with_domain()
    await driver.plug(UUID, vif())
    entered, go = asyncio.Event(), asyncio.Event()

    async def hook(uuid: str, v: VIF) -> None:
        entered.set()
        await go.wait()

    driver.set_unplug_hook(hook)
    t = asyncio.create_task(driver.unplug(UUID, vif(), within=1))
    await entered.wait()
    assert driver.snapshot()["in_flight"]["unplug"] == 1
    assert len(await driver.nics(UUID)) == 1
    go.set()
    await finish(t)
    assert await driver.nics(UUID) == []
    assert driver.snapshot()["unplugs"] == {"ok": 1}


async def test_an_unavailable_hypervisor_fails_every_call_and_changes_nothing() -> None:
    driver, sleeper = await driver_with_domain()
    await driver.plug(UUID, vif())
    driver.set_available(False)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: driver.plug(UUID, nth(2)),
        lambda: driver.unplug(UUID, vif(), within=1),
        lambda: driver.nics(UUID),
        lambda: driver.domains(),
        lambda: driver.create_domain(OTHER, "x"),
        lambda: driver.remove_domain(UUID),
    ]
    for call in calls:
        with pytest.raises(HypervisorUnavailable):
            await call()
    assert not driver.snapshot()["available"]
    driver.set_available(True)
    assert [d.uuid for d in await driver.domains()] == [UUID]
    assert [n.port_id for n in await driver.nics(UUID)] == [vif().id]
    assert driver.snapshot()["plugs"] == {"ok": 1, "unavailable": 1}
    assert driver.snapshot()["unplugs"] == {"unavailable": 1}
    assert len(sleeper.calls) == 1


async def test_the_hypervisor_going_away_during_a_plug_changes_nothing() -> None:
    sleeper = Sleeper(gated=True)
    driver, _ = await driver_with_domain(sleeper=sleeper)
    t = asyncio.create_task(driver.plug(UUID, vif()))
    await settle(lambda: len(sleeper.pending) == 1)
    driver.set_available(False)
    sleeper.release_all()
    await settle(t.done)
    assert isinstance(t.exception(), HypervisorUnavailable)
    driver.set_available(True)
    assert await driver.nics(UUID) == []


async def test_close_is_idempotent_and_ends_the_connection() -> None:
    driver, _ = await driver_with_domain()
    await driver.close()
    await driver.close()
    with pytest.raises(HypervisorUnavailable, match="closed"):
        await driver.domains()
    with pytest.raises(HypervisorUnavailable):
        await driver.plug(UUID, vif())
    assert driver.snapshot()["closed"]


# -- counters and memory ----------------------------------------------------------------------


async def test_snapshot_shape() -> None:
    driver, _ = await driver_with_domain(plug_time=1.0, unplug_time=2.0, bridges=["br-int"])
    await driver.plug(UUID, vif())
    snap = driver.snapshot()
    assert snap == {
        "name": "memory",
        "available": True,
        "closed": False,
        "domains": 1,
        "nics": 1,
        "plugs": {"ok": 1},
        "unplugs": {},
        "in_flight": {"plug": 0, "unplug": 0},
        "model": {
            "plug_time": 1.0,
            "unplug_time": 2.0,
            "slow_ack_time": 5.0,
            "time_scale": 1.0,
            "vif_types": ["bridge", "ethernet", "ovs", "tap"],
            "bridges": ["br-int"],
        },
    }


async def test_ten_thousand_domains_with_ten_nics_stay_small_and_start_no_tasks() -> None:
    driver = MemoryDriver(plug_time=0.0, sleep=_no_sleep)
    vifs = [nth(i) for i in range(10)]
    uuids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(10_000)]
    tasks_before = len(asyncio.all_tasks())
    tracemalloc.start()
    try:
        for uuid in uuids:
            await driver.create_domain(uuid, uuid)
            for v in vifs:
                await driver.plug(uuid, v)
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert driver.snapshot()["nics"] == 100_000
    assert len(asyncio.all_tasks()) == tasks_before
    # About 17 MB here (~170 bytes per NIC, domains included); the bound leaves room for
    # other Python versions and fails if a per-NIC task or buffer creeps in (KBs each).
    assert current < 40 * 1024 * 1024, current


async def _no_sleep(delay: float) -> None:
    return None


async def test_the_default_sleep_works_with_zero_times() -> None:
    driver = MemoryDriver(plug_time=0, unplug_time=0)  # asyncio.sleep(0): no waiting
    await driver.create_domain(UUID, "x")
    await driver.plug(UUID, vif())
    await driver.unplug(UUID, vif(), within=0)
    assert await driver.nics(UUID) == []
