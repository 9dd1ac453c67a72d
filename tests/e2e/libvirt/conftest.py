"""End-to-end fixtures for the libvirt driver: a real libvirtd, real QEMU guests.

Set the host up with `bash scripts/libvirt/libvirt-host.sh start` (apt packages, the tiny
guest, virtlogd + libvirtd) and install libvirt-python into the venv
(`make sync EXTRAS="--extra libvirt"`). Without that every test here
SKIPS with a reason saying so; with HOTPORT_E2E=required they FAIL instead.

Each test gets guests with fresh names and UUIDs, started through the script, and removes
them (destroy + undefine) afterwards. The network side is the simulator (instant profile,
vif_type "tap": libvirt creates the tap; no bridge needed).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotport.compose import InProcessStack, in_process_stack
from hotport.engine.context import EngineConfig
from hotport.sim.config import SimConfig
from hotport.sim.seed import Seeder

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "libvirt" / "libvirt-host.sh"
URI = "qemu:///system"
HOST = "compute-1"
SETUP = (
    "set it up with: bash scripts/libvirt/libvirt-host.sh start && "
    'make sync EXTRAS="--extra libvirt"'
)

pytestmark = pytest.mark.e2e


def _host_problem() -> str | None:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed"
    if shutil.which("virsh") is None:
        return "virsh is not installed (no libvirt on this host)"
    r = subprocess.run(
        ["virsh", "-c", URI, "version"], capture_output=True, text=True, timeout=20, check=False
    )
    if r.returncode != 0:
        return f"libvirtd does not answer at {URI}: {r.stderr.strip()[:200]}"
    env = script("env").stdout
    state = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    guest = Path(state.get("HOTPORT_LIBVIRT_STATE", "/nonexistent")) / "guest"
    if not (guest / "vmlinuz").exists() or not (guest / "initrd.gz").exists():
        return f"the tiny guest is not built in {guest}"
    return None


def script(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=180, check=check
    )


def virsh(*args: str, check: bool = True) -> str:
    r = subprocess.run(
        ["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and r.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


@pytest.fixture(scope="session")
def libvirt_host() -> None:
    problem = _host_problem()
    if problem is None:
        return
    message = f"LIBVIRT E2E NOT RUN: {problem}; {SETUP}"
    if os.environ.get("HOTPORT_E2E") == "required":
        pytest.fail(message + " (HOTPORT_E2E=required)", pytrace=False)
    pytest.skip(message)


class Guests:
    """The host for one test: domains started through the script (all removed at the end),
    virsh, the host's taps, and restarting libvirtd."""

    @staticmethod
    def virsh(*args: str, check: bool = True) -> str:
        return virsh(*args, check=check)

    def __init__(self) -> None:
        self.names: list[str] = []

    async def start(self, kind: str = "guest") -> tuple[str, str]:
        """kind "guest" (boots, acks unplugs) or "noguest" (never acks). (uuid, name)."""
        name = f"hp-e2e-{uuid.uuid4().hex[:10]}"
        dom_uuid = str(uuid.uuid4())
        self.names.append(name)
        r = await asyncio.to_thread(script, kind, name, dom_uuid, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"libvirt-host.sh {kind} {name}: {r.stderr.strip()}")
        return dom_uuid, name

    @staticmethod
    def taps() -> set[str]:
        return {n for n in os.listdir("/sys/class/net") if n.startswith("tap")}

    @staticmethod
    async def restart_libvirtd() -> None:
        """Kill libvirtd (QEMU keeps running) and start it again through the script."""
        await asyncio.to_thread(_restart_libvirtd)

    def remove(self, name: str) -> None:
        script("rm", name, check=False)
        if name in self.names:
            self.names.remove(name)


def _restart_libvirtd() -> None:
    pid = int(Path("/var/run/libvirtd.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"libvirtd {pid} did not exit")
    r = script("start", check=False)
    if r.returncode != 0:
        raise RuntimeError(f"libvirt-host.sh start: {r.stderr.strip()}")


@pytest.fixture
def guests(libvirt_host: None) -> Iterator[Guests]:
    g = Guests()
    try:
        yield g
    finally:
        for name in list(g.names):
            g.remove(name)


class Neutron(Seeder):
    """Set-up helpers that talk to the simulator directly (not counted as hotport's)."""

    def __init__(self, stack: InProcessStack) -> None:
        super().__init__(stack.admin)


StackFactory = Callable[..., Awaitable[InProcessStack]]


@pytest.fixture
def neutron() -> type[Neutron]:
    """`neutron(stack)`: the simulator set-up helpers of one stack."""
    return Neutron


@pytest.fixture
async def make_stack(libvirt_host: None, tmp_path: Path) -> AsyncIterator[StackFactory]:
    """`await make_stack(detach_timeout=..., repair=..., **driver_kwargs)`: the in-process
    stack with the simulator serving tap VIFs and a real LibvirtDriver."""
    from hotport.virt.libvirt import LibvirtDriver

    stacks: list[InProcessStack] = []

    async def make(
        *, detach_timeout: float = 20.0, repair: bool = False, **driver: Any
    ) -> InProcessStack:
        stack = await in_process_stack(
            tmp_path / f"hotport-{len(stacks)}.db",
            host=HOST,
            sim=SimConfig(profile="instant", vif_type="tap", active_delay=None, seed=7),
            engine=EngineConfig(host=HOST, detach_timeout=detach_timeout, repair=repair),
            virt=LibvirtDriver(URI, **driver),
        )
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        for s in stacks:
            await s.close()
