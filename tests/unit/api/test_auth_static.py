"""Static tokens: the tokens file's format, its errors (never showing a token) and the
role checks of the API's dependencies."""

from __future__ import annotations

import hashlib
import logging
import tomllib
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from hotport.api import errors
from hotport.api.auth import (
    TOKEN_HEADER,
    Caller,
    OpenAccess,
    StaticTokens,
    TokenFileError,
    admin,
    authenticated,
    parse_tokens,
    token_digest,
)
from hotport.api.authfactory import make_authenticator
from hotport.service.config import AuthConfig, ConfigError

ADMIN_TOKEN = "adm-0123456789abcdef-SECRET"
READER_TOKEN = "rdr-0123456789abcdef-SECRET"
HASHED_TOKEN = "hashed-0123456789abcdef-SECRET"

FILE = f"""
[tokens."{ADMIN_TOKEN}"]
roles = ["Admin", "member"]
user = "ops"
project_id = "p-1"

[tokens."{READER_TOKEN}"]
roles = []
user = "prometheus"

[tokens."sha256:{hashlib.sha256(HASHED_TOKEN.encode()).hexdigest().upper()}"]
roles = ["service"]
user = "neutron"
"""


def parse(text: str) -> dict[str, Caller]:
    return parse_tokens(tomllib.loads(text), source="t.toml")


def test_parse_keeps_callers_by_digest_with_lowercased_roles() -> None:
    callers = parse(FILE)
    assert set(callers) == {token_digest(t) for t in (ADMIN_TOKEN, READER_TOKEN, HASHED_TOKEN)}
    assert callers[token_digest(ADMIN_TOKEN)] == Caller(
        "ops", "p-1", frozenset({"admin", "member"})
    )
    assert callers[token_digest(READER_TOKEN)] == Caller("prometheus", None, frozenset())
    assert callers[token_digest(HASHED_TOKEN)].roles == {"service"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no tokens"),
        ("[tokens]\n", "no tokens"),
        ("[token.x]\nroles=[]\n", "unknown top-level key(s) 'token'"),
        (f'[tokens."{ADMIN_TOKEN}"]\nuser = "ops"\n', "entry 1 (user 'ops'): roles is required"),
        (f'[tokens."{ADMIN_TOKEN}"]\nroles = "admin"\n', "roles must be a list"),
        (f'[tokens."{ADMIN_TOKEN}"]\nroles = [""]\n', "roles must be a list"),
        (f'[tokens."{ADMIN_TOKEN}"]\nroles = [1]\n', "roles must be a list"),
        (f'[tokens."{ADMIN_TOKEN}"]\nroles = []\nrole = "x"\n', "unknown key(s) 'role'"),
        (f'[tokens."{ADMIN_TOKEN}"]\nroles = []\nuser = 3\n', "user must be a non-empty string"),
        (f'[tokens."{ADMIN_TOKEN}"]\nroles = []\nproject_id = ""\n', "project_id must be"),
        (f'tokens."{ADMIN_TOKEN}" = "admin"\n', "must be a table"),
        ('[tokens."short-SECRET"]\nroles = []\n', "shorter than 16"),
        ('[tokens."has a space SECRET x"]\nroles = []\n', "space, control or non-ASCII"),
        ('[tokens."sha256:abcSECRET"]\nroles = []\n', "64 hex digits"),
        (
            f'[tokens."{ADMIN_TOKEN}"]\nroles = []\n'
            f'[tokens."sha256:{token_digest(ADMIN_TOKEN)}"]\nroles = []\nuser = "twin"\n',
            "entry 2 (user 'twin'): the same token is listed twice",
        ),
    ],
)
def test_bad_files_are_refused_without_showing_the_token(text: str, words: str) -> None:
    with pytest.raises(TokenFileError) as info:
        parse(text)
    message = str(info.value)
    assert words in message
    assert message.startswith("t.toml")
    assert "SECRET" not in message, message
    assert isinstance(info.value, ConfigError)  # the CLI reports it like any bad setting


def test_the_second_entry_is_named_by_position_when_it_has_no_user() -> None:
    text = f'[tokens."{ADMIN_TOKEN}"]\nroles = []\n[tokens."{READER_TOKEN}"]\nroles = 1\n'
    with pytest.raises(TokenFileError, match=r"token entry 2: roles must be a list"):
        parse(text)


async def test_static_tokens_authenticate_by_value() -> None:
    tokens = StaticTokens(parse(FILE), admin_roles=["ADMIN", "service"])
    assert tokens.mode == "static"
    assert tokens.admin_roles == {"admin", "service"}
    assert len(tokens) == 3
    assert (await tokens.authenticate(ADMIN_TOKEN)).user == "ops"
    assert (await tokens.authenticate(HASHED_TOKEN)).user == "neutron"
    assert tokens.lookup("nope-0123456789abcdef") is None
    assert tokens.lookup(None) is None
    for token, words in ((None, "needs a token"), ("", "needs a token"), ("x" * 20, "not valid")):
        with pytest.raises(errors.AuthError) as info:
            await tokens.authenticate(token)
        assert info.value.status == 401
        assert words in info.value.message
        assert "X-Auth-Token" in info.value.message
    assert "SECRET" not in repr(tokens)


def test_from_file_reads_and_warns_when_plain_tokens_are_readable_by_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(FILE)
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="hotport.api.auth"):
        assert len(StaticTokens.from_file(path)) == 3
    assert not caplog.records
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="hotport.api.auth"):
        StaticTokens.from_file(path)
    assert "readable by other users (mode 644)" in caplog.text
    assert "SECRET" not in caplog.text
    hashed_only = tmp_path / "hashed.toml"
    hashed_only.write_text(f'[tokens."sha256:{token_digest(HASHED_TOKEN)}"]\nroles = []\n')
    hashed_only.chmod(0o644)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hotport.api.auth"):
        StaticTokens.from_file(hashed_only)
    assert not caplog.records  # digests are not secrets


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"cannot read tokens file .*missing\.toml"):
        StaticTokens.from_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[tokens."{ADMIN_TOKEN}"\nroles = []\n')
    with pytest.raises(TokenFileError, match="is not valid TOML") as info:
        StaticTokens.from_file(bad)
    assert "SECRET" not in str(info.value)


def test_make_authenticator_per_mode(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(FILE)
    assert isinstance(make_authenticator(AuthConfig()), OpenAccess)
    static = make_authenticator(AuthConfig(mode="static", tokens_file=path, admin_roles=("ops",)))
    assert isinstance(static, StaticTokens)
    assert static.admin_roles == {"ops"}
    keystone: dict[str, Any] = {
        "auth_url": "http://keystone.test/v3",
        "username": "hotport",
        "password": "pw-SECRET",
    }
    alone = make_authenticator(AuthConfig(mode="keystone", keystone=keystone))
    assert type(alone).__name__ == "KeystoneTokens"
    assert alone.mode == "keystone"
    assert "SECRET" not in repr(alone)
    layered = make_authenticator(AuthConfig(mode="keystone", keystone=keystone, tokens_file=path))
    assert type(layered).__name__ == "Layered"
    assert layered.mode == "keystone"
    with pytest.raises(ConfigError, match="v2 is not supported"):
        make_authenticator(
            AuthConfig(mode="keystone", keystone={**keystone, "auth_url": "http://k/v2.0"})
        )


# -- the dependencies, on a tiny app with the real error handlers --------------------------
def tiny_app(authenticator: Any) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = authenticator
    for exc_type, handler in errors.HANDLERS.items():
        app.add_exception_handler(exc_type, handler)

    @app.get("/v1/read")
    async def read(caller: Annotated[Caller, Depends(authenticated)]) -> dict[str, Any]:
        return {"user": caller.user}

    @app.post("/v1/heal")
    async def heal(caller: Annotated[Caller, Depends(admin)]) -> dict[str, Any]:
        return {"user": caller.user}

    return app


async def test_dependencies_answer_401_403_200(caplog: pytest.LogCaptureFixture) -> None:
    app = tiny_app(StaticTokens(parse(FILE)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        with caplog.at_level(logging.DEBUG):
            r = await http.get("/v1/read")
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Keystone uri="hotport"'
            assert r.json()["error"]["type"] == "Unauthorized"
            assert "needs a token" in r.json()["error"]["message"]
            r = await http.get("/v1/read", headers={TOKEN_HEADER: "wrong-0123456789-SECRET"})
            assert r.status_code == 401
            assert "not valid" in r.json()["error"]["message"]
            assert "SECRET" not in r.text
            r = await http.get("/v1/read", headers={TOKEN_HEADER: READER_TOKEN})
            assert (r.status_code, r.json()) == (200, {"user": "prometheus"})
            r = await http.post("/v1/heal", headers={TOKEN_HEADER: READER_TOKEN})
            assert r.status_code == 403
            body = r.json()["error"]
            assert body["type"] == "Forbidden"
            assert (
                body["message"] == "this needs one of the roles admin, service; the token has none"
            )
            r = await http.post("/v1/heal", headers={TOKEN_HEADER: ADMIN_TOKEN})
            assert (r.status_code, r.json()) == (200, {"user": "ops"})
            r = await http.post("/v1/heal", headers={TOKEN_HEADER: HASHED_TOKEN})
            assert (r.status_code, r.json()) == (200, {"user": "neutron"})
    assert "refused GET /v1/read: no token (auth mode static)" in caplog.text
    assert "refused POST /v1/heal: user prometheus lacks an admin role" in caplog.text
    assert "SECRET" not in caplog.text
