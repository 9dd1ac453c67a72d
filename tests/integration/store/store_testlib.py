"""Helpers shared by the SQL store tests (a module with a unique name, not a conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

INSTANCE_A = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
INSTANCE_B = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"


class FakeClock:
    """A clock the test moves by hand (tombstone purge needs no sleeping)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def vif_json(port_id: str, **extra: Any) -> dict[str, Any]:
    """A VIF in Nova's network_info layout, small but recognisable."""
    data: dict[str, Any] = {
        "id": port_id,
        "address": "fa:16:3e:00:00:01",
        "type": "ovs",
        "devname": f"tap{port_id[:11]}",
        "active": False,
        "network": {"id": "net-1", "label": "private", "subnets": []},
    }
    data.update(extra)
    return data


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
