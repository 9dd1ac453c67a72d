"""The service's configuration: one model, read from a TOML file, the environment and flags.

Owns: `ServiceConfig` (every knob of `hotport serve`), `AuthConfig` (how API callers are
authenticated), `load_config` (precedence: flags > environment > file > defaults) and the
default database location (a SQLite file under the user's data directory).

Environment variables are `HOTPORT_<FIELD>`, nested with `__`
(`HOTPORT_NETWORK__KEYSTONE__PASSWORD`); `HOTPORT_NEUTRON_URL` is a shortcut for
`network.endpoint`. The TOML file has the same names (`[network]`, `[auth]`, ...).

Must never: show a secret (they are `SecretStr`); open a socket or a file other than the
configuration file itself.

Concurrency: frozen values, safe to share.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hotport.network.config import NetworkConfig

__all__ = [
    "AuthConfig",
    "ConfigError",
    "KeystoneTokenConfig",
    "ServiceConfig",
    "default_db_url",
    "is_loopback",
    "load_config",
    "parse_listen",
]

AuthMode = Literal["none", "static", "keystone"]
Driver = Literal["memory", "libvirt"]
Policy = Literal["hotport", "article", "legacy"]


class ConfigError(ValueError):
    """The configuration is invalid; the message says which setting and why."""


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:8774`) -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT")
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port {port_text!r} in {value!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} in {value!r} is out of range 0-65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_db_url() -> str:
    path = Path(platformdirs.user_data_dir("hotport")) / "hotport.db"
    return f"sqlite+aiosqlite:///{path}"


class KeystoneTokenConfig(BaseModel):
    """How `auth.mode = "keystone"` validates callers' tokens (GET /v3/auth/tokens).

    The service authenticates itself with these credentials (keystoneauth1's password
    plugin) and sends each caller's token as `X-Subject-Token`. Validated tokens are
    cached until they expire, at most `cache_seconds`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_url: str
    username: str
    password: SecretStr
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    cache_seconds: float = Field(default=300.0, ge=0)
    timeout: float = Field(default=10.0, gt=0)
    verify: bool | str = True


class AuthConfig(BaseModel):
    """How API callers are authenticated.

    `none`: nobody is asked for anything (and the service then refuses to listen
    beyond loopback unless `allow_remote_unauthenticated` is set). `static`: tokens
    from `tokens_file`, a TOML file of `[tokens."<token>"]` or `[tokens."sha256:<hex>"]`
    tables with `roles = [...]` (required) and optional `user`, `project_id` (format and
    checks: hotport.api.auth, docs/operations.md). `keystone`: tokens validated by
    Keystone; a `tokens_file` given too is checked first (a break-glass token, or one
    for the metrics scraper).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: AuthMode = "none"
    tokens_file: Path | None = None
    keystone: KeystoneTokenConfig | None = None
    #: roles that may post events and run a heal
    admin_roles: tuple[str, ...] = ("admin", "service")
    allow_remote_unauthenticated: bool = False

    @model_validator(mode="after")
    def _check_mode(self) -> Self:
        if self.mode == "static" and self.tokens_file is None:
            raise ValueError(
                "auth mode 'static' needs auth.tokens_file (HOTPORT_AUTH__TOKENS_FILE)"
            )
        if self.mode == "keystone" and self.keystone is None:
            raise ValueError("auth mode 'keystone' needs an [auth.keystone] section")
        return self


class ServiceConfig(BaseSettings):
    """Every setting of `hotport serve`. See the module docstring for the sources."""

    model_config = SettingsConfigDict(
        env_prefix="HOTPORT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    listen: str = "127.0.0.1:8774"
    host: str = Field(default="compute-1", min_length=1, max_length=255)
    driver: Driver = "memory"
    libvirt_uri: str = "qemu:///system"
    db: str = Field(default_factory=default_db_url)
    policy: Policy = "hotport"
    #: seconds between periodic heals; 0 turns the loop off
    heal_interval: float = Field(default=60.0, ge=0)
    tombstone_age: float = Field(default=3600.0, gt=0)
    detach_timeout: float = Field(default=30.0, gt=0)
    #: heal repairs the hypervisor (plugs missing NICs, unplugs orphans)
    repair: bool = False
    #: how long a graceful stop waits for in-flight operations
    shutdown_timeout: float = Field(default=30.0, ge=0)
    #: deadline of one API request that runs an operation (attach, detach, heal)
    request_timeout: float = Field(default=120.0, gt=0)
    neutron_url: str | None = None
    network: NetworkConfig = NetworkConfig()
    auth: AuthConfig = AuthConfig()
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_json: bool = False
    device_owner: str = "compute:nova"

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            host, _ = parse_listen(self.listen)
        except ValueError as exc:
            raise ValueError(f"listen: {exc}") from None
        if self.heal_interval and self.tombstone_age <= self.heal_interval:
            raise ValueError(
                f"tombstone_age ({self.tombstone_age}s) must exceed heal_interval "
                f"({self.heal_interval}s), or a heal could resurrect a detached port"
            )
        if (
            self.auth.mode == "none"
            and not is_loopback(host)
            and not self.auth.allow_remote_unauthenticated
        ):
            raise ValueError(
                f"listen {self.listen}: auth mode 'none' listens on loopback only; use "
                "--auth static|keystone, or set auth.allow_remote_unauthenticated = true"
            )
        return self

    @property
    def network_config(self) -> NetworkConfig:
        """`network`, with `neutron_url` (the flag/env shortcut) as its endpoint if set."""
        if self.neutron_url is None:
            return self.network
        return self.network.model_copy(update={"endpoint": self.neutron_url})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags (init) > environment > the TOML file (read by load_config) > defaults
        return (init_settings, env_settings, _FileSource(settings_cls))


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file's values; `load_config` sets `data` before validation."""

    data: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FileSource.data)


def _merge_flags(data: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key, value in flags.items():
        if value is None:
            continue
        if "." in key:  # "auth.mode" -> {"auth": {"mode": ...}}
            head, rest = key.split(".", 1)
            out[head] = _merge_flags(dict(out.get(head) or {}), {rest: value})
        else:
            out[key] = value
    return out


def load_config(path: Path | None = None, **flags: Any) -> ServiceConfig:
    """Build the configuration. `flags` are the command line's values (None = not
    given); dotted keys (`auth.mode`) reach into sections. Raises `ConfigError`."""
    file_data: dict[str, Any] = {}
    if path is not None:
        try:
            file_data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    # pydantic-settings deep-merges the sources, so a nested flag ("auth.mode") only
    # overrides that one key of the file's or the environment's section
    _FileSource.data = file_data
    try:
        return ServiceConfig(**_merge_flags({}, flags))
    except ValueError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        _FileSource.data = {}


def _describe(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for e in errors():
        where = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
