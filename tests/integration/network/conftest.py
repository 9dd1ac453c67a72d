"""Fixtures: a real-HTTP fake Keystone (uvicorn thread) and an in-process Neutron app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from keystone_fake_server import KeystoneState, ServerThread, StateBox, keystone_app


@pytest.fixture(scope="module")
def keystone_server() -> Iterator[tuple[StateBox, str]]:
    box = StateBox()
    server = ServerThread(keystone_app(box))
    base_url = server.start()
    try:
        yield box, base_url
    finally:
        server.stop()


@pytest.fixture
def keystone(keystone_server: tuple[StateBox, str]) -> KeystoneState:
    """A fresh Keystone state (tokens, counters, knobs) behind the shared server."""
    box, base_url = keystone_server
    box.state = KeystoneState(base_url=base_url)
    return box.state
