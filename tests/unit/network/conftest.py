"""Fixtures of the network client's unit tests (helpers live in neutron_unit_fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from neutron_unit_fakes import ENDPOINT, FakeTime, MakeClient, Script

from hotport.network import Backoff, NeutronClient, NoAuth


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_client(fake_time: FakeTime) -> AsyncIterator[MakeClient]:
    """Build a client on a `Script` with the fake clock and a jitter-free backoff."""
    made: list[NeutronClient] = []

    def make(script: Script, **kwargs: Any) -> NeutronClient:
        kwargs.setdefault("backoff", Backoff(jitter=0))
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("clock", fake_time.clock)
        auth = kwargs.pop("auth", None) or NoAuth(ENDPOINT)
        client = NeutronClient(auth, transport=httpx.MockTransport(script), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
