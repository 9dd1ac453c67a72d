"""Building a `NeutronClient` from configuration (the service's composition root calls this).

Owns: `make_auth` (auth mode `none` -> `NoAuth`, `keystone` -> `KeystoneAuth`) and
`from_config`.

Must never: read files or the environment (the caller hands over a parsed config), log
the config with its secrets unmasked (it holds `SecretStr`s).

Concurrency: builds objects only; the client it returns belongs to the loop that uses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx

from hotport.network.auth import AuthProvider, KeystoneAuth, NoAuth
from hotport.network.client import Clock, NeutronClient, Sleep
from hotport.network.config import NetworkConfig
from hotport.network.retry import Backoff

__all__ = ["from_config", "make_auth"]


def make_auth(config: NetworkConfig) -> AuthProvider:
    if config.auth == "none":
        return NoAuth(config.endpoint)
    assert config.keystone is not None  # checked by NetworkConfig
    return KeystoneAuth(config.keystone)


def from_config(
    config: NetworkConfig | Mapping[str, Any],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> NeutronClient:
    """A client for `config` (a `NetworkConfig` or a mapping validated into one).

    The client owns the auth provider it builds: `aclose()` closes both.
    """
    if not isinstance(config, NetworkConfig):
        config = NetworkConfig.model_validate(config)
    c = config.client
    return NeutronClient(
        make_auth(config),
        transport=transport,
        read_timeout=c.read_timeout,
        write_timeout=c.write_timeout,
        read_deadline=c.read_deadline,
        write_deadline=c.write_deadline,
        retries=c.retries,
        backoff=Backoff(
            initial=c.backoff_initial,
            multiplier=c.backoff_multiplier,
            maximum=c.backoff_max,
            jitter=c.backoff_jitter,
        ),
        sleep=sleep,
        clock=clock,
        id_chunk=c.id_chunk,
        max_connections=c.max_connections,
        own_auth=True,
    )
