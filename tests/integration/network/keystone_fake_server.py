"""A small Keystone-shaped identity server and a token-checking Neutron app, for tests.

`KeystoneState` is shared (under a lock) between:
- the Keystone app, served for real by uvicorn on 127.0.0.1 (an ephemeral port) in a
  background thread, so keystoneauth1 talks to it over HTTP exactly as to a real Keystone:
  `GET /` and `GET /v3` (version discovery), `POST /v3/auth/tokens` (password and
  application_credential methods, `X-Subject-Token` header, `expires_at`, a catalog with
  a `network` service in two regions and three interfaces);
- the Neutron app, run in-process through `httpx.ASGITransport`: it accepts only tokens
  Keystone issued and nobody revoked, answers 401 otherwise, and records what it saw.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

USERNAME = "hotport"
PASSWORD = "pa55-w0rd-S3CRET-do-not-log"
PROJECT = "service"
APP_CRED_ID = "ac-0001"
APP_CRED_SECRET = "app-cred-s3cret-do-not-log"

PUBLIC = "http://neutron.test:9696"
INTERNAL = "http://neutron-internal.test:9696"
REGION_TWO = "http://neutron-r2.test:9696"


@dataclass
class KeystoneState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    lifetimes: list[float] = field(default_factory=list)  # next tokens' lifetimes (s)
    default_lifetime: float = 3600.0
    delay: float = 0.0  # seconds the token endpoint takes to answer
    issued: list[str] = field(default_factory=list)
    expires: dict[str, dt.datetime] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    reject_all_tokens: bool = False
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    discovery_requests: int = 0
    keystone_threads: set[int] = field(default_factory=set)
    neutron_seen: list[tuple[str | None, str, int]] = field(default_factory=list)
    base_url: str = ""

    def token_valid(self, token: str | None) -> bool:
        with self.lock:
            return (
                token is not None
                and token in self.expires
                and token not in self.revoked
                and not self.reject_all_tokens
            )


def _version(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


def _catalog() -> list[dict[str, Any]]:
    def ep(interface: str, region: str, url: str) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "interface": interface,
            "region": region,
            "region_id": region,
            "url": url,
        }

    return [
        {
            "type": "network",
            "name": "neutron",
            "id": "svc-network",
            "endpoints": [
                ep("public", "RegionOne", PUBLIC),
                ep("internal", "RegionOne", INTERNAL),
                ep("admin", "RegionOne", INTERNAL),
                ep("public", "RegionTwo", REGION_TWO),
            ],
        },
        {
            "type": "compute",
            "name": "nova",
            "id": "svc-compute",
            "endpoints": [ep("public", "RegionOne", "http://nova.test:8774/v2.1")],
        },
    ]


class StateBox:
    """The state the served Keystone app uses now (one server, a fresh state per test)."""

    def __init__(self) -> None:
        self.state = KeystoneState()


def keystone_app(box: StateBox) -> Starlette:
    async def root(request: Request) -> Response:
        state = box.state
        with state.lock:
            state.discovery_requests += 1
        return JSONResponse({"versions": {"values": [_version(state.base_url)]}}, status_code=300)

    async def v3(request: Request) -> Response:
        state = box.state
        with state.lock:
            state.discovery_requests += 1
        return JSONResponse({"version": _version(state.base_url)})

    async def tokens(request: Request) -> Response:
        state = box.state
        with state.lock:
            state.keystone_threads.add(threading.get_ident())
        if state.delay:
            await asyncio.sleep(state.delay)
        body = await request.json()
        identity = body["auth"]["identity"]
        methods = identity["methods"]
        with state.lock:
            state.token_requests.append(body)
        if methods == ["password"]:
            user = identity["password"]["user"]
            ok = user.get("name") == USERNAME and user.get("password") == PASSWORD
            user_info = {
                "id": "u-1",
                "name": USERNAME,
                "domain": {"id": "default", "name": "Default"},
            }
        elif methods == ["application_credential"]:
            cred = identity["application_credential"]
            ok = cred.get("id") == APP_CRED_ID and cred.get("secret") == APP_CRED_SECRET
            user_info = {
                "id": "u-1",
                "name": USERNAME,
                "domain": {"id": "default", "name": "Default"},
            }
        else:
            ok = False
            user_info = {}
        if not ok:
            return JSONResponse(
                {
                    "error": {
                        "code": 401,
                        "message": "The request you have made requires authentication.",
                        "title": "Unauthorized",
                    }
                },
                status_code=401,
            )
        now = dt.datetime.now(dt.UTC)
        with state.lock:
            lifetime = state.lifetimes.pop(0) if state.lifetimes else state.default_lifetime
            token = f"tok-{len(state.issued) + 1}-{uuid.uuid4().hex[:8]}"
            expires = now + dt.timedelta(seconds=lifetime)
            state.issued.append(token)
            state.expires[token] = expires
        token_body = {
            "token": {
                "methods": methods,
                "user": user_info,
                "project": {
                    "id": "p-1",
                    "name": PROJECT,
                    "domain": {"id": "default", "name": "Default"},
                },
                "roles": [{"id": "r-1", "name": "admin"}],
                "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "catalog": _catalog(),
            }
        }
        return JSONResponse(token_body, status_code=201, headers={"X-Subject-Token": token})

    return Starlette(
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/v3", v3, methods=["GET"]),
            Route("/v3/", v3, methods=["GET"]),
            Route("/v3/auth/tokens", tokens, methods=["POST"]),
        ]
    )


def neutron_app(state: KeystoneState, port_body: dict[str, Any]) -> Starlette:
    async def show_port(request: Request) -> Response:
        token = request.headers.get("x-auth-token")
        valid = state.token_valid(token)
        with state.lock:
            state.neutron_seen.append((token, request.url.netloc, 200 if valid else 401))
        if not valid:
            return JSONResponse(
                {
                    "error": {
                        "code": 401,
                        "title": "Unauthorized",
                        "message": "Authentication required",
                    }
                },
                status_code=401,
            )
        return JSONResponse({"port": {**port_body, "id": request.path_params["port_id"]}})

    return Starlette(routes=[Route("/v2.0/ports/{port_id}", show_port, methods=["GET"])])


class ServerThread:
    """uvicorn serving an ASGI app on 127.0.0.1:<ephemeral> from a background thread."""

    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-keystone", daemon=True)

    def start(self) -> str:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("fake keystone did not start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
