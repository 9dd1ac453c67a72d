"""Configuration of the network client: which service, how to authenticate, how patient to be.

Owns: `KeystoneConfig` (password or application-credential auth through keystoneauth1,
endpoint from the catalog), `ClientConfig` (timeouts, deadlines, retries, backoff, id
chunk size) and `NetworkConfig` (auth mode `none` | `keystone` plus both of the above).

Must never: show a secret. Passwords and application-credential secrets are
`pydantic.SecretStr`, so `repr()`, `str()` and `model_dump()` print `**********`; only
`auth.py` unwraps them, right before handing them to keystoneauth1.

Concurrency: frozen values, safe to share.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ClientConfig", "KeystoneConfig", "NetworkConfig"]


class KeystoneConfig(BaseModel):
    """Keystone v3 credentials and where to find the network service in the catalog.

    `auth_type="password"` (keystoneauth's generic password plugin: it runs version
    discovery on `auth_url`, so `http://keystone:5000` and `.../v3` both work) needs
    `password` and `username` (+ `user_domain_name` / `user_domain_id`) or `user_id`, and
    a project scope. `auth_type="application_credential"` (keystoneauth's `v3`
    application-credential plugin; `/v3` is appended to `auth_url` when no version is
    in it) needs `application_credential_secret` and `application_credential_id`, or
    `application_credential_name` with `username`/`user_id`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_url: str
    auth_type: Literal["password", "application_credential"] = "password"
    # password
    username: str | None = None
    user_id: str | None = None
    password: SecretStr | None = None
    user_domain_name: str | None = "Default"
    user_domain_id: str | None = None
    project_name: str | None = None
    project_id: str | None = None
    project_domain_name: str | None = "Default"
    project_domain_id: str | None = None
    # application credential
    application_credential_id: str | None = None
    application_credential_name: str | None = None
    application_credential_secret: SecretStr | None = None
    # catalog
    service_type: str = "network"
    interface: str = "public"
    region_name: str | None = None
    endpoint_override: str | None = None
    # transport to Keystone (keystoneauth1 uses requests, run in a worker thread)
    verify: bool | str = True
    keystone_timeout: float = Field(default=10.0, gt=0)
    #: re-authenticate this many seconds before the token expires (keystoneauth uses 120)
    min_token_life: float = Field(default=120.0, ge=0)

    @model_validator(mode="after")
    def _check_credentials(self) -> Self:
        if self.auth_type == "password":
            if self.password is None:
                raise ValueError("keystone password auth needs 'password'")
            if not (self.username or self.user_id):
                raise ValueError("keystone password auth needs 'username' or 'user_id'")
        else:
            if self.application_credential_secret is None:
                raise ValueError(
                    "keystone application_credential auth needs 'application_credential_secret'"
                )
            if not self.application_credential_id and not (
                self.application_credential_name and (self.username or self.user_id)
            ):
                raise ValueError(
                    "keystone application_credential auth needs 'application_credential_id',"
                    " or 'application_credential_name' with 'username' or 'user_id'"
                )
        return self


class ClientConfig(BaseModel):
    """Timeouts, deadlines and retries of the Neutron client (see `retry.py` for the policy).

    `read_timeout` / `write_timeout` bound each HTTP attempt of a GET / of a POST, PUT or
    DELETE; `read_deadline` / `write_deadline` bound a whole call, retries and backoff
    included. `id_chunk` is how many ids go into one list URL (`?id=a&id=b...`): 100 UUIDs
    make a ~4 kB query string, well below neutron-server's default 8 kB request line
    limit (`max_header_line`) and proxies' usual 8 kB; longer lists are split into that
    many requests, sent concurrently.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    read_timeout: float = Field(default=10.0, gt=0)
    write_timeout: float = Field(default=30.0, gt=0)
    read_deadline: float = Field(default=30.0, gt=0)
    write_deadline: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_initial: float = Field(default=0.1, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    backoff_max: float = Field(default=5.0, ge=0)
    backoff_jitter: float = Field(default=0.5, ge=0, le=1)
    id_chunk: int = Field(default=100, ge=1)
    max_connections: int = Field(default=100, ge=1)


class NetworkConfig(BaseModel):
    """Everything needed to build a `NeutronClient` with `from_config`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: Literal["none", "keystone"] = "none"
    #: the Neutron endpoint for `auth="none"` (`/v2.0` is appended by the client)
    endpoint: str = "http://127.0.0.1:9696"
    keystone: KeystoneConfig | None = None
    client: ClientConfig = ClientConfig()

    @model_validator(mode="after")
    def _check_mode(self) -> Self:
        if self.auth == "keystone" and self.keystone is None:
            raise ValueError("auth 'keystone' needs a 'keystone' section")
        return self
