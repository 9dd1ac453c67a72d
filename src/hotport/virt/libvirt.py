"""The libvirt/QEMU `VirtDriver`: real hot-plug of NICs into running domains.

Owns: `LibvirtDriver`: one libvirt connection (reconnected with backoff when libvirtd
restarts), plug (live + persistent config; config only when the domain is shut off;
idempotent by MAC), unplug that waits for libvirt's device-removed event with a deadline
and bounded, backed-off attempts (re-observing the live XML before any retry, never
re-sending while a detach is still in flight), the NICs a domain really has (live XML),
the domains with their state, and lifecycle events for listeners
(`add_lifecycle_listener(fn)`, called with (uuid, event name)). The XML itself is in
`hotport.virt.libvirt_xml` (pure, unit-tested).

Must never: import the engine, the store or the network client; create or remove domains
(`NotSupported`: hotport does not own VMs); block the event loop (every libvirt call runs
in the bounded thread pool); report an unplug as done without having seen the NIC gone
(libvirt's detach call returns success after its own 5 s wait even when the guest kept
the device); change the persistent config on an unplug the guest has not completed.

Concurrency: used from one asyncio loop (the one that first uses the driver). Blocking
calls run in a `ThreadPoolExecutor(max_threads)`; the connection is shared by those
threads (libvirt connections are thread-safe). libvirt events are dispatched by
libvirt's default event implementation, run by ONE daemon thread per process (registered
once, before the first connection is opened) and handed to the loop with
`call_soon_threadsafe`; waiters and listeners therefore only ever run on the loop.
(libvirtaio was the first choice, but its handle/timer callbacks are not thread-safe:
the RPC calls made from the pool's threads update libvirt's handles, which would mutate
the asyncio selector from foreign threads; and it binds to one loop per process.)
`libvirt` is imported lazily, in the constructor: the rest of hotport, and mypy, work
without libvirt-python.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import threading
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hotport.virt.base import (
    NIC,
    DeviceDetachFailed,
    DeviceDetachTimeout,
    Domain,
    DomainNotFound,
    DomainState,
    HypervisorUnavailable,
    NotSupported,
    VirtError,
    VirtPermanent,
    VirtTransient,
)
from hotport.virt.libvirt_xml import check_host, interface_element, interface_xml, parse_nics

if TYPE_CHECKING:
    from hotport.model import VIF

__all__ = ["LibvirtDriver", "LifecycleListener"]

log = logging.getLogger(__name__)

T = TypeVar("T")
LifecycleListener = Callable[[str, str], None]
"""Called on the loop with (domain uuid, event name): "defined", "undefined", "started",
"suspended", "resumed", "stopped", "destroyed", "shutdown", "pmsuspended", "crashed"."""

_LIFECYCLE = [
    "defined",
    "undefined",
    "started",
    "suspended",
    "resumed",
    "stopped",
    "shutdown",
    "pmsuspended",
    "crashed",
]
_IN_PROGRESS_TEXT = "already in the process of unplug"

_events_lock = threading.Lock()
_events_started = False


def _start_event_thread(libvirt: Any) -> None:
    """Register libvirt's default event implementation once per process (before any
    connection is opened) and run it in one daemon thread."""
    global _events_started
    with _events_lock:
        if _events_started:
            return
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no stderr noise
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # pragma: no cover - keep dispatching whatever happens
                    log.exception("libvirt event loop iteration failed")

        threading.Thread(target=run, name="hotport-libvirt-events", daemon=True).start()
        _events_started = True


class _Removal:
    """One unplug's wait for libvirt's device-removed / removal-failed event."""

    __slots__ = ("future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[bool] = loop.create_future()


class LibvirtDriver:
    """See the module docstring."""

    name: str = "libvirt"

    def __init__(
        self,
        uri: str = "qemu:///system",
        *,
        max_threads: int = 4,
        detach_attempts: int = 3,
        reconnect_attempts: int = 8,
        reconnect_backoff: float = 0.2,
        reconnect_backoff_max: float = 2.0,
        keepalive: tuple[int, int] = (5, 3),
        observe_grace: float = 0.25,
        host_root: Path = Path("/"),
    ) -> None:
        # Lazy (the extra hotport[libvirt]); via importlib so mypy needs no stubs.
        libvirt: Any = importlib.import_module("libvirt")

        if max_threads < 1 or detach_attempts < 1 or reconnect_attempts < 1:
            raise ValueError("max_threads, detach_attempts and reconnect_attempts must be >= 1")
        self._lv: Any = libvirt
        self.uri = uri
        self.detach_attempts = detach_attempts
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_backoff_max = reconnect_backoff_max
        self.keepalive = keepalive
        self.observe_grace = observe_grace
        self.host_root = host_root
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="hotport-lv")
        self._conn: Any = None
        self._conn_dead = threading.Event()
        self._callback_ids: list[int] = []
        self._connect_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._removals: dict[tuple[str, str], list[_Removal]] = defaultdict(list)
        self._sending: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._listeners: list[LifecycleListener] = []
        self.reconnects = 0
        _start_event_thread(libvirt)

    # -- VirtDriver ---------------------------------------------------------------------

    async def plug(self, instance_uuid: str, vif: VIF) -> None:
        """Attach the NIC (live + config on a running persistent domain, config only
        when shut off). A NIC with that MAC already present is success."""
        check_host(vif, root=self.host_root)  # before anything is touched
        xml = interface_xml(vif)
        lv = self._lv

        def do(conn: Any) -> None:
            dom = conn.lookupByUUIDString(instance_uuid)
            active = bool(dom.isActive())
            current = dom.XMLDesc(0 if active else lv.VIR_DOMAIN_XML_INACTIVE)
            if interface_element(current, vif.address) is not None:
                return
            if active:
                flags = lv.VIR_DOMAIN_AFFECT_LIVE
                # config too, unless it already has it (a late guest ack after a timed-out
                # unplug leaves the config entry: re-plugging then restores the live NIC)
                if dom.isPersistent() and (
                    interface_element(dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE), vif.address) is None
                ):
                    flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
            else:
                flags = lv.VIR_DOMAIN_AFFECT_CONFIG
            try:
                dom.attachDeviceFlags(xml, flags)
            except lv.libvirtError:
                # A concurrent plug of the same NIC got there first (duplicate alias)?
                if interface_element(dom.XMLDesc(0), vif.address) is not None:
                    return
                raise

        await self._run(do, f"plug port {vif.id} into {instance_uuid}")

    async def unplug(self, instance_uuid: str, vif: VIF, *, within: float) -> None:
        """Detach the NIC and wait until libvirt says it is gone (or the live XML shows
        it gone), at most `within` seconds over `detach_attempts` backed-off attempts."""
        if within < 0:
            raise ValueError(f"within must be >= 0, got {within!r}")
        loop = self._bind_loop()
        deadline = loop.time() + within
        what = f"unplug port {vif.id} from {instance_uuid}"
        lv = self._lv
        state = await self._run(
            lambda conn: self._detach_target(conn, instance_uuid, vif.address), what
        )
        if state is None:
            return  # absent: success
        active, alias, live_el, in_config = state
        if not active:  # shut off: the persistent config is all there is
            await self._run(
                lambda conn: conn.lookupByUUIDString(instance_uuid).detachDeviceFlags(
                    live_el, lv.VIR_DOMAIN_AFFECT_CONFIG
                ),
                what,
            )
            return
        key = (instance_uuid, alias)
        waiter = _Removal(loop)
        self._removals[key].append(waiter)  # registered BEFORE the detach is sent
        try:
            gone = await self._detach_and_wait(key, waiter, live_el, deadline, what)
        finally:
            waiters = self._removals.get(key)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
                if not waiters:
                    del self._removals[key]
        if not gone:
            raise DeviceDetachTimeout(
                f"guest of {instance_uuid} did not release NIC {vif.address} (port {vif.id}) "
                f"within {within:g} s over {self.detach_attempts} attempts; the NIC is still "
                "attached and its persistent config unchanged"
            )
        if in_config:  # the guest let go: now drop it from the persistent config too

            def drop_config(conn: Any) -> None:
                dom = conn.lookupByUUIDString(instance_uuid)
                el = interface_element(dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE), vif.address)
                if el is not None:
                    dom.detachDeviceFlags(el, lv.VIR_DOMAIN_AFFECT_CONFIG)

            await self._run(drop_config, what)

    async def nics(self, instance_uuid: str) -> list[NIC]:
        xml = await self._run(
            lambda conn: conn.lookupByUUIDString(instance_uuid).XMLDesc(0),
            f"list the NICs of {instance_uuid}",
        )
        return parse_nics(xml)

    async def domains(self) -> list[Domain]:
        lv = self._lv
        states: dict[int, DomainState] = {
            lv.VIR_DOMAIN_RUNNING: "running",
            lv.VIR_DOMAIN_BLOCKED: "running",
            lv.VIR_DOMAIN_PAUSED: "paused",
            lv.VIR_DOMAIN_PMSUSPENDED: "paused",
            lv.VIR_DOMAIN_SHUTOFF: "shutoff",
            lv.VIR_DOMAIN_CRASHED: "crashed",
        }

        def do(conn: Any) -> list[Domain]:
            out: list[Domain] = []
            for dom in conn.listAllDomains(0):
                try:
                    code = dom.state()[0]
                    out.append(Domain(dom.UUIDString(), dom.name(), states.get(code, "other")))
                except lv.libvirtError as exc:
                    if exc.get_error_code() != lv.VIR_ERR_NO_DOMAIN:
                        raise  # a domain that vanished meanwhile is simply not listed
            return out

        return await self._run(do, "list domains")

    async def create_domain(self, instance_uuid: str, name: str) -> Domain:
        raise NotSupported(
            "the libvirt driver does not create domains (hotport does not own VMs); "
            "adopt an existing domain instead"
        )

    async def remove_domain(self, instance_uuid: str) -> None:
        raise NotSupported("the libvirt driver does not remove domains")

    async def close(self) -> None:
        """Idempotent: deregisters the events, closes the connection and the pool."""
        if self._closed:
            return
        self._closed = True
        for waiters in self._removals.values():
            for w in waiters:
                if not w.future.done():
                    w.future.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._pool, self._close_conn, conn)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- lifecycle events -----------------------------------------------------------------

    def add_lifecycle_listener(self, fn: LifecycleListener) -> None:
        """`fn(uuid, event)` is called on the loop for every domain lifecycle event
        (after the next connection is made, if none is open yet)."""
        self._listeners.append(fn)

    # -- the connection -----------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed():
            self._loop = loop
            self._connect_lock = asyncio.Lock()
        elif self._loop is not loop:
            raise VirtPermanent("a LibvirtDriver is used from one asyncio loop only")
        return loop

    async def _connection(self) -> Any:
        if self._closed:
            raise HypervisorUnavailable("libvirt driver is closed")
        loop = self._bind_loop()
        assert self._connect_lock is not None
        if self._conn is not None and not self._conn_dead.is_set():
            return self._conn
        async with self._connect_lock:
            if self._conn is not None and not self._conn_dead.is_set():
                return self._conn
            old, self._conn = self._conn, None
            if old is not None:
                self.reconnects += 1
                await loop.run_in_executor(self._pool, self._close_conn, old)
            delay = self.reconnect_backoff
            last: BaseException | None = None
            for attempt in range(self.reconnect_attempts):
                try:
                    self._conn_dead.clear()
                    self._conn = await loop.run_in_executor(self._pool, self._open, loop)
                    if attempt or old is not None:
                        log.info("libvirt: connected to %s (attempt %d)", self.uri, attempt + 1)
                    return self._conn
                except self._lv.libvirtError as exc:
                    last = exc
                    log.warning("libvirt: cannot connect to %s: %s", self.uri, exc)
                    if attempt + 1 < self.reconnect_attempts:
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.reconnect_backoff_max)
            raise HypervisorUnavailable(
                f"cannot connect to libvirt at {self.uri} after {self.reconnect_attempts} "
                f"attempts: {last}"
            ) from last

    def _open(self, loop: asyncio.AbstractEventLoop) -> Any:
        """In a pool thread: open the connection and register for its events."""
        lv = self._lv
        conn = lv.open(self.uri)
        dead = self._conn_dead

        def on_close(_conn: Any, reason: int, _opaque: Any) -> None:
            log.warning("libvirt: connection to %s closed (reason %d)", self.uri, reason)
            dead.set()

        try:
            conn.registerCloseCallback(on_close, None)
            with contextlib.suppress(lv.libvirtError):
                conn.setKeepAlive(*self.keepalive)
            post = self._poster(loop)
            ids = [
                conn.domainEventRegisterAny(
                    None,
                    lv.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                    lambda _c, dom, alias, _o: post(self._removed, dom.UUIDString(), alias, True),
                    None,
                ),
                conn.domainEventRegisterAny(
                    None,
                    lv.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED,
                    lambda _c, dom, alias, _o: post(self._removed, dom.UUIDString(), alias, False),
                    None,
                ),
                conn.domainEventRegisterAny(
                    None,
                    lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                    lambda _c, dom, event, detail, _o: post(
                        self._lifecycle, dom.UUIDString(), int(event), int(detail)
                    ),
                    None,
                ),
            ]
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        self._callback_ids = ids
        return conn

    @staticmethod
    def _poster(loop: asyncio.AbstractEventLoop) -> Callable[..., None]:
        def post(fn: Callable[..., None], *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(fn, *args)

        return post

    def _close_conn(self, conn: Any) -> None:
        ids, self._callback_ids = self._callback_ids, []
        for cid in ids:
            with contextlib.suppress(Exception):
                conn.domainEventDeregisterAny(cid)
        with contextlib.suppress(Exception):
            conn.unregisterCloseCallback()
        with contextlib.suppress(Exception):
            conn.close()

    def _is_connection_error(self, exc: Any, conn: Any) -> bool:
        lv = self._lv
        code = exc.get_error_code()
        if code in (lv.VIR_ERR_NO_CONNECT, lv.VIR_ERR_INVALID_CONN, lv.VIR_ERR_RPC):
            return True
        if code in (lv.VIR_ERR_SYSTEM_ERROR, lv.VIR_ERR_INTERNAL_ERROR):
            try:
                return not conn.isAlive()
            except Exception:
                return True
        return self._conn_dead.is_set()

    async def _run(self, fn: Callable[[Any], T], what: str) -> T:
        """Run `fn(conn)` in the pool; on a dead connection reconnect and run it once
        more (every `fn` here is idempotent); translate libvirt's errors."""
        loop = self._bind_loop()
        for attempt in (0, 1):
            conn = await self._connection()
            try:
                return await loop.run_in_executor(self._pool, fn, conn)
            except self._lv.libvirtError as exc:
                if self._is_connection_error(exc, conn):
                    self._conn_dead.set()
                    if attempt == 0:
                        log.warning("libvirt: %s: connection lost (%s); reconnecting", what, exc)
                        continue
                    raise HypervisorUnavailable(f"{what}: libvirt connection lost: {exc}") from exc
                raise self._translate(exc, what) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, exc: Any, what: str) -> VirtError:
        lv = self._lv
        code = exc.get_error_code()
        if code == lv.VIR_ERR_NO_DOMAIN:
            return DomainNotFound(f"{what}: no such domain ({exc})")
        if code in (lv.VIR_ERR_OPERATION_TIMEOUT, lv.VIR_ERR_OPERATION_IN_PROGRESS):
            return VirtTransient(f"{what}: {exc}")
        return VirtPermanent(f"{what}: libvirt error {code}: {exc}")

    # -- unplug mechanics ---------------------------------------------------------------

    def _detach_target(
        self, conn: Any, instance_uuid: str, mac: str
    ) -> tuple[bool, str, str, bool] | None:
        """In a pool thread: (active, alias, live <interface>, in persistent config) of the
        NIC with `mac`, or None if the domain has no such NIC."""
        lv = self._lv
        dom = conn.lookupByUUIDString(instance_uuid)
        active = bool(dom.isActive())
        el = interface_element(dom.XMLDesc(0), mac)
        if el is None:
            return None
        alias_el = ET.fromstring(el).find("alias")
        alias = (alias_el.get("name") if alias_el is not None else None) or ""
        in_config = active and bool(dom.isPersistent())
        if in_config:
            inactive = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
            in_config = interface_element(inactive, mac) is not None
        return active, alias, el, in_config

    def _send_detach(self, conn: Any, instance_uuid: str, element: str) -> str:
        """In a pool thread: one live detach. Returns "sent", "in-progress" or "missing".
        (libvirt itself waits up to 5 s for the guest here; success proves nothing.)"""
        lv = self._lv
        try:
            conn.lookupByUUIDString(instance_uuid).detachDeviceFlags(
                element, lv.VIR_DOMAIN_AFFECT_LIVE
            )
        except lv.libvirtError as exc:
            code = exc.get_error_code()
            log.debug("libvirt: detach of a NIC of %s: error %d: %s", instance_uuid, code, exc)
            if code == lv.VIR_ERR_OPERATION_IN_PROGRESS or _IN_PROGRESS_TEXT in str(exc):
                return "in-progress"
            if code == lv.VIR_ERR_DEVICE_MISSING:
                return "missing"
            raise
        return "sent"

    async def _detach_and_wait(
        self,
        key: tuple[str, str],
        waiter: _Removal,
        element: str,
        deadline: float,
        what: str,
    ) -> bool:
        """Send the detach and wait for the event; on each slice's timeout re-observe the
        live XML; re-send only when no earlier detach is still in flight. Slices grow
        geometrically (backoff) and together fill the deadline. True: gone."""
        loop = self._bind_loop()
        instance_uuid, _alias = key
        mac = ET.fromstring(element).find("mac")
        mac_addr = mac.get("address", "") if mac is not None else ""
        weights = [2**i for i in range(self.detach_attempts)]
        total = loop.time()
        span = max(deadline - total, 0.0)
        ends = []
        acc = 0.0
        for w in weights:
            acc += w
            ends.append(total + span * acc / sum(weights))
        for attempt in range(self.detach_attempts):
            sending = self._sending.get(key)
            if sending is None or sending.done():
                sending = asyncio.ensure_future(
                    self._run(lambda conn: self._send_detach(conn, instance_uuid, element), what)
                )
                sending.add_done_callback(_consume)
                sending.add_done_callback(functools.partial(self._sent, key))
                self._sending[key] = sending
                log.debug("libvirt: %s: detach sent (attempt %d)", what, attempt + 1)
            slice_end = ends[attempt]
            while not waiter.future.done():
                remaining = slice_end - loop.time()
                if remaining <= 0:
                    break
                pending: set[asyncio.Future[Any]] = {waiter.future}
                if not sending.done():
                    pending.add(sending)
                await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if sending.done() and not waiter.future.done():
                    exc = sending.exception()
                    if exc is not None:
                        if self._sending.get(key) is sending:
                            del self._sending[key]
                        raise exc
                    if sending.result() == "missing":
                        return True
                    # "sent" or "in-progress": the guest is working on it; wait for the
                    # event (never re-send while it processes).
            if waiter.future.done():
                return self._outcome(waiter, what, mac_addr)
            # No event in this slice: maybe it was missed (reconnect); look again. libvirt
            # may hold the read until its own detach wait ends: never past our deadline.
            look: asyncio.Future[str | None] = asyncio.ensure_future(
                self._run(
                    lambda conn: interface_element(
                        conn.lookupByUUIDString(instance_uuid).XMLDesc(0), mac_addr
                    ),
                    what,
                )
            )
            look.add_done_callback(_consume)
            watched: set[asyncio.Future[Any]] = {look, waiter.future}
            done, _ = await asyncio.wait(
                watched,
                timeout=max(deadline - loop.time(), 0.0) + self.observe_grace,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if waiter.future.done():
                return self._outcome(waiter, what, mac_addr)
            if look in done and look.result() is None:
                return True
        return False

    @staticmethod
    def _outcome(waiter: _Removal, what: str, mac: str) -> bool:
        """The event came: True (removed), or raise (removal failed, driver closed)."""
        if waiter.future.cancelled():
            raise HypervisorUnavailable(f"{what}: the driver was closed")
        if waiter.future.result():
            return True
        raise DeviceDetachFailed(
            f"{what}: the guest refused to release NIC {mac} (libvirt: device removal failed)"
        )

    def _sent(self, key: tuple[str, str], fut: asyncio.Future[Any]) -> None:
        if self._sending.get(key) is fut:
            del self._sending[key]

    # -- event handlers (on the loop) ---------------------------------------------------

    def _removed(self, uuid: str, alias: str, ok: bool) -> None:
        for w in self._removals.get((uuid, alias), ()):
            if not w.future.done():
                w.future.set_result(ok)

    def _lifecycle(self, uuid: str, event: int, detail: int) -> None:
        name = _LIFECYCLE[event] if 0 <= event < len(_LIFECYCLE) else f"event-{event}"
        if name == "stopped" and detail == self._lv.VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
            name = "destroyed"
        for fn in list(self._listeners):
            try:
                fn(uuid, name)
            except Exception:
                log.exception("libvirt: lifecycle listener failed on %s %s", uuid, name)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a background detach's outcome so asyncio never logs it as unhandled."""
    if not fut.cancelled():
        fut.exception()
