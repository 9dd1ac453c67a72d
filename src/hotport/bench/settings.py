"""What a benchmark run does: `BenchSettings` (the full run's defaults, and `--quick`).

Owns: every size, count and scale of the scenarios, and the list of policies compared
(every reference policy this build has, in the order legacy, article, hotport).

Must never: run anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hotport.engine.policy import POLICIES
from hotport.sim.latency import PROFILES

#: the reference policies, oldest design first; those this build has are compared
REFERENCE_POLICIES = ("legacy", "article", "hotport")

SCENARIOS = (
    "latency",
    "blocking",
    "throughput",
    "heal",
    "consistency",
    "overhead",
    "libvirt",
)


def available_policies() -> tuple[str, ...]:
    return tuple(p for p in REFERENCE_POLICIES if p in POLICIES)


@dataclass(frozen=True)
class BenchSettings:
    quick: bool = False
    time_scale: float = 0.01
    profile: str = "article"
    seed: int = 7
    policies: tuple[str, ...] = field(default_factory=available_policies)
    scenarios: tuple[str, ...] = SCENARIOS
    # 1. latency vs ports
    ports: tuple[int, ...] = (1, 5, 10, 20, 50)
    #: 20: a single write's +-20 % jitter moves a median of 10 by several per cent (the
    #: flatness and detach ratios); of 20, by about 3 %
    reps: int = 20
    # 2. blocking behind a heal / an untagged network-changed
    blocking_ports: int = 10
    blocking_reps: int = 8
    # 3. throughput
    tp_vms: int = 20
    tp_ports: int = 10
    tp_ops: int = 200
    tp_workers: int = 4
    tp_reps: int = 1
    #: the throughput run's time scale is this many times `time_scale` (capped at 1), so
    #: that hotport's local CPU stays small against the simulated time it overlaps with
    tp_slowdown: float = 4.0
    # 4. heal cost
    heal_hosts: tuple[int, ...] = (10, 100, 1000, 10_000)
    heal_ports: int = 10
    heal_legacy_ticks: int = 3  # per-instance heals measured, then extrapolated
    # 5. consistency storm
    storm_instances: int = 50  # the engine issue's storm: 50 x 10, 3,000 operations
    storm_ports: int = 10
    storm_seeds: tuple[int, ...] = (11,)
    #: the storm's simulator time scale (instant profile: it scales the events' batching
    #: interval and the agent; 1.0 is the engine test's)
    storm_time_scale: float = 1.0
    # 6. engine overhead
    overhead_cycles: int = 300
    overhead_ports: int = 10
    overhead_hosts: int = 10_000
    # 7. real hypervisor
    libvirt_uri: str = "qemu:///system"
    libvirt_ports: tuple[int, ...] = (1, 10)
    libvirt_cycles: int = 20

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be above 0")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown latency profile {self.profile!r}")
        if not self.policies:
            raise ValueError("no policy to compare")
        for p in self.policies:
            if p not in POLICIES:
                raise ValueError(f"policy {p!r} is not in this build ({', '.join(POLICIES)})")
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise ValueError(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
        if min(self.ports) < 1 or self.reps < 1:
            raise ValueError("ports and reps must be at least 1")

    @classmethod
    def quick_run(cls, **changes: Any) -> BenchSettings:
        """A small run that exercises every scenario (CI): small N, few repetitions."""
        base = cls(
            quick=True,
            time_scale=0.002,
            ports=(1, 10),
            reps=2,
            blocking_ports=3,
            blocking_reps=2,
            tp_vms=4,
            tp_ports=3,
            tp_ops=24,
            tp_workers=4,
            heal_hosts=(5, 20),
            heal_legacy_ticks=2,
            storm_instances=5,
            storm_ports=4,
            storm_time_scale=0.1,
            overhead_cycles=30,
            overhead_hosts=20,
            libvirt_cycles=3,
        )
        return replace(base, **changes)

    @property
    def tp_time_scale(self) -> float:
        return min(1.0, self.time_scale * self.tp_slowdown)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tp_time_scale": self.tp_time_scale}
