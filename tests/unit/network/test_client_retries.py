"""Retries, backoff, per-attempt timeouts and the per-call deadline (no wall time)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from neutron_unit_fakes import FakeTime, MakeClient, Reply, Script, neutron_error, sample

from hotport.network import (
    Backoff,
    BadRequest,
    Conflict,
    DeadlineExceeded,
    NotFound,
    PermanentError,
    RevisionMismatch,
    TransientError,
    Unauthorized,
    Unavailable,
)

OK_PORT = Reply.of("show port")
PORT_ID = sample("show port")["body"]["port"]["id"]


def show(c: Any) -> Any:
    return c.show_port(PORT_ID)


def bind(c: Any) -> Any:
    return c.bind_port(PORT_ID, device_id="d", host="h", revision=1)


def unbind(c: Any) -> Any:
    return c.unbind_port(PORT_ID)


def create(c: Any) -> Any:
    return c.create_port("net", device_id="d", host="h")


def delete(c: Any) -> Any:
    return c.delete_port(PORT_ID)


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


TRANSIENT = [
    pytest.param(lambda: Reply(502, content=b"<html>bad gateway</html>"), id="502"),
    pytest.param(lambda: Reply(503, content=b""), id="503"),
    pytest.param(lambda: Reply(504, content=b"gateway timeout"), id="504"),
    pytest.param(connect_error, id="connect-error"),
    pytest.param(lambda: httpx.ConnectTimeout("connect timed out"), id="connect-timeout"),
    pytest.param(lambda: httpx.PoolTimeout("pool timed out"), id="pool-timeout"),
]


@pytest.mark.parametrize("failure", TRANSIENT)
async def test_get_retries_transient_failures(
    make_client: MakeClient, fake_time: FakeTime, failure: Any
) -> None:
    script = Script(failure(), failure(), OK_PORT)
    client = make_client(script)

    port = await client.show_port(PORT_ID)

    assert port.id == PORT_ID
    assert len(script.requests) == 3
    assert fake_time.sleeps == [0.1, 0.2]
    assert client.counters == {"show_port": 1}
    assert client.retry_counters == {"show_port": 2}


@pytest.mark.parametrize("failure", TRANSIENT)
async def test_idempotent_put_retries_transient_failures(
    make_client: MakeClient, fake_time: FakeTime, failure: Any
) -> None:
    script = Script(failure(), Reply.of("bind port If-Match ok"))
    client = make_client(script)
    await bind(client)
    assert len(script.requests) == 2
    assert fake_time.sleeps == [0.1]
    # the retried PUT is the same request
    assert script.requests[0].content == script.requests[1].content
    assert script.requests[1].headers["if-match"] == "revision_number=1"


async def test_retries_are_bounded(make_client: MakeClient, fake_time: FakeTime) -> None:
    script = Script(Reply(503, content=b""))
    client = make_client(script, retries=3)

    with pytest.raises(Unavailable) as info:
        await client.show_port(PORT_ID)

    assert len(script.requests) == 4  # 1 + 3 retries
    assert fake_time.sleeps == [0.1, 0.2, 0.4]
    err = info.value
    assert err.status == 503
    assert err.attempts == 4
    assert err.call == "show_port"
    assert client.counters == {"show_port": 1}
    assert client.retry_counters == {"show_port": 3}


async def test_zero_retries(make_client: MakeClient, fake_time: FakeTime) -> None:
    script = Script(Reply(503, content=b""))
    with pytest.raises(Unavailable):
        await make_client(script, retries=0).show_port(PORT_ID)
    assert len(script.requests) == 1
    assert fake_time.sleeps == []


async def test_backoff_sequence_is_capped_and_jittered(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    draws = iter([0.0, 1.0, 0.5, 0.0, 0.0])
    backoff = Backoff(initial=1.0, multiplier=3.0, maximum=5.0, jitter=0.5, rng=lambda: next(draws))
    script = Script(Reply(503, content=b""))
    with pytest.raises(Unavailable):
        await make_client(script, retries=5, backoff=backoff, read_deadline=1000).show_port(PORT_ID)
    # bases 1, 3, 5(cap of 9), 5, 5; each reduced by jitter * base * draw
    assert fake_time.sleeps == [1.0, 1.5, 3.75, 5.0, 5.0]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.of("create port bad mac"), BadRequest),
        (Reply.of("show port 404"), NotFound),
        (neutron_error(403, "PolicyNotAuthorized"), PermanentError),
        (neutron_error(409, "PortInUse"), Conflict),
        (Reply.of("bind port If-Match stale"), RevisionMismatch),
        (neutron_error(500, "NeutronException", "Request Failed: internal server error"),
         Unavailable),
        (Reply(501, content=b""), Unavailable),
        (Reply(429, content=b""), Unavailable),
        (Reply(405, content=b""), PermanentError),
    ],
)  # fmt: skip
@pytest.mark.parametrize("call", [show, bind, create, delete])
async def test_no_retry_on_4xx_and_500(
    make_client: MakeClient, fake_time: FakeTime, reply: Reply, error: type, call: Any
) -> None:
    script = Script(reply, OK_PORT)
    client = make_client(script)
    if call is delete and error is NotFound:
        assert await call(client) is False  # missing_ok
    else:
        with pytest.raises(error):
            await call(client)
    assert len(script.requests) == 1
    assert fake_time.sleeps == []
    assert client.retry_counters == {}


@pytest.mark.parametrize("status", [502, 504])
async def test_post_is_not_retried_on_502_504(
    make_client: MakeClient, fake_time: FakeTime, status: int
) -> None:
    script = Script(Reply(status, content=b""), Reply.of("create bound port"))
    with pytest.raises(Unavailable) as info:
        await create(make_client(script))
    assert len(script.requests) == 1
    assert info.value.maybe_applied is True
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda: Reply(503, content=b""), id="503"),
        pytest.param(connect_error, id="connect-error"),
        pytest.param(lambda: httpx.ConnectTimeout("t"), id="connect-timeout"),
    ],
)
async def test_post_is_retried_when_the_request_was_not_processed(
    make_client: MakeClient, failure: Any
) -> None:
    script = Script(failure(), Reply.of("create bound port"))
    port = await create(make_client(script))
    assert port.host == "compute-1"
    assert len(script.requests) == 2


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("read timed out"), TimeoutError()])
async def test_read_timeout_on_get_is_retried(
    make_client: MakeClient, fake_time: FakeTime, exc: Exception
) -> None:
    script = Script(exc, OK_PORT)
    client = make_client(script)
    assert (await client.show_port(PORT_ID)).id == PORT_ID
    assert len(script.requests) == 2
    assert fake_time.sleeps == [0.1]


@pytest.mark.parametrize("call", [bind, unbind, create, delete])
@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("read timed out"), httpx.WriteTimeout("write timed out")]
)
async def test_read_timeout_on_a_write_is_not_retried(
    make_client: MakeClient, fake_time: FakeTime, call: Any, exc: Exception
) -> None:
    script = Script(exc, OK_PORT)
    client = make_client(script)

    with pytest.raises(DeadlineExceeded) as info:
        await call(client)

    err = info.value
    assert err.maybe_applied is True
    assert "outcome of the write is unknown" in str(err)
    assert err.__cause__ is exc
    assert err.attempts == 1
    assert len(script.requests) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "exc",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
async def test_dropped_connection_retried_for_get_only(
    make_client: MakeClient, exc: Exception
) -> None:
    script = Script(exc, OK_PORT)
    assert (await make_client(script).show_port(PORT_ID)).id == PORT_ID
    assert len(script.requests) == 2

    script = Script(exc, OK_PORT)
    with pytest.raises(Unavailable) as info:
        await bind(make_client(script))
    assert info.value.maybe_applied is True
    assert info.value.__cause__ is exc
    assert len(script.requests) == 1


async def test_a_put_retried_after_504_carries_maybe_applied(make_client: MakeClient) -> None:
    # the first PUT may have been applied behind the gateway: the 412 that follows may be
    # caused by our own first attempt, and the error says so
    script = Script(Reply(504, content=b""), Reply.of("bind port If-Match stale"))
    with pytest.raises(RevisionMismatch) as info:
        await bind(make_client(script))
    assert info.value.maybe_applied is True
    assert info.value.attempts == 2


async def test_a_put_retried_after_503_or_connect_error_is_not_maybe_applied(
    make_client: MakeClient,
) -> None:
    script = Script(Reply(503, content=b""), connect_error(), Reply.of("bind port If-Match stale"))
    with pytest.raises(RevisionMismatch) as info:
        await bind(make_client(script))
    assert info.value.maybe_applied is False
    assert info.value.attempts == 3


async def test_connect_errors_chain_their_cause(make_client: MakeClient) -> None:
    exc = connect_error()
    script = Script(exc)
    with pytest.raises(Unavailable) as info:
        await make_client(script, retries=1).show_port(PORT_ID)
    assert info.value.__cause__ is exc
    assert info.value.status is None
    assert info.value.attempts == 2
    assert info.value.maybe_applied is False


async def test_overall_deadline_bounds_retries(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    script = Script(Reply(503, content=b""))
    client = make_client(script, retries=10)

    with pytest.raises(DeadlineExceeded) as info:
        await client.show_port(PORT_ID, deadline=1.0)

    # 0.1 + 0.2 + 0.4 = 0.7 slept; the next backoff (0.8) would pass the deadline
    assert fake_time.sleeps == [0.1, 0.2, 0.4]
    assert len(script.requests) == 4
    err = info.value
    assert isinstance(err.__cause__, Unavailable)
    assert err.__cause__.status == 503
    assert err.status == 503
    assert err.attempts == 4
    assert "deadline" in str(err)


async def test_default_deadlines_apply(make_client: MakeClient, fake_time: FakeTime) -> None:
    script = Script(Reply(503, content=b""))
    client = make_client(script, retries=100, read_deadline=2.0)
    with pytest.raises(DeadlineExceeded):
        await client.show_port(PORT_ID)
    assert sum(fake_time.sleeps) <= 2.0
    assert fake_time.sleeps == [0.1, 0.2, 0.4, 0.8]


async def test_each_attempt_gets_what_is_left_of_the_deadline(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    def slow_timeout(request: httpx.Request) -> Any:
        fake_time.now += 0.6  # the attempt used 0.6 s, then timed out
        raise httpx.ReadTimeout("read timed out", request=request)

    script = Script(slow_timeout)
    client = make_client(script, retries=10)

    with pytest.raises(DeadlineExceeded):
        await client.show_port(PORT_ID, deadline=1.0, attempt_timeout=5.0)

    budgets = [r.extensions["timeout"]["read"] for r in script.requests]
    assert budgets == [pytest.approx(1.0), pytest.approx(0.3)]
    assert fake_time.sleeps == [0.1]


async def test_attempt_timeouts_default_per_method_and_override(
    make_client: MakeClient,
) -> None:
    script = Script(OK_PORT)
    client = make_client(script, read_timeout=4.0, write_timeout=7.0)
    await client.show_port(PORT_ID)
    await client.unbind_port(PORT_ID)
    await client.show_port(PORT_ID, attempt_timeout=1.5)
    timeouts = [r.extensions["timeout"] for r in script.requests]
    assert timeouts[0] == {"connect": 4.0, "read": 4.0, "write": 4.0, "pool": 4.0}
    assert timeouts[1]["read"] == 7.0
    assert timeouts[2]["read"] == 1.5


async def test_a_hung_answer_is_cut_by_the_attempt_timeout() -> None:
    """A real (50 ms) timeout: a transport that never answers."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    from hotport.network import NeutronClient, NoAuth

    async with NeutronClient(
        NoAuth("http://n.test"),
        transport=httpx.MockTransport(hang),
        retries=0,
        clock=time.monotonic,
    ) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            await client.show_port("p", attempt_timeout=0.05)
        assert time.monotonic() - started < 1.0
        assert info.value.maybe_applied is False
        assert isinstance(info.value.__cause__, TimeoutError)

        with pytest.raises(DeadlineExceeded) as info:
            await client.unbind_port("p", attempt_timeout=0.05)
        assert info.value.maybe_applied is True


async def test_401_invalidates_and_retries_once(make_client: MakeClient) -> None:
    auth = CountingAuth()
    script = Script(neutron_error(401, "HTTPUnauthorized"), OK_PORT)
    client = make_client(script, auth=auth)

    await client.show_port(PORT_ID)

    assert auth.invalidations == 1
    assert [r.headers["x-auth-token"] for r in script.requests] == ["token-1", "token-2"]
    assert client.counters == {"show_port": 1}
    assert client.retry_counters == {"show_port": 1}


async def test_401_does_not_use_the_transient_budget(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    auth = CountingAuth()
    script = Script(Reply(503, content=b""), neutron_error(401, "X"), OK_PORT)
    await make_client(script, auth=auth, retries=1).show_port(PORT_ID)
    assert len(script.requests) == 3
    assert fake_time.sleeps == [0.1]


async def test_second_401_raises_unauthorized(make_client: MakeClient) -> None:
    auth = CountingAuth()
    script = Script(neutron_error(401, "HTTPUnauthorized", "Authentication required"))
    with pytest.raises(Unauthorized) as info:
        await make_client(script, auth=auth).show_port(PORT_ID)
    assert auth.invalidations == 1
    assert len(script.requests) == 2
    assert "token-" not in str(info.value)
    assert "token-" not in repr(info.value)


async def test_auth_provider_errors_propagate_without_a_request(
    make_client: MakeClient,
) -> None:
    class BrokenAuth(CountingAuth):
        async def headers(self) -> dict[str, str]:
            raise Unauthorized("keystone refused the credentials", call="keystone")

    script = Script(OK_PORT)
    client = make_client(script, auth=BrokenAuth())
    with pytest.raises(Unauthorized, match="keystone refused"):
        await client.show_port(PORT_ID)
    assert script.requests == []
    assert client.counters == {}


async def test_a_slow_auth_provider_is_bounded_by_the_deadline(make_client: MakeClient) -> None:
    class HungAuth(CountingAuth):
        async def headers(self) -> dict[str, str]:
            await asyncio.Event().wait()
            return {}

    script = Script(OK_PORT)
    client = make_client(script, auth=HungAuth(), clock=time.monotonic)
    with pytest.raises(DeadlineExceeded, match="authenticating"):
        await client.show_port(PORT_ID, deadline=0.05)
    assert script.requests == []


async def test_cancellation_is_not_translated(make_client: MakeClient) -> None:
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = make_client(Script(hang), clock=time.monotonic)
    task = asyncio.create_task(client.show_port(PORT_ID))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_unsupported_url_is_permanent(make_client: MakeClient) -> None:
    from hotport.network import NeutronClient

    class FtpAuth(CountingAuth):
        async def endpoint(self) -> str:
            return "ftp://n.test"

    async with NeutronClient(FtpAuth()) as client:
        with pytest.raises(PermanentError) as info:
            await client.show_port(PORT_ID)
    assert isinstance(info.value.__cause__, httpx.UnsupportedProtocol)
    assert not isinstance(info.value, TransientError)


class CountingAuth:
    """An AuthProvider handing out token-1, token-2, ... (a new one after invalidate)."""

    def __init__(self) -> None:
        self.invalidations = 0

    async def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": f"token-{self.invalidations + 1}"}

    async def endpoint(self) -> str:
        return "http://neutron.test:9696"

    async def invalidate(self) -> None:
        self.invalidations += 1
