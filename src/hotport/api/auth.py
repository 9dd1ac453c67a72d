"""Who is calling: token authentication and role checks for the API.

Owns: `Caller` (user, project, roles), the `Authenticator` protocol, `OpenAccess`
(mode `none`), and the FastAPI dependencies `authenticated` (any valid token) and
`admin` (a token with an admin or service role: events and heal).

Must never: log or echo a token.

Concurrency: authenticators are shared by all requests of one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from hotport.api.errors import AuthError

TOKEN_HEADER = "X-Auth-Token"


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


class OpenAccess:
    """Mode `none`: everybody is an administrator (the service listens on loopback)."""

    mode = "none"
    admin_roles = frozenset({"admin", "service"})

    async def authenticate(self, token: str | None) -> Caller:
        return Caller(user=None, project_id=None, roles=frozenset({"admin"}))

    async def aclose(self) -> None:
        return None


async def authenticated(request: Request) -> Caller:
    authenticator: Authenticator = request.app.state.authenticator
    caller = await authenticator.authenticate(request.headers.get(TOKEN_HEADER))
    request.state.caller = caller
    return caller


async def admin(request: Request) -> Caller:
    caller = await authenticated(request)
    authenticator: Authenticator = request.app.state.authenticator
    if not caller.roles & authenticator.admin_roles:
        raise AuthError(
            403,
            "this needs one of the roles "
            + ", ".join(sorted(authenticator.admin_roles))
            + "; the token has "
            + (", ".join(sorted(caller.roles)) or "none"),
        )
    return caller
