"""Authentication for the network client: where the service is and what headers to send.

Owns: the `AuthProvider` protocol, `NoAuth` (a fixed endpoint, no token: neutron-server
with `auth_strategy = noauth`, or the simulator) and `KeystoneAuth` (a Keystone v3 token
from keystoneauth1, password or application credential, the endpoint taken from the
service catalog).

Must never: log or put into an exception message a token, password or secret (`repr()`
of a provider shows who, never with what); run a blocking keystoneauth1 call on the event
loop thread (every call that may do I/O goes through `asyncio.to_thread`).

Concurrency: `KeystoneAuth` is used from ONE event loop. The token is cached on the loop;
fetching a new one (first use, near expiry, after `invalidate()`) happens under an
`asyncio.Lock`, so however many requests find the token stale, one re-authentication
runs and the others wait for its result. All keystoneauth1 objects are touched only from
the worker thread that holds that lock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import BaseIdentityPlugin, generic, v3

from hotport.network.config import KeystoneConfig
from hotport.network.errors import (
    DeadlineExceeded,
    NetworkServiceError,
    PermanentError,
    Unauthorized,
    Unavailable,
    class_for,
)

__all__ = ["AuthProvider", "KeystoneAuth", "NoAuth", "SupportsAclose"]


class AuthProvider(Protocol):
    """Where the network service is and how to authenticate a request to it."""

    async def headers(self) -> dict[str, str]:
        """Headers to add to every request (e.g. `X-Auth-Token`)."""
        ...

    async def endpoint(self) -> str:
        """The service root URL (without `/v2.0`, which the client appends)."""
        ...

    async def invalidate(self) -> None:
        """Forget the current credentials: the service answered 401 to them."""
        ...


@runtime_checkable
class SupportsAclose(Protocol):
    async def aclose(self) -> None: ...


class NoAuth:
    """A fixed endpoint and no token (real noauth neutron ignores one: send none)."""

    def __init__(self, endpoint: str) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self._endpoint = endpoint

    async def headers(self) -> dict[str, str]:
        return {}

    async def endpoint(self) -> str:
        return self._endpoint

    async def invalidate(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"NoAuth({self._endpoint!r})"


@dataclass(frozen=True, slots=True)
class _Grant:
    token: str
    expires: dt.datetime | None
    endpoint: str

    def __repr__(self) -> str:  # never show the token
        return f"_Grant(expires={self.expires!r}, endpoint={self.endpoint!r})"


class _NoEndpointError(Exception):
    pass


_VERSIONED = re.compile(r"/v\d+(\.\d+)?/?$")


class KeystoneAuth:
    """Keystone v3 token and catalog endpoint through keystoneauth1, off the event loop.

    The token is re-fetched `min_token_life` seconds before it expires, and after
    `invalidate()` (the client calls it on a 401 and retries once).
    """

    def __init__(
        self,
        config: KeystoneConfig,
        *,
        session: ks_session.Session | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._config = config
        self._plugin = _make_plugin(config)
        self._session = session or ks_session.Session(
            auth=self._plugin,
            verify=config.verify,
            timeout=config.keystone_timeout,
            user_agent="hotport",
        )
        self._now = now or _utcnow
        self._lock = asyncio.Lock()
        self._grant: _Grant | None = None
        self._force = False
        self._fetches = 0

    # -- AuthProvider ------------------------------------------------------------------

    async def headers(self) -> dict[str, str]:
        grant = await self._current()
        return {"X-Auth-Token": grant.token}

    async def endpoint(self) -> str:
        grant = await self._current()
        return grant.endpoint

    async def invalidate(self) -> None:
        async with self._lock:
            self._grant = None
            self._force = True

    async def aclose(self) -> None:
        self._session.session.close()

    # -- introspection -----------------------------------------------------------------

    @property
    def fetches(self) -> int:
        """How many times a token was (re)fetched in a worker thread."""
        return self._fetches

    def __repr__(self) -> str:
        c = self._config
        who = c.application_credential_id or c.application_credential_name or c.username
        who = who or c.user_id
        return f"KeystoneAuth(auth_url={c.auth_url!r}, auth_type={c.auth_type!r}, who={who!r})"

    # -- internals ---------------------------------------------------------------------

    def _stale(self, grant: _Grant | None) -> bool:
        if grant is None:
            return True
        if grant.expires is None:
            return False
        left = grant.expires - self._now()
        return left.total_seconds() <= self._config.min_token_life

    async def _current(self) -> _Grant:
        grant = self._grant
        if not self._stale(grant):
            assert grant is not None
            return grant
        async with self._lock:
            grant = self._grant
            if not self._stale(grant):
                assert grant is not None
                return grant
            # a grant we hold but consider stale: make keystoneauth re-authenticate too,
            # whatever its own MIN_TOKEN_LIFE_SECONDS says
            force = self._force or grant is not None
            try:
                grant = await asyncio.to_thread(self._fetch_blocking, force)
            except ks_exc.ClientException as exc:
                raise self._translate(exc) from exc
            except _NoEndpointError as exc:
                raise self._no_endpoint() from exc
            self._force = False
            self._grant = grant
            return grant

    def _fetch_blocking(self, force: bool) -> _Grant:
        """Runs in a worker thread: may do HTTP to Keystone."""
        self._fetches += 1
        if force:
            self._plugin.invalidate()
        access = self._plugin.get_access(self._session)
        token = access.auth_token
        if not token:
            raise ks_exc.AuthorizationFailure("Keystone returned no token")
        c = self._config
        # from this very token's catalog: `plugin.get_endpoint` would call `get_access`
        # again, and re-authenticate by its own expiry rule
        endpoint = c.endpoint_override or access.service_catalog.url_for(
            service_type=c.service_type,
            interface=c.interface,
            region_name=c.region_name,
        )
        if not endpoint:
            raise _NoEndpointError
        expires = access.expires
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return _Grant(token=token, expires=expires, endpoint=endpoint)

    def _no_endpoint(self) -> PermanentError:
        c = self._config
        return PermanentError(
            f"no {c.service_type!r} endpoint with interface {c.interface!r}"
            f" in region {c.region_name!r} in the service catalog",
            call="keystone",
        )

    def _translate(self, exc: ks_exc.ClientException) -> NetworkServiceError:
        """A typed error for a keystoneauth1 failure; our own message, never a secret."""
        c = self._config
        where = f"keystone at {c.auth_url}"
        if isinstance(exc, ks_exc.EndpointNotFound):
            return self._no_endpoint()
        if isinstance(exc, ks_exc.Unauthorized):
            return Unauthorized(
                f"{where} refused the {c.auth_type} credentials",
                status=401,
                call="keystone",
            )
        if isinstance(exc, ks_exc.HttpError):
            status = int(exc.http_status or 0)
            cls = class_for(status) if status else Unavailable
            return cls(f"{where} answered HTTP {status}", status=status, call="keystone")
        if isinstance(exc, ks_exc.ConnectTimeout):
            return DeadlineExceeded(f"{where}: connect timeout", call="keystone")
        if isinstance(exc, ks_exc.ConnectionError | ks_exc.DiscoveryFailure):
            return Unavailable(f"{where} unreachable ({type(exc).__name__})", call="keystone")
        return PermanentError(f"{where}: {type(exc).__name__}", call="keystone")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_plugin(c: KeystoneConfig) -> BaseIdentityPlugin:
    if c.auth_type == "password":
        assert c.password is not None  # checked by KeystoneConfig
        return generic.Password(
            auth_url=c.auth_url,
            username=c.username,
            user_id=c.user_id,
            password=c.password.get_secret_value(),
            user_domain_name=None if c.user_domain_id else c.user_domain_name,
            user_domain_id=c.user_domain_id,
            project_name=c.project_name,
            project_id=c.project_id,
            project_domain_name=None if c.project_domain_id else c.project_domain_name,
            project_domain_id=c.project_domain_id,
        )
    assert c.application_credential_secret is not None  # checked by KeystoneConfig
    auth_url = c.auth_url if _VERSIONED.search(c.auth_url) else c.auth_url.rstrip("/") + "/v3"
    return v3.ApplicationCredential(
        auth_url=auth_url,
        application_credential_secret=c.application_credential_secret.get_secret_value(),
        application_credential_id=c.application_credential_id,
        application_credential_name=c.application_credential_name,
        username=c.username,
        user_id=c.user_id,
        user_domain_name=c.user_domain_name if c.username and not c.user_domain_id else None,
        user_domain_id=c.user_domain_id,
    )
