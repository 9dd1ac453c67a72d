"""The API's authenticator, chosen from the configuration (`hotport serve` calls this).

Owns: `make_authenticator(config.auth)`: `none` -> `OpenAccess`; `static` ->
`StaticTokens` read from `tokens_file`; `keystone` -> `KeystoneTokens`, with the tokens
file (when one is configured too) consulted first, so a scraper's or a break-glass token
works without Keystone.

Must never: contact Keystone (the first validation does, on the event loop's worker
threads) or show a token (errors about the tokens file name entries, not tokens).

Concurrency: runs once at start, before the event loop serves requests; reads the tokens
file synchronously.
"""

from __future__ import annotations

from hotport.api.auth import Authenticator, KeystoneTokens, Layered, OpenAccess, StaticTokens
from hotport.service.config import AuthConfig

__all__ = ["make_authenticator"]


def make_authenticator(config: AuthConfig) -> Authenticator:
    """The authenticator for `config`. Raises `hotport.api.auth.TokenFileError` (a
    `ConfigError`) when the tokens file is unreadable or invalid, `ConfigError` when the
    Keystone URL is unusable."""
    if config.mode == "none":
        return OpenAccess()
    static = (
        StaticTokens.from_file(config.tokens_file, admin_roles=config.admin_roles)
        if config.tokens_file is not None
        else None
    )
    if config.mode == "static":
        assert static is not None  # AuthConfig requires tokens_file for static
        return static
    assert config.keystone is not None  # AuthConfig requires [auth.keystone] for keystone
    keystone = KeystoneTokens(config.keystone, admin_roles=config.admin_roles)
    return keystone if static is None else Layered(static, keystone)
