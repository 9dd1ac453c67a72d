"""Who is calling: token authentication and role checks for the API.

Owns: `Caller` (user, project, roles), the `Authenticator` protocol and its three modes:
`OpenAccess` (`none`), `StaticTokens` (`static`: tokens from a TOML file, see
`parse_tokens`) and `KeystoneTokens` (`keystone`: tokens validated by Keystone's
`GET /v3/auth/tokens`, cached); `Layered` (a local tokens file consulted before
Keystone, for scrapers and break-glass tokens); and the FastAPI dependencies
`authenticated` (any valid token) and `admin` (a token with an admin or service role:
events and heal). Role names compare case-insensitively, as oslo.policy does.

Failures: no token, or a token nobody knows, is `AuthError(401)`; a valid token without
the role is `AuthError(403)`; Keystone unreachable, failing, or refusing hotport's own
credentials is `IdentityUnavailable` (an engine-style `UnavailableError`, so the API
answers 503 with category `transient`): we cannot tell whether the caller is who they
claim, and that is not the caller's fault.

Must never: log, echo or put into an exception message a token or a password (tokens
are kept and looked up by their SHA-256 digest; an error about a tokens file names the
entry by position and user, never by key); call keystoneauth1 on the event loop thread
(it blocks: every call goes through `asyncio.to_thread`).

Concurrency: authenticators are shared by all requests of one event loop. `StaticTokens`
is immutable after loading. `KeystoneTokens` keeps its cache and its in-flight
validations on the loop (no awaits between a check and the update that follows it), so
concurrent requests with the same token share ONE Keystone request; keystoneauth1's
session and plugin are used from worker threads (the plugin serializes its own token
fetch under a thread lock).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import stat
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import Request
from keystoneauth1 import access as ks_access
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic

from hotport import logs
from hotport.api.errors import AuthError
from hotport.engine.errors import UnavailableError
from hotport.service.config import ConfigError, KeystoneTokenConfig

__all__ = [
    "DEFAULT_ADMIN_ROLES",
    "MIN_TOKEN_LENGTH",
    "TOKEN_HEADER",
    "Authenticator",
    "Caller",
    "IdentityUnavailable",
    "KeystoneTokens",
    "Layered",
    "OpenAccess",
    "StaticTokens",
    "TokenFileError",
    "admin",
    "authenticated",
    "parse_tokens",
    "token_digest",
]

log = logging.getLogger("hotport.api.auth")

TOKEN_HEADER = "X-Auth-Token"
DEFAULT_ADMIN_ROLES = frozenset({"admin", "service"})
#: a literal token in the tokens file must be at least this long (use `openssl rand -hex 32`)
MIN_TOKEN_LENGTH = 16
#: how long Keystone's "no such token" (404) is remembered, at most (bounded by cache_seconds)
NEGATIVE_CACHE_SECONDS = 10.0

_DIGEST_PREFIX = "sha256:"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: a valid header value


@dataclass(frozen=True)
class Caller:
    user: str | None
    project_id: str | None
    roles: frozenset[str]


class Authenticator(Protocol):
    mode: str
    admin_roles: frozenset[str]

    async def authenticate(self, token: str | None) -> Caller:
        """The caller behind `token`; raises `AuthError(401)` when there is none."""
        ...

    async def aclose(self) -> None: ...


class IdentityUnavailable(UnavailableError):
    """Tokens cannot be validated now (Keystone unreachable, failing, or refusing
    hotport's own credentials): 503, retry later."""


class TokenFileError(ConfigError):
    """The static tokens file is unreadable or invalid (the message never shows a token)."""


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is kept and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def _roles(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


def _missing(mode: str) -> AuthError:
    return AuthError(
        401,
        f"this API needs a token: send it in the {TOKEN_HEADER} header (auth mode {mode})",
    )


def _invalid(mode: str) -> AuthError:
    return AuthError(
        401,
        f"the {TOKEN_HEADER} token is not valid (unknown, expired or revoked; "
        f"auth mode {mode}); get a new one",
    )


# -- none ------------------------------------------------------------------------------
class OpenAccess:
    """Mode `none`: everybody is an administrator (the service listens on loopback)."""

    mode = "none"
    admin_roles = DEFAULT_ADMIN_ROLES

    async def authenticate(self, token: str | None) -> Caller:
        return Caller(user=None, project_id=None, roles=frozenset({"admin"}))

    async def aclose(self) -> None:
        return None


# -- static ----------------------------------------------------------------------------
def parse_tokens(data: Mapping[str, Any], *, source: str = "tokens file") -> dict[str, Caller]:
    """The callers of a parsed tokens file, by token digest (`token_digest`).

    The format (TOML)::

        [tokens."<the token itself, 16+ visible ASCII characters>"]
        roles = ["admin"]           # required; may be empty (reads and attach/detach only)
        user = "ops"                # optional, shown in logs
        project_id = "..."          # optional

        [tokens."sha256:<64 hex digits: the SHA-256 of the token>"]
        roles = ["reader"]

    Nothing else is allowed (a misspelt key is refused, not ignored). Raises
    `TokenFileError`; its message names an entry by position and user, never by token.
    """
    unknown = sorted(set(data) - {"tokens"})
    if unknown:
        raise TokenFileError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "the file has one table, [tokens.<token>]"
        )
    tokens = data.get("tokens")
    if not isinstance(tokens, Mapping) or not tokens:
        raise TokenFileError(
            f"{source}: no tokens; add at least one [tokens.<token>] table with roles = [...]"
        )
    out: dict[str, Caller] = {}
    for n, (key, entry) in enumerate(tokens.items(), start=1):
        user = entry.get("user") if isinstance(entry, Mapping) else None
        where = f"{source}: token entry {n}"
        if isinstance(user, str):
            where += f" (user {user!r})"
        digest = _entry_digest(key, where)
        caller = _entry_caller(entry, where)
        if digest in out:
            raise TokenFileError(f"{where}: the same token is listed twice (once hashed?)")
        out[digest] = caller
    return out


def _entry_digest(key: str, where: str) -> str:
    if key.startswith(_DIGEST_PREFIX):
        hexdigest = key.removeprefix(_DIGEST_PREFIX)
        if not _HEX64.match(hexdigest):
            raise TokenFileError(
                f"{where}: a hashed token is 'sha256:' and 64 hex digits "
                "(printf %s TOKEN | sha256sum)"
            )
        return hexdigest.lower()
    if len(key) < MIN_TOKEN_LENGTH:
        raise TokenFileError(
            f"{where}: the token is shorter than {MIN_TOKEN_LENGTH} characters; "
            "use a random one (openssl rand -hex 32)"
        )
    if not _TOKEN_CHARS.match(key):
        raise TokenFileError(
            f"{where}: the token has a space, control or non-ASCII character; "
            "it could not be sent in a header"
        )
    return token_digest(key)


def _entry_caller(entry: Any, where: str) -> Caller:
    if not isinstance(entry, Mapping):
        raise TokenFileError(f"{where}: must be a table with roles = [...]")
    unknown = sorted(set(entry) - {"roles", "user", "project_id"})
    if unknown:
        raise TokenFileError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            "allowed: roles, user, project_id"
        )
    if "roles" not in entry:
        raise TokenFileError(f"{where}: roles is required (roles = [] for no role)")
    roles = entry["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) and r.strip() for r in roles):
        raise TokenFileError(f"{where}: roles must be a list of role names")
    for field in ("user", "project_id"):
        value = entry.get(field)
        if value is not None and (not isinstance(value, str) or not value):
            raise TokenFileError(f"{where}: {field} must be a non-empty string")
    return Caller(
        user=entry.get("user"),
        project_id=entry.get("project_id"),
        roles=_roles(r.strip() for r in roles),
    )


class StaticTokens:
    """Mode `static`: the callers of a tokens file (`parse_tokens`), read once at start."""

    def __init__(
        self,
        callers: Mapping[str, Caller],
        *,
        admin_roles: Iterable[str] = DEFAULT_ADMIN_ROLES,
        source: str = "tokens",
    ) -> None:
        self.mode = "static"
        self.admin_roles = _roles(admin_roles)
        self._callers = dict(callers)  # by token digest
        self._source = source

    @classmethod
    def from_file(
        cls, path: Path | str, *, admin_roles: Iterable[str] = DEFAULT_ADMIN_ROLES
    ) -> StaticTokens:
        path = Path(path)
        try:
            text = path.read_text()
            mode = path.stat().st_mode
        except OSError as exc:
            raise TokenFileError(f"cannot read tokens file {path}: {exc.strerror}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # the decoder's message quotes no value, only where the syntax broke
            raise TokenFileError(f"tokens file {path} is not valid TOML: {exc}") from exc
        callers = parse_tokens(data, source=f"tokens file {path}")
        literal = any(not k.startswith(_DIGEST_PREFIX) for k in data["tokens"])
        if literal and mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "tokens file %s holds plain tokens and is readable by other users "
                "(mode %o); chmod 600 it, or list sha256:<digest> keys instead",
                path,
                stat.S_IMODE(mode),
            )
        return cls(callers, admin_roles=admin_roles, source=str(path))

    def __len__(self) -> int:
        return len(self._callers)

    def __repr__(self) -> str:
        return f"StaticTokens({len(self._callers)} token(s) from {self._source})"

    def lookup(self, token: str | None) -> Caller | None:
        """The caller of a known token, None otherwise (never raises)."""
        if not token:
            return None
        return self._callers.get(token_digest(token))

    async def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise _missing(self.mode)
        caller = self.lookup(token)
        if caller is None:
            raise _invalid(self.mode)
        return caller

    async def aclose(self) -> None:
        return None


# -- keystone --------------------------------------------------------------------------
def validation_url(auth_url: str) -> str:
    """Keystone's token validation URL for `auth_url` (`.../v3` or the server's root)."""
    base = auth_url.rstrip("/")
    if re.search(r"/v2(\.0)?$", base):
        raise ConfigError(f"auth.keystone.auth_url {auth_url}: Keystone v2 is not supported")
    if re.search(r"/v3$", base):
        return base + "/auth/tokens"
    return base + "/v3/auth/tokens"


@dataclass(frozen=True, slots=True)
class _Verdict:
    caller: Caller | None  # None: Keystone says there is no such (valid) token
    until: float  # clock() time until which the verdict may be reused


class KeystoneTokens:
    """Mode `keystone`: `GET /v3/auth/tokens` with the caller's token as `X-Subject-Token`,
    sent with hotport's own token (keystoneauth1's password plugin, re-authenticated by
    keystoneauth1 when it expires or is refused).

    A valid token is cached until its `expires_at`, at most `cache_seconds`; Keystone's
    404 (not a valid token) is cached for at most `NEGATIVE_CACHE_SECONDS`; failures are
    never cached. The cache holds at most `max_entries` (least recently used dropped
    first), keyed by token digest. Concurrent requests with the same uncached token share
    one validation. A token revoked in Keystone stays accepted until its cache entry ends
    (as with keystonemiddleware): lower `cache_seconds` to shorten that window.
    """

    def __init__(
        self,
        config: KeystoneTokenConfig,
        *,
        admin_roles: Iterable[str] = DEFAULT_ADMIN_ROLES,
        session: ks_session.Session | None = None,
        clock: Callable[[], float] = time.time,
        max_entries: int = 10_000,
    ) -> None:
        self.mode = "keystone"
        self.admin_roles = _roles(admin_roles)
        self._config = config
        self._url = validation_url(config.auth_url)
        self._session = session or ks_session.Session(
            auth=generic.Password(
                auth_url=config.auth_url,
                username=config.username,
                password=config.password.get_secret_value(),
                project_name=config.project_name,
                user_domain_name=config.user_domain_name,
                project_domain_name=config.project_domain_name,
            ),
            verify=config.verify,
            timeout=config.timeout,
            user_agent="hotport",
        )
        self._clock = clock
        self._max_entries = max_entries
        self._cache: OrderedDict[str, _Verdict] = OrderedDict()
        self._pending: dict[str, asyncio.Task[_Verdict]] = {}
        #: validation requests sent to Keystone (each is one worker-thread call)
        self.validations = 0

    def __repr__(self) -> str:
        return f"KeystoneTokens(auth_url={self._config.auth_url!r}, as={self._config.username!r})"

    async def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise _missing(self.mode)
        key = token_digest(token)
        verdict = self._cached(key)
        if verdict is None:
            task = self._pending.get(key)
            if task is None:
                task = asyncio.get_running_loop().create_task(
                    self._validate(key, token, logs.request_id.get()),
                    name="hotport-token-check",
                )
                self._pending[key] = task
                task.add_done_callback(self._forget(key))
            try:
                # shielded: a caller that goes away does not cancel the others' answer
                verdict = await asyncio.shield(task)
            except IdentityUnavailable as exc:
                raise IdentityUnavailable(exc.message) from exc
        if verdict.caller is None:
            raise _invalid(self.mode)
        return verdict.caller

    async def aclose(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        self._session.session.close()

    # -- internals ---------------------------------------------------------------------
    def _cached(self, key: str) -> _Verdict | None:
        verdict = self._cache.get(key)
        if verdict is None:
            return None
        if verdict.until <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return verdict

    def _remember(self, key: str, verdict: _Verdict) -> None:
        if verdict.until <= self._clock():
            return
        self._cache[key] = verdict
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def _forget(self, key: str) -> Callable[[asyncio.Task[_Verdict]], None]:
        def done(task: asyncio.Task[_Verdict]) -> None:
            if self._pending.get(key) is task:
                del self._pending[key]
            if not task.cancelled():
                task.exception()  # retrieved here, so no "never retrieved" noise

        return done

    async def _validate(self, key: str, token: str, request_id: str | None) -> _Verdict:
        verdict = await self._ask(token, request_id)
        self._remember(key, verdict)
        return verdict

    async def _ask(self, token: str, request_id: str | None) -> _Verdict:
        where = f"keystone at {self._config.auth_url}"
        self.validations += 1
        try:
            status, body = await asyncio.to_thread(self._get_blocking, token, request_id)
        except ks_exc.Unauthorized as exc:
            log.error(
                "%s refused hotport's own credentials (user %r): tokens cannot be validated",
                where,
                self._config.username,
            )
            raise IdentityUnavailable(
                "tokens cannot be validated: the identity service refused hotport's own "
                "credentials; retry later"
            ) from exc
        except ks_exc.ClientException as exc:
            log.warning("cannot validate a token: %s failed (%s)", where, type(exc).__name__)
            raise IdentityUnavailable(
                f"tokens cannot be validated: the identity service is unavailable "
                f"({type(exc).__name__}); retry later"
            ) from exc
        now = self._clock()
        if status == 404:
            return _Verdict(None, now + min(self._config.cache_seconds, NEGATIVE_CACHE_SECONDS))
        if status != 200:
            if status in (401, 403):
                log.error(
                    "%s answered %d to a token validation: hotport's user %r may not "
                    "validate tokens (give it the service role)",
                    where,
                    status,
                    self._config.username,
                )
            else:
                log.warning("cannot validate a token: %s answered HTTP %d", where, status)
            raise IdentityUnavailable(
                f"tokens cannot be validated: the identity service answered HTTP {status}; "
                "retry later"
            )
        try:
            if not isinstance(body, dict):
                raise TypeError("not a JSON object")
            info = ks_access.create(body=body)
            expires = info.expires
            caller = Caller(
                user=info.user_id,
                project_id=info.project_id,
                roles=_roles(info.role_names or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("cannot validate a token: %s sent a token body we cannot read", where)
            raise IdentityUnavailable(
                "tokens cannot be validated: the identity service's answer is malformed"
            ) from exc
        if expires is None:  # Keystone always sends expires_at; without it, cache_seconds
            return _Verdict(caller, now + self._config.cache_seconds)
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        expires_at = expires.timestamp()
        if expires_at <= now:
            return _Verdict(None, now + min(self._config.cache_seconds, NEGATIVE_CACHE_SECONDS))
        return _Verdict(caller, min(expires_at, now + self._config.cache_seconds))

    def _get_blocking(self, token: str, request_id: str | None) -> tuple[int, Any]:
        """Runs in a worker thread: may fetch hotport's own token, then validates."""
        response = self._session.get(
            self._url,
            headers={"X-Subject-Token": token},
            authenticated=True,
            raise_exc=False,
            log=False,  # keystoneauth1's request log would carry the subject token's hash
            global_request_id=request_id,
        )
        if response.status_code != 200:
            return response.status_code, None
        try:
            return 200, response.json()
        except ValueError:
            return 200, None


# -- layered ---------------------------------------------------------------------------
class Layered:
    """A local tokens file first, then another authenticator (Keystone): a token listed
    in the file never reaches Keystone (a Prometheus scraper's, a break-glass token)."""

    def __init__(self, local: StaticTokens, then: Authenticator) -> None:
        self.mode = then.mode
        self.admin_roles = then.admin_roles
        self._local = local
        self._then = then

    async def authenticate(self, token: str | None) -> Caller:
        caller = self._local.lookup(token)
        if caller is not None:
            return caller
        return await self._then.authenticate(token)

    async def aclose(self) -> None:
        await self._then.aclose()


# -- the dependencies ------------------------------------------------------------------
async def authenticated(request: Request) -> Caller:
    authenticator: Authenticator = request.app.state.authenticator
    token = request.headers.get(TOKEN_HEADER)
    try:
        caller = await authenticator.authenticate(token)
    except AuthError:
        log.info(
            "refused %s %s: %s token (auth mode %s)",
            request.method,
            request.url.path,
            "no" if not token else "invalid",
            authenticator.mode,
        )
        raise
    request.state.caller = caller
    return caller


async def admin(request: Request) -> Caller:
    caller = await authenticated(request)
    authenticator: Authenticator = request.app.state.authenticator
    if not caller.roles & authenticator.admin_roles:
        log.info(
            "refused %s %s: user %s lacks an admin role",
            request.method,
            request.url.path,
            caller.user,
        )
        raise AuthError(
            403,
            "this needs one of the roles "
            + ", ".join(sorted(authenticator.admin_roles))
            + "; the token has "
            + (", ".join(sorted(caller.roles)) or "none"),
        )
    return caller
