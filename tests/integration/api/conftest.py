"""Fixtures for the API tests: the whole service against the in-process simulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotport.compose import ServiceStack, service_stack
from hotport.sim.seed import Seeder


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[ServiceStack]:
    s = await service_stack(tmp_path / "hotport.db")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def neutron(stack: ServiceStack) -> Seeder:
    return Seeder(stack.admin)


async def new_instance(stack: ServiceStack, name: str = "vm") -> str:
    instance = str(uuid.uuid4())
    r = await stack.api.post("/v1/instances", json={"uuid": instance, "name": name})
    assert r.status_code == 201, r.text
    return instance
