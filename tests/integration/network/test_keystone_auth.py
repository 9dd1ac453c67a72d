"""Keystone auth through the real keystoneauth1 code path, against a local Keystone-shaped server.

The identity server is served over real HTTP (uvicorn, 127.0.0.1, ephemeral port); the
network endpoint from its catalog is an in-process Neutron app (`httpx.ASGITransport`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from keystone_fake_server import (
    APP_CRED_ID,
    APP_CRED_SECRET,
    INTERNAL,
    PASSWORD,
    PROJECT,
    PUBLIC,
    REGION_TWO,
    USERNAME,
    KeystoneState,
    neutron_app,
)

from hotport.network import (
    KeystoneAuth,
    KeystoneConfig,
    NeutronClient,
    PermanentError,
    Unauthorized,
    Unavailable,
    from_config,
)

SAMPLES = Path(__file__).parents[2] / "conformance" / "samples" / "neutron-29.json"
PORT_BODY: dict[str, Any] = next(
    s["body"]["port"]
    for s in json.loads(SAMPLES.read_text())["samples"]
    if s["label"] == "show port"
)
SECRETS = (PASSWORD, APP_CRED_SECRET)


def password_config(state: KeystoneState, **over: Any) -> dict[str, Any]:
    return {
        "auth_url": f"{state.base_url}/v3",
        "username": USERNAME,
        "password": PASSWORD,
        "project_name": PROJECT,
        **over,
    }


def appcred_config(state: KeystoneState, **over: Any) -> dict[str, Any]:
    return {
        "auth_url": state.base_url,  # no /v3: the client appends it for this plugin
        "auth_type": "application_credential",
        "application_credential_id": APP_CRED_ID,
        "application_credential_secret": APP_CRED_SECRET,
        **over,
    }


def client_for(state: KeystoneState, keystone_cfg: dict[str, Any], **client: Any) -> NeutronClient:
    return from_config(
        {"auth": "keystone", "keystone": keystone_cfg, "client": client},
        transport=httpx.ASGITransport(app=neutron_app(state, PORT_BODY)),
    )


def client_with_auth(state: KeystoneState, auth: KeystoneAuth) -> NeutronClient:
    return NeutronClient(
        auth,
        transport=httpx.ASGITransport(app=neutron_app(state, PORT_BODY)),
        own_auth=True,
    )


async def test_password_token_is_sent_to_the_catalog_endpoint(keystone: KeystoneState) -> None:
    async with client_for(keystone, password_config(keystone)) as client:
        port = await client.show_port("p1")
        await client.show_port("p2")
        await client.show_port("p3")

    assert port.id == "p1"
    assert len(keystone.issued) == 1  # cached: one token for three requests
    token = keystone.issued[0]
    assert keystone.neutron_seen == [(token, "neutron.test:9696", 200)] * 3
    assert keystone.discovery_requests >= 1  # the generic plugin discovered /v3
    [request] = keystone.token_requests
    identity = request["auth"]["identity"]
    assert identity["methods"] == ["password"]
    assert identity["password"]["user"]["name"] == USERNAME
    assert identity["password"]["user"]["domain"] == {"name": "Default"}
    assert request["auth"]["scope"]["project"] == {"name": PROJECT, "domain": {"name": "Default"}}
    assert client.counters == {"show_port": 3}


async def test_application_credential(keystone: KeystoneState) -> None:
    async with client_for(keystone, appcred_config(keystone)) as client:
        await client.show_port("p1")

    [request] = keystone.token_requests
    identity = request["auth"]["identity"]
    assert identity["methods"] == ["application_credential"]
    assert identity["application_credential"] == {"id": APP_CRED_ID, "secret": APP_CRED_SECRET}
    assert keystone.neutron_seen == [(keystone.issued[0], "neutron.test:9696", 200)]


@pytest.mark.parametrize(
    ("over", "netloc"),
    [
        ({}, PUBLIC),
        ({"interface": "internal"}, INTERNAL),
        ({"region_name": "RegionOne"}, PUBLIC),
        ({"region_name": "RegionTwo"}, REGION_TWO),
        ({"endpoint_override": "http://override.test:1234"}, "http://override.test:1234"),
    ],
)
async def test_interface_and_region_choose_the_endpoint(
    keystone: KeystoneState, over: dict[str, Any], netloc: str
) -> None:
    async with client_for(keystone, password_config(keystone, **over)) as client:
        await client.show_port("p1")
    assert keystone.neutron_seen[0][1] == netloc.removeprefix("http://")


async def test_a_token_near_expiry_is_replaced(keystone: KeystoneState) -> None:
    keystone.lifetimes = [30.0]  # the first token expires within min_token_life (120 s)
    async with client_for(keystone, password_config(keystone)) as client:
        for _ in range(3):
            await client.show_port("p1")

    first, second = keystone.issued
    assert [t for t, _, _ in keystone.neutron_seen] == [first, second, second]
    assert len(keystone.token_requests) == 2


async def test_the_token_is_refreshed_when_time_passes_its_expiry(keystone: KeystoneState) -> None:
    shift = dt.timedelta(0)

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + shift

    keystone.lifetimes = [3600.0]
    keystone.default_lifetime = 7200.0
    auth = KeystoneAuth(KeystoneConfig.model_validate(password_config(keystone)), now=now)
    async with client_with_auth(keystone, auth) as client:
        await client.show_port("p1")
        await client.show_port("p1")
        shift = dt.timedelta(seconds=3600 - 60)  # one minute before the hour-long token ends
        await client.show_port("p1")
        await client.show_port("p1")

    first, second = keystone.issued
    assert [t for t, _, _ in keystone.neutron_seen] == [first, first, second, second]
    assert auth.fetches == 2


async def test_a_401_from_neutron_invalidates_and_retries_once(keystone: KeystoneState) -> None:
    async with client_for(keystone, password_config(keystone)) as client:
        await client.show_port("p1")
        keystone.revoked.add(keystone.issued[0])  # e.g. revoked by an operator
        port = await client.show_port("p2")

    first, second = keystone.issued
    assert port.id == "p2"
    assert [(t, status) for t, _, status in keystone.neutron_seen] == [
        (first, 200),
        (first, 401),
        (second, 200),
    ]
    assert client.counters == {"show_port": 2}
    assert client.retry_counters == {"show_port": 1}


async def test_a_persistent_401_raises_unauthorized_after_one_retry(
    keystone: KeystoneState,
) -> None:
    keystone.reject_all_tokens = True
    async with client_for(keystone, password_config(keystone)) as client:
        with pytest.raises(Unauthorized) as info:
            await client.show_port("p1")

    assert info.value.status == 401
    assert len(keystone.neutron_seen) == 2
    assert len(keystone.issued) == 2  # re-authenticated once
    _assert_no_secret(info.value)


@pytest.mark.parametrize(
    "cfg",
    [
        lambda s: password_config(s, password="wrong-" + PASSWORD),
        lambda s: appcred_config(s, application_credential_secret="wrong-" + APP_CRED_SECRET),
    ],
)
async def test_bad_credentials_are_a_typed_unauthorized_without_secrets(
    keystone: KeystoneState, cfg: Any
) -> None:
    async with client_for(keystone, cfg(keystone)) as client:
        with pytest.raises(Unauthorized) as info:
            await client.show_port("p1")

    err = info.value
    assert err.status == 401
    assert err.call == "keystone"
    assert "refused" in err.message
    assert keystone.neutron_seen == []  # never reached the network service
    assert client.counters == {}
    _assert_no_secret(err)


async def test_keystone_calls_run_off_the_event_loop(
    keystone: KeystoneState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keystoneauth1 import session as ks_session

    request_threads: list[int] = []
    original = ks_session.Session.request

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        request_threads.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ks_session.Session, "request", recording)
    keystone.delay = 0.3  # a slow Keystone
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    loop_thread = threading.get_ident()
    tick_task = asyncio.create_task(ticker())
    async with client_for(keystone, password_config(keystone)) as client:
        await client.show_port("p1")
    stop.set()
    await tick_task

    assert request_threads, "keystoneauth1 made no request"
    assert loop_thread not in request_threads
    assert ticks >= 10  # the loop kept running while Keystone took 300 ms


async def test_concurrent_requests_share_one_authentication(keystone: KeystoneState) -> None:
    keystone.delay = 0.05
    async with client_for(keystone, password_config(keystone)) as client:
        await asyncio.gather(*(client.show_port(f"p{i}") for i in range(20)))
        assert len(keystone.token_requests) == 1

        keystone.lifetimes = []
        keystone.revoked.add(keystone.issued[0])
        keystone.reject_all_tokens = False
        # a burst at expiry also re-authenticates once
        auth = client._auth
        assert isinstance(auth, KeystoneAuth)
        await auth.invalidate()
        await asyncio.gather(*(client.show_port(f"q{i}") for i in range(20)))

    assert len(keystone.token_requests) == 2
    assert {t for t, _, _ in keystone.neutron_seen[20:]} == {keystone.issued[1]}


async def test_no_network_endpoint_in_the_catalog(keystone: KeystoneState) -> None:
    cfg = password_config(keystone, region_name="Nowhere")
    async with client_for(keystone, cfg) as client:
        with pytest.raises(PermanentError, match="no 'network' endpoint"):
            await client.show_port("p1")


async def test_keystone_unreachable_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = KeystoneState(base_url=f"http://127.0.0.1:{port}")
    async with client_for(state, password_config(state)) as client:
        with pytest.raises(Unavailable) as info:
            await client.show_port("p1")
    assert info.value.__cause__ is not None
    _assert_no_secret(info.value)


async def test_nothing_secret_is_logged(
    keystone: KeystoneState, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with client_for(keystone, password_config(keystone)) as client:
            await client.show_port("p1")
            keystone.revoked.add(keystone.issued[0])
            await client.show_port("p2")
        async with client_for(keystone, appcred_config(keystone)) as client:
            await client.show_port("p3")

    assert any(r.name == "hotport.network" for r in caplog.records)
    for secret in (*SECRETS, *keystone.issued):
        assert secret not in caplog.text


def _assert_no_secret(err: BaseException) -> None:
    seen: BaseException | None = err
    while seen is not None:
        for text in (str(seen), repr(seen)):
            for secret in SECRETS:
                assert secret not in text
        seen = seen.__cause__ or seen.__context__
