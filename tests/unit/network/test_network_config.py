"""Configuration, the factory, the retry policy values, and secrets never shown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pydantic
import pytest
from neutron_unit_fakes import Reply, Script

from hotport.network import (
    Backoff,
    ClientConfig,
    KeystoneAuth,
    KeystoneConfig,
    NetworkConfig,
    NeutronClient,
    NoAuth,
    from_config,
    make_auth,
)
from hotport.network.retry import Deadline, is_idempotent, retryable_status

PASSWORD = "correct-horse-battery-staple"
SECRET = "app-cred-secret-0xDEADBEEF"


def keystone_password(**over: Any) -> dict[str, Any]:
    return {
        "auth_url": "http://keystone.test:5000/v3",
        "username": "hotport",
        "password": PASSWORD,
        "project_name": "service",
        **over,
    }


def keystone_appcred(**over: Any) -> dict[str, Any]:
    return {
        "auth_url": "http://keystone.test:5000",
        "auth_type": "application_credential",
        "application_credential_id": "ac-1",
        "application_credential_secret": SECRET,
        **over,
    }


@pytest.mark.parametrize("cfg", [keystone_password(), keystone_appcred()])
def test_keystone_config_masks_secrets(cfg: dict[str, Any]) -> None:
    config = KeystoneConfig.model_validate(cfg)
    net = NetworkConfig(auth="keystone", keystone=config)
    for text in (
        repr(config),
        str(config),
        repr(net),
        str(net.model_dump()),
        net.model_dump_json(),
    ):
        assert PASSWORD not in text
        assert SECRET not in text
    auth = KeystoneAuth(config)
    assert PASSWORD not in repr(auth)
    assert SECRET not in repr(auth)
    client = NeutronClient(auth)
    assert PASSWORD not in repr(client)
    assert SECRET not in repr(client)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (keystone_password(password=None), "needs 'password'"),
        (keystone_password(username=None), "'username' or 'user_id'"),
        (keystone_appcred(application_credential_secret=None), "needs 'application_credential_"),
        (keystone_appcred(application_credential_id=None), "application_credential_name"),
        (keystone_appcred(application_credential_id=None, application_credential_name="n"),
         "application_credential_name"),
        ({**keystone_password(), "bogus": 1}, "bogus"),
    ],
)  # fmt: skip
def test_keystone_config_validation(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        KeystoneConfig.model_validate(cfg)


def test_keystone_config_accepts_app_cred_by_name() -> None:
    KeystoneConfig.model_validate(
        keystone_appcred(
            application_credential_id=None, application_credential_name="n", username="u"
        )
    )


def test_network_config_keystone_needs_its_section() -> None:
    with pytest.raises(pydantic.ValidationError, match="keystone"):
        NetworkConfig(auth="keystone")


def test_make_auth() -> None:
    assert isinstance(make_auth(NetworkConfig()), NoAuth)
    auth = make_auth(
        NetworkConfig(auth="keystone", keystone=KeystoneConfig.model_validate(keystone_appcred()))
    )
    assert isinstance(auth, KeystoneAuth)
    # the v3 application-credential plugin needs a versioned auth_url
    assert auth._plugin.auth_url == "http://keystone.test:5000/v3"


async def test_from_config_noauth_applies_client_settings() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    script = Script(Reply(503, content=b""), Reply(200, {"networks": []}))
    client = from_config(
        {
            "auth": "none",
            "endpoint": "http://n.test:9696",
            "client": {
                "retries": 1,
                "backoff_initial": 0.5,
                "backoff_jitter": 0,
                "id_chunk": 7,
                "read_timeout": 3,
            },
        },
        transport=httpx.MockTransport(script),
        sleep=sleep,
    )
    async with client:
        assert client.id_chunk == 7
        assert client.retries == 1
        assert client.read_timeout == 3
        assert await client.list_networks(["a"]) == []
    assert sleeps == [0.5]
    assert str(script.requests[0].url) == "http://n.test:9696/v2.0/networks?id=a"


async def test_from_config_client_closes_the_keystone_session() -> None:
    cfg = NetworkConfig(
        auth="keystone", keystone=KeystoneConfig.model_validate(keystone_password())
    )
    client = from_config(cfg)
    auth = client._auth
    assert isinstance(auth, KeystoneAuth)
    closed: list[bool] = []
    auth._session.session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    await client.aclose()
    assert closed == [True]


def test_client_config_defaults_are_documented_values() -> None:
    c = ClientConfig()
    assert (c.retries, c.id_chunk) == (3, 100)
    assert c.read_deadline >= c.read_timeout
    assert c.write_deadline >= c.write_timeout


def test_noauth_refuses_a_non_http_endpoint() -> None:
    with pytest.raises(ValueError, match="http"):
        NoAuth("neutron.test:9696")


async def test_noauth_provider() -> None:
    auth = NoAuth("http://n.test")
    assert await auth.headers() == {}
    assert await auth.endpoint() == "http://n.test"
    await auth.invalidate()
    assert repr(auth) == "NoAuth('http://n.test')"


@pytest.mark.parametrize(
    "kwargs",
    [{"read_timeout": 0}, {"write_deadline": -1}, {"retries": -1}, {"id_chunk": 0}],
)
def test_client_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        NeutronClient(NoAuth("http://n.test"), **kwargs)


# -- retry policy values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("GET", 502, True),
        ("GET", 503, True),
        ("GET", 504, True),
        ("PUT", 502, True),
        ("DELETE", 504, True),
        ("POST", 503, True),
        ("POST", 502, False),
        ("POST", 504, False),
        ("GET", 500, False),
        ("GET", 501, False),
        ("GET", 429, False),
        ("GET", 404, False),
        ("PUT", 409, False),
        ("PUT", 412, False),
    ],
)
def test_retryable_status(method: str, status: int, expected: bool) -> None:
    assert retryable_status(method, status) is expected


def test_idempotent_methods() -> None:
    assert all(is_idempotent(m) for m in ("GET", "put", "DELETE", "HEAD"))
    assert not is_idempotent("POST")


def test_backoff_values() -> None:
    b = Backoff(jitter=0)
    assert [b.delay(n) for n in range(1, 8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    half = Backoff(initial=1, jitter=0.5, rng=lambda: 1.0)
    assert half.delay(1) == 0.5
    with pytest.raises(ValueError, match="start at 1"):
        b.delay(0)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2)
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(multiplier=0.5)


def test_deadline_uses_the_injected_clock() -> None:
    now = [10.0]
    d = Deadline(2.0, lambda: now[0])
    assert d.remaining() == 2.0
    assert not d.expired()
    now[0] = 11.5
    assert d.remaining() == 0.5
    assert d.elapsed() == 1.5
    now[0] = 12.0
    assert d.expired()
    with pytest.raises(ValueError, match="positive"):
        Deadline(0, time.monotonic)


async def test_default_sleep_is_asyncio_sleep() -> None:
    client = NeutronClient(NoAuth("http://n.test"))
    assert client._sleep is asyncio.sleep
    await client.aclose()
