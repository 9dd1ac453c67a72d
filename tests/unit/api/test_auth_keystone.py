"""KeystoneTokens' own logic, with a stand-in keystoneauth1 session: what each Keystone
answer becomes, the cache (expiry, bound, negative answers), shared validations."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from typing import Any

import pytest
from keystoneauth1 import exceptions as ks_exc

from hotport import logs
from hotport.api.auth import (
    NEGATIVE_CACHE_SECONDS,
    Caller,
    IdentityUnavailable,
    KeystoneTokens,
    Layered,
    StaticTokens,
    token_digest,
    validation_url,
)
from hotport.api.errors import AuthError
from hotport.service.config import ConfigError, KeystoneTokenConfig

T0 = 1_800_000_000.0  # the fake clock's start (unix seconds)
TOKEN = "gAAAA-user-token-SECRET"


def body(expires_in: float = 3600.0, roles: tuple[str, ...] = ("member",)) -> dict[str, Any]:
    expires = dt.datetime.fromtimestamp(T0 + expires_in, dt.UTC)
    return {
        "token": {
            "methods": ["password"],
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "issued_at": "2027-01-01T00:00:00.000000Z",
            "user": {"id": "u-9", "name": "alice", "domain": {"id": "default"}},
            "project": {"id": "p-9", "name": "demo", "domain": {"id": "default"}},
            "roles": [{"id": f"r-{r}", "name": r} for r in roles],
        }
    }


class Answer:
    def __init__(self, status: int, payload: Any = None) -> None:
        self.status_code = status
        self._payload = payload

    def json(self) -> Any:
        if self._payload is None:
            raise ValueError("no JSON")
        return self._payload


class FakeSession:
    """Stands in for keystoneauth1's Session: answers from a script, records calls."""

    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []
        self.threads: set[int] = set()
        self.gate: threading.Event | None = None
        self.closed = False
        self.session = self  # KeystoneTokens closes `session.session`

    def get(self, url: str, **kwargs: Any) -> Answer:
        self.threads.add(threading.get_ident())
        self.calls.append({"url": url, **kwargs})
        if self.gate is not None:
            assert self.gate.wait(5)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def config(**over: Any) -> KeystoneTokenConfig:
    return KeystoneTokenConfig(
        auth_url="http://keystone.test:5000/v3/",
        username="hotport",
        password="service-pw-SECRET",
        **over,
    )


def make(
    session: FakeSession, clock: Clock | None = None, **over: Any
) -> tuple[KeystoneTokens, Clock]:
    clock = clock or Clock()
    max_entries = over.pop("max_entries", 10_000)
    tokens = KeystoneTokens(config(**over), session=session, clock=clock, max_entries=max_entries)
    return tokens, clock


def test_validation_url() -> None:
    assert validation_url("http://k:5000/v3") == "http://k:5000/v3/auth/tokens"
    assert validation_url("http://k:5000/v3/") == "http://k:5000/v3/auth/tokens"
    assert validation_url("https://k/identity") == "https://k/identity/v3/auth/tokens"
    assert validation_url("https://k/") == "https://k/v3/auth/tokens"
    with pytest.raises(ConfigError):
        validation_url("http://k:5000/v2.0")


async def test_a_valid_token_is_asked_once_then_cached_until_cache_seconds() -> None:
    session = FakeSession(Answer(200, body(expires_in=3600, roles=("Member", "admin"))))
    tokens, clock = make(session, cache_seconds=300)
    token = logs.request_id.set("req-00000000-0000-4000-8000-000000000001")
    try:
        caller = await tokens.authenticate(TOKEN)
    finally:
        logs.request_id.reset(token)
    assert (caller.user, caller.project_id, caller.roles) == ("u-9", "p-9", {"member", "admin"})
    [call] = session.calls
    assert call["url"] == "http://keystone.test:5000/v3/auth/tokens"
    assert call["headers"] == {"X-Subject-Token": TOKEN}
    assert call["authenticated"] is True
    assert call["log"] is False
    assert call["raise_exc"] is False
    assert call["global_request_id"] == "req-00000000-0000-4000-8000-000000000001"
    assert threading.get_ident() not in session.threads  # never on the loop's thread
    clock.now += 299
    assert await tokens.authenticate(TOKEN) == caller
    assert tokens.validations == 1
    clock.now += 2  # cache_seconds passed
    await tokens.authenticate(TOKEN)
    assert tokens.validations == 2


async def test_the_cache_ends_when_the_token_expires() -> None:
    session = FakeSession(Answer(200, body(expires_in=30)), Answer(404))
    tokens, clock = make(session, cache_seconds=300)
    await tokens.authenticate(TOKEN)
    clock.now += 29
    await tokens.authenticate(TOKEN)
    assert tokens.validations == 1
    clock.now += 2  # past expires_at: asked again, and Keystone says no such token
    with pytest.raises(AuthError) as info:
        await tokens.authenticate(TOKEN)
    assert info.value.status == 401
    assert tokens.validations == 2


async def test_an_already_expired_token_is_refused() -> None:
    tokens, _ = make(FakeSession(Answer(200, body(expires_in=-1))))
    with pytest.raises(AuthError) as info:
        await tokens.authenticate(TOKEN)
    assert info.value.status == 401


async def test_cache_seconds_zero_asks_every_time() -> None:
    tokens, _ = make(FakeSession(Answer(200, body())), cache_seconds=0)
    for _ in range(3):
        await tokens.authenticate(TOKEN)
    assert tokens.validations == 3


async def test_an_invalid_token_is_401_and_remembered_briefly() -> None:
    tokens, clock = make(FakeSession(Answer(404)), cache_seconds=300)
    for _ in range(3):
        with pytest.raises(AuthError) as info:
            await tokens.authenticate(TOKEN)
        assert info.value.status == 401
        assert "not valid" in info.value.message
    assert tokens.validations == 1
    clock.now += NEGATIVE_CACHE_SECONDS + 0.1
    with pytest.raises(AuthError):
        await tokens.authenticate(TOKEN)
    assert tokens.validations == 2


async def test_no_token_never_reaches_keystone() -> None:
    tokens, _ = make(FakeSession(Answer(200, body())))
    for missing in (None, ""):
        with pytest.raises(AuthError) as info:
            await tokens.authenticate(missing)
        assert info.value.status == 401
        assert "auth mode keystone" in info.value.message
    assert tokens.validations == 0


@pytest.mark.parametrize(
    ("answer", "words", "level"),
    [
        (Answer(503), "answered HTTP 503", logging.WARNING),
        (Answer(500), "answered HTTP 500", logging.WARNING),
        (Answer(403), "answered HTTP 403", logging.ERROR),
        (Answer(401), "answered HTTP 401", logging.ERROR),
        (Answer(200, {"token": {"user": {}}}), "malformed", logging.WARNING),
        (Answer(200, None), "malformed", logging.WARNING),
        (ks_exc.ConnectFailure("down"), "unavailable (ConnectFailure)", logging.WARNING),
        (ks_exc.ConnectTimeout("slow"), "unavailable (ConnectTimeout)", logging.WARNING),
        (ks_exc.Unauthorized("no"), "refused hotport's own credentials", logging.ERROR),
    ],
)
async def test_keystone_failures_are_503_never_cached_never_secret(
    answer: Answer | Exception, words: str, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    tokens, _ = make(FakeSession(answer))
    for _ in range(2):
        with caplog.at_level(logging.DEBUG), pytest.raises(IdentityUnavailable) as info:
            await tokens.authenticate(TOKEN)
        assert info.value.status == 503
        assert info.value.category == "transient"
        assert words in info.value.message
        assert isinstance(info.value.__cause__, IdentityUnavailable | ks_exc.ClientException)
    assert tokens.validations == 2  # failures are not cached
    assert any(r.levelno == level for r in caplog.records), caplog.text
    assert "SECRET" not in caplog.text
    assert "SECRET" not in str(info.value)


async def test_concurrent_requests_with_one_token_share_one_validation() -> None:
    session = FakeSession(Answer(200, body()))
    session.gate = threading.Event()
    tokens, _ = make(session)
    waiters = [asyncio.create_task(tokens.authenticate(TOKEN)) for _ in range(10)]
    other = asyncio.create_task(tokens.authenticate("another-token-SECRET"))
    await asyncio.sleep(0.05)
    waiters[0].cancel()  # one caller gives up: the others still get their answer
    session.gate.set()
    results = await asyncio.gather(*waiters[1:], other)
    assert {r.user for r in results} == {"u-9"}
    assert waiters[0].cancelled()
    assert tokens.validations == 2  # one per distinct token
    assert [c["headers"]["X-Subject-Token"] for c in session.calls].count(TOKEN) == 1
    await tokens.authenticate(TOKEN)
    assert tokens.validations == 2


async def test_concurrent_failures_reach_every_waiter() -> None:
    session = FakeSession(ks_exc.ConnectFailure("down"))
    session.gate = threading.Event()
    tokens, _ = make(session)
    waiters = [asyncio.create_task(tokens.authenticate(TOKEN)) for _ in range(3)]
    await asyncio.sleep(0.05)
    session.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, IdentityUnavailable) for r in results)
    assert len({id(r) for r in results}) == 3  # each waiter raises its own error
    assert tokens.validations == 1


async def test_the_cache_is_bounded_least_recently_used_first() -> None:
    tokens, _ = make(FakeSession(Answer(200, body())), max_entries=2)
    await tokens.authenticate("token-a-SECRET")
    await tokens.authenticate("token-b-SECRET")
    await tokens.authenticate("token-a-SECRET")  # a is now the most recent
    await tokens.authenticate("token-c-SECRET")  # evicts b
    assert tokens.validations == 3
    await tokens.authenticate("token-a-SECRET")
    assert tokens.validations == 3
    await tokens.authenticate("token-b-SECRET")
    assert tokens.validations == 4
    assert token_digest("token-a-SECRET") in tokens._cache  # kept by digest, never by value
    assert "token-a-SECRET" not in tokens._cache


async def test_aclose_closes_the_session() -> None:
    session = FakeSession(Answer(200, body()))
    tokens, _ = make(session)
    await tokens.aclose()
    assert session.closed


async def test_layered_asks_the_file_first() -> None:
    session = FakeSession(Answer(404))
    keystone, _ = make(session)
    scraper = Caller("prometheus", None, frozenset())
    static = StaticTokens({token_digest("scraper-token-0123456789"): scraper}, admin_roles=["x"])
    layered = Layered(static, keystone)
    assert layered.mode == "keystone"
    assert layered.admin_roles == keystone.admin_roles
    assert (await layered.authenticate("scraper-token-0123456789")).user == "prometheus"
    assert keystone.validations == 0
    with pytest.raises(AuthError):
        await layered.authenticate(TOKEN)
    assert keystone.validations == 1
    with pytest.raises(AuthError) as info:
        await layered.authenticate(None)
    assert "auth mode keystone" in info.value.message
    await layered.aclose()
    assert session.closed
