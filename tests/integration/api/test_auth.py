"""API authentication end to end: the whole service (in-process simulator) behind each
mode. Static: 401/403/200 per route class (read, write, admin). Keystone: keystoneauth1
talking over loopback HTTP to a Keystone-shaped server (the one of
tests/integration/network, with token validation added): roles, caching, expiry, a
Keystone that is down or refuses hotport, one validation for concurrent requests.
Secrets never appear in logs or answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hotport.api.auth import TOKEN_HEADER, Caller, KeystoneTokens, StaticTokens, token_digest
from hotport.compose import ServiceStack, service_stack
from hotport.service.config import KeystoneTokenConfig
from hotport.sim.seed import Seeder


def _fake_keystone_module() -> ModuleType:
    """tests/integration/network/keystone_fake_server.py (not a package: load by path)."""
    name = "keystone_fake_server"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "network" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ks = _fake_keystone_module()

ADMIN = "admin-token-0123456789-SECRET"
MEMBER = "member-token-0123456789-SECRET"
SERVICE = "service-token-0123456789-SECRET"
WRONG = "wrong-token-0123456789-SECRET"
SECRETS = ("SECRET", ks.PASSWORD)
EVENTS = "/v2.1/os-server-external-events"


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked: {text[:300]}"


def h(token: str | None) -> dict[str, str]:
    return {} if token is None else {TOKEN_HEADER: token}


async def instance_with_port(stack: ServiceStack, token: str) -> tuple[str, str]:
    instance = str(uuid.uuid4())
    r = await stack.api.post(
        "/v1/instances", json={"uuid": instance, "name": "vm"}, headers=h(token)
    )
    assert r.status_code == 201, r.text
    seed = Seeder(stack.admin)
    port = await seed.port(await seed.network("10.0.0.0/24"))
    return instance, port


def has_route(stack: ServiceStack, path: str) -> bool:
    return path in stack.api_app.openapi()["paths"]


# == static ===============================================================================
@pytest.fixture
async def static(tmp_path: Path) -> AsyncIterator[ServiceStack]:
    tokens = StaticTokens(
        {
            token_digest(ADMIN): Caller("ops", "p-1", frozenset({"admin"})),
            token_digest(MEMBER): Caller("alice", "p-1", frozenset({"member"})),
            token_digest(SERVICE): Caller("neutron", "p-svc", frozenset({"service"})),
        }
    )
    # the simulator's notifier sends no token; its events are not what is tested here
    s = await service_stack(tmp_path / "hotport.db", authenticator=tokens, deliver_events=False)
    try:
        yield s
    finally:
        await s.close()


async def test_every_route_class_needs_a_token(
    static: ServiceStack, caplog: pytest.LogCaptureFixture
) -> None:
    api = static.api
    instance, port = await instance_with_port(static, MEMBER)
    routes = [
        ("GET", "/v1/instances", None),
        ("GET", f"/v1/instances/{instance}", None),
        ("GET", f"/v1/instances/{instance}/interfaces", None),
        ("GET", "/v1/operations", None),
        ("GET", "/metrics", None),
        ("POST", "/v1/instances", {"uuid": str(uuid.uuid4()), "name": "x"}),
        ("POST", f"/v1/instances/{instance}/interfaces", {"port_id": port}),
        ("DELETE", f"/v1/instances/{instance}/interfaces/{port}", None),
        ("DELETE", f"/v1/instances/{instance}", None),
        ("POST", "/v1/heal", None),
    ]
    with caplog.at_level(logging.DEBUG):
        for method, url, body in routes:
            for token in (None, "", WRONG):
                r = await api.request(method, url, json=body, headers=h(token))
                assert r.status_code == 401, (method, url, token, r.text)
                error = r.json()["error"]
                assert error["type"] == "Unauthorized"
                assert error["request_id"] == r.headers["x-openstack-request-id"]
                assert TOKEN_HEADER in error["message"]
                assert r.headers["www-authenticate"] == 'Keystone uri="hotport"'
                no_secret(r.text)
    no_secret(caplog.text)
    # nothing was done by the refused requests
    r = await api.get(f"/v1/instances/{instance}", headers=h(MEMBER))
    assert r.status_code == 200
    assert r.json()["interfaces"] == []
    assert (await Seeder(static.admin).show(port))["device_id"] == ""
    r = await api.get("/v1/instances", headers=h(ADMIN))
    assert [i["uuid"] for i in r.json()["instances"]] == [instance]


async def test_a_member_reads_and_writes_but_cannot_heal(static: ServiceStack) -> None:
    api = static.api
    instance, port = await instance_with_port(static, MEMBER)
    r = await api.post(
        f"/v1/instances/{instance}/interfaces", json={"port_id": port}, headers=h(MEMBER)
    )
    assert r.status_code == 201, r.text
    for url in (f"/v1/instances/{instance}", "/v1/operations", "/metrics"):
        r = await api.get(url, headers=h(MEMBER))
        assert r.status_code == 200, (url, r.text)
    r = await api.post("/v1/heal", headers=h(MEMBER))
    assert r.status_code == 403
    assert r.json()["error"] == {
        "type": "Forbidden",
        "message": "this needs one of the roles admin, service; the token has member",
        "category": "permanent",
        "request_id": r.headers["x-openstack-request-id"],
    }
    assert "www-authenticate" not in r.headers
    for token in (ADMIN, SERVICE):
        r = await api.post("/v1/heal", headers=h(token))
        assert r.status_code == 200, r.text
        assert r.json()["instances"] == 1
    r = await api.delete(f"/v1/instances/{instance}/interfaces/{port}", headers=h(MEMBER))
    assert r.status_code == 200, r.text


async def test_external_events_need_admin_or_service(static: ServiceStack) -> None:
    if not has_route(static, EVENTS):
        pytest.skip(f"{EVENTS} is not in this build of the API yet")
    api = static.api
    instance, port = await instance_with_port(static, MEMBER)
    body = {"events": [{"name": "network-changed", "server_uuid": instance, "tag": port}]}
    r = await api.post(EVENTS, json=body)
    assert r.status_code == 401
    assert set(r.json()) == {"unauthorized"}  # Nova's fault shape under /v2.1
    assert r.json()["unauthorized"]["code"] == 401
    r = await api.post(EVENTS, json=body, headers=h(WRONG))
    assert r.status_code == 401
    r = await api.post(EVENTS, json=body, headers=h(MEMBER))
    assert r.status_code == 403
    assert r.json() == {
        "forbidden": {
            "code": 403,
            "message": "this needs one of the roles admin, service; the token has member",
        }
    }
    for token in (SERVICE, ADMIN):
        r = await api.post(EVENTS, json=body, headers=h(token))
        assert r.status_code == 200, r.text
        assert [e["code"] for e in r.json()["events"]] == [200]


async def test_health_checks_are_open(static: ServiceStack) -> None:
    assert (await static.api.get("/healthz")).status_code == 200
    r = await static.api.get("/readyz")
    assert (r.status_code, r.json()["status"]) == (200, "ready")


# == keystone ============================================================================
@dataclass
class UserTokens:
    """The user tokens the fake Keystone validates (GET /v3/auth/tokens)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, tuple[list[str], dt.datetime]] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)  # subject tokens asked about
    service_tokens_seen: list[str | None] = field(default_factory=list)
    delay: float = 0.0
    status: int | None = None  # force an answer (e.g. 500)

    def add(self, token: str, roles: list[str], lifetime: float = 3600.0) -> None:
        with self.lock:
            self.tokens[token] = (roles, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime))

    def revoke(self, token: str) -> None:
        with self.lock:
            del self.tokens[token]


class Box:
    def __init__(self) -> None:
        self.users = UserTokens()


def validate_route(ks_box: Any, box: Box) -> Route:
    async def validate(request: Request) -> Response:
        users = box.users
        state = ks_box.state
        service_token = request.headers.get("x-auth-token")
        subject = request.headers.get("x-subject-token", "")
        with users.lock:
            users.service_tokens_seen.append(service_token)
            users.validations.append(subject)
        if users.delay:
            await asyncio.sleep(users.delay)
        if users.status is not None:
            return JSONResponse({"error": {"code": users.status}}, status_code=users.status)
        if not state.token_valid(service_token):
            return JSONResponse({"error": {"code": 401}}, status_code=401)
        with users.lock:
            found = users.tokens.get(subject)
        if found is None or found[1] <= dt.datetime.now(dt.UTC):
            return JSONResponse(
                {"error": {"code": 404, "message": "Could not find token", "title": "Not Found"}},
                status_code=404,
            )
        roles, expires = found
        return JSONResponse(
            {
                "token": {
                    "methods": ["password"],
                    "user": {"id": "u-" + subject[:5], "name": subject[:5], "domain": {}},
                    "project": {"id": "p-1", "name": "demo", "domain": {}},
                    "roles": [{"id": f"r-{r}", "name": r} for r in roles],
                    "issued_at": "2026-01-01T00:00:00.000000Z",
                    "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                }
            }
        )

    return Route("/v3/auth/tokens", validate, methods=["GET"])


@pytest.fixture(scope="module")
def keystone_server() -> Iterator[tuple[Any, Box, str]]:
    ks_box = ks.StateBox()
    box = Box()
    app = ks.keystone_app(ks_box)
    app.router.routes.append(validate_route(ks_box, box))
    server = ks.ServerThread(app)
    base_url = server.start()
    try:
        yield ks_box, box, base_url
    finally:
        server.stop()


@dataclass
class Keystone:
    state: Any  # keystone_fake_server.KeystoneState: hotport's own token requests
    users: UserTokens
    url: str


@pytest.fixture
def keystone(keystone_server: tuple[Any, Box, str]) -> Keystone:
    ks_box, box, base_url = keystone_server
    ks_box.state = ks.KeystoneState(base_url=base_url)
    box.users = UserTokens()
    return Keystone(ks_box.state, box.users, base_url)


class Clock:
    """Wall-clock time plus a test-controlled offset (to pass cache ends at once)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def ks_config(url: str, **over: Any) -> KeystoneTokenConfig:
    return KeystoneTokenConfig(
        **{
            "auth_url": f"{url}/v3",
            "username": ks.USERNAME,
            "password": ks.PASSWORD,
            "project_name": ks.PROJECT,
            "timeout": 5.0,
            **over,
        }
    )


@pytest.fixture
async def keystone_stack(
    tmp_path: Path, keystone: Keystone
) -> AsyncIterator[tuple[ServiceStack, KeystoneTokens, Clock]]:
    clock = Clock()
    tokens = KeystoneTokens(ks_config(keystone.url, cache_seconds=300), clock=clock)
    s = await service_stack(tmp_path / "hotport.db", authenticator=tokens, deliver_events=False)
    try:
        yield s, tokens, clock
    finally:
        await s.close()
        await tokens.aclose()


async def test_keystone_roles_decide_and_valid_tokens_are_cached(
    keystone: Keystone,
    keystone_stack: tuple[ServiceStack, KeystoneTokens, Clock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack, tokens, _ = keystone_stack
    keystone.users.add(MEMBER, ["member"])
    keystone.users.add(ADMIN, ["Admin"])
    keystone.users.add(SERVICE, ["service"])
    with caplog.at_level(logging.DEBUG):
        r = await stack.api.get("/v1/instances", headers=h(MEMBER))
        assert r.status_code == 200, r.text
        assert keystone.users.validations == [MEMBER]
        # hotport authenticated itself once, and sent its own token with the validation
        assert len(keystone.state.token_requests) == 1
        assert keystone.users.service_tokens_seen == keystone.state.issued[:1]
        r = await stack.api.get("/v1/instances", headers=h(MEMBER))
        assert r.status_code == 200
        assert keystone.users.validations == [MEMBER]  # cached: Keystone not asked again
        r = await stack.api.post("/v1/heal", headers=h(MEMBER))
        assert r.status_code == 403
        assert "the token has member" in r.json()["error"]["message"]
        assert keystone.users.validations == [MEMBER]
        for token in (ADMIN, SERVICE):
            r = await stack.api.post("/v1/heal", headers=h(token))
            assert r.status_code == 200, r.text
        for token in (None, WRONG):
            r = await stack.api.get("/v1/instances", headers=h(token))
            assert r.status_code == 401
            assert "auth mode keystone" in r.json()["error"]["message"]
            no_secret(r.text)
        r = await stack.api.get("/v1/instances", headers=h(WRONG))
        assert r.status_code == 401
    assert keystone.users.validations == [MEMBER, ADMIN, SERVICE, WRONG]  # 404 remembered
    assert tokens.validations == 4
    assert len(keystone.state.token_requests) == 1
    no_secret(caplog.text)
    for token in (ADMIN, MEMBER, SERVICE, WRONG):
        assert token not in caplog.text


async def test_keystone_cache_ends_at_expiry(
    keystone: Keystone, keystone_stack: tuple[ServiceStack, KeystoneTokens, Clock]
) -> None:
    stack, tokens, clock = keystone_stack
    keystone.users.add(MEMBER, ["member"], lifetime=60)  # expires before cache_seconds
    assert (await stack.api.get("/v1/instances", headers=h(MEMBER))).status_code == 200
    clock.offset = 59
    assert (await stack.api.get("/v1/instances", headers=h(MEMBER))).status_code == 200
    assert keystone.users.validations == [MEMBER]
    keystone.users.revoke(MEMBER)  # Keystone forgets it: expired
    clock.offset = 61  # past expires_at: hotport asks again
    r = await stack.api.get("/v1/instances", headers=h(MEMBER))
    assert r.status_code == 401
    assert keystone.users.validations == [MEMBER, MEMBER]
    # and a token living longer than cache_seconds is asked about again after 300 s
    keystone.users.add(ADMIN, ["admin"], lifetime=3600)
    assert (await stack.api.get("/v1/instances", headers=h(ADMIN))).status_code == 200
    clock.offset += 299
    assert (await stack.api.get("/v1/instances", headers=h(ADMIN))).status_code == 200
    assert keystone.users.validations.count(ADMIN) == 1
    clock.offset += 2
    assert (await stack.api.get("/v1/instances", headers=h(ADMIN))).status_code == 200
    assert keystone.users.validations.count(ADMIN) == 2
    assert tokens.validations == 4


async def test_concurrent_requests_share_one_validation(
    keystone: Keystone, keystone_stack: tuple[ServiceStack, KeystoneTokens, Clock]
) -> None:
    stack, tokens, _ = keystone_stack
    keystone.users.add(MEMBER, ["member"])
    keystone.users.delay = 0.2
    answers = await asyncio.gather(
        *(stack.api.get("/v1/instances", headers=h(MEMBER)) for _ in range(10))
    )
    assert [r.status_code for r in answers] == [200] * 10
    assert keystone.users.validations == [MEMBER]
    assert tokens.validations == 1


async def test_keystone_failing_is_503_transient(
    keystone: Keystone,
    keystone_stack: tuple[ServiceStack, KeystoneTokens, Clock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack, _, _ = keystone_stack
    keystone.users.add(MEMBER, ["member"])
    keystone.users.status = 500
    with caplog.at_level(logging.DEBUG):
        r = await stack.api.get("/v1/instances", headers=h(MEMBER))
    assert r.status_code == 503
    error = r.json()["error"]
    assert (error["type"], error["category"]) == ("IdentityUnavailable", "transient")
    assert "answered HTTP 500" in error["message"]
    keystone.users.status = None  # back: a failure was not cached
    assert (await stack.api.get("/v1/instances", headers=h(MEMBER))).status_code == 200
    no_secret(caplog.text, r.text)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_keystone_unreachable_or_refusing_hotport_is_503(
    tmp_path: Path, keystone: Keystone, caplog: pytest.LogCaptureFixture
) -> None:
    down = KeystoneTokens(ks_config(closed_port_url(), timeout=2.0))
    refused = KeystoneTokens(ks_config(keystone.url, password="not-the-password-SECRET"))
    keystone.users.add(MEMBER, ["member"])
    for tokens, words in (
        (down, "the identity service is unavailable (ConnectFailure)"),
        (refused, "refused hotport's own credentials"),
    ):
        s = await service_stack(
            tmp_path / f"{uuid.uuid4()}.db", authenticator=tokens, deliver_events=False
        )
        try:
            with caplog.at_level(logging.DEBUG):
                r = await s.api.post("/v1/heal", headers=h(MEMBER))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["type"] == "IdentityUnavailable"
            assert words in r.json()["error"]["message"]
        finally:
            await s.close()
            await tokens.aclose()
    assert "refused hotport's own credentials (user 'hotport')" in caplog.text
    assert keystone.users.validations == []
    no_secret(caplog.text)
    assert "not-the-password" not in caplog.text
