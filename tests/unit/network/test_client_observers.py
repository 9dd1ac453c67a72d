"""Counters by call name, retries counted apart, one observer record per HTTP attempt."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from neutron_unit_fakes import FakeTime, MakeClient, Reply, Script, sample

from hotport.network import RequestRecord

PORT_ID = sample("show port")["body"]["port"]["id"]
NET_ID = sample("show port")["body"]["port"]["network_id"]


async def test_counters_by_call_name(make_client: MakeClient) -> None:
    def answer(request: httpx.Request) -> Reply:
        if request.url.path.startswith("/v2.0/ports/"):
            if request.method == "DELETE":
                return Reply(204)
            return Reply.of("show port")
        key = request.url.path.rsplit("/", 1)[1]
        return Reply(200, {key: []})

    client = make_client(Script(answer))
    await client.show_port(PORT_ID)
    await client.show_port(PORT_ID)
    await client.list_ports(host="compute-1")
    await client.list_networks([NET_ID])
    await client.list_subnets(network_ids=[NET_ID])
    await client.list_floating_ips([PORT_ID])
    await client.unbind_port(PORT_ID)
    await client.bind_port(PORT_ID, device_id="d", host="h")
    await client.delete_port(PORT_ID)
    await client.list_networks([])  # no request, not counted

    assert client.counters == {
        "show_port": 2,
        "list_ports": 1,
        "list_networks": 1,
        "list_subnets": 1,
        "list_floating_ips": 1,
        "unbind_port": 1,
        "bind_port": 1,
        "delete_port": 1,
    }
    assert client.retry_counters == {}
    assert client.total_requests == 9

    client.reset_counters()
    assert client.counters == {}
    assert client.total_requests == 0


async def test_retries_are_counted_apart(make_client: MakeClient) -> None:
    script = Script(Reply(503, content=b""), Reply(502, content=b""), Reply.of("show port"))
    client = make_client(script)
    await client.show_port(PORT_ID)
    assert client.counters == {"show_port": 1}
    assert client.retry_counters == {"show_port": 2}
    assert client.total_requests == 3


async def test_observer_sees_every_attempt(make_client: MakeClient, fake_time: FakeTime) -> None:
    outcomes: Iterator[Reply | Exception] = iter(
        [
            httpx.ConnectError("refused"),
            Reply(503, content=b""),
            Reply.of("show port"),
        ]
    )

    def answer(request: httpx.Request) -> Reply:
        fake_time.now += 0.25  # each attempt takes 250 ms
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    records: list[RequestRecord] = []
    client = make_client(Script(answer))
    client.add_observer(records.append)

    await client.show_port(PORT_ID)

    assert records == [
        RequestRecord(
            call="show_port",
            method="GET",
            path="/v2.0/ports/{port_id}",
            status=None,
            error="Unavailable",
            attempt=1,
            duration=0.25,
            will_retry=True,
            transport_error="ConnectError",
        ),
        RequestRecord(
            call="show_port",
            method="GET",
            path="/v2.0/ports/{port_id}",
            status=503,
            error="Unavailable",
            attempt=2,
            duration=0.25,
            will_retry=True,
        ),
        RequestRecord(
            call="show_port",
            method="GET",
            path="/v2.0/ports/{port_id}",
            status=200,
            error=None,
            attempt=3,
            duration=0.25,
        ),
    ]
    assert records[-1].ok
    assert not records[0].ok


async def test_observer_records_the_final_failure(make_client: MakeClient) -> None:
    records: list[RequestRecord] = []
    client = make_client(Script(Reply.of("bind port If-Match stale")))
    client.add_observer(records.append)
    with pytest.raises(Exception, match="Constrained"):
        await client.bind_port(PORT_ID, device_id="d", host="h", revision=6)
    [record] = records
    assert (record.call, record.method, record.status, record.error, record.will_retry) == (
        "bind_port",
        "PUT",
        412,
        "RevisionMismatch",
        False,
    )


async def test_path_is_a_template_without_ids_or_query(make_client: MakeClient) -> None:
    records: list[RequestRecord] = []
    client = make_client(Script(Reply(200, {"ports": []})))
    client.add_observer(records.append)
    await client.list_ports(ids=["secret-looking-id"], host="compute-1")
    assert records[0].path == "/v2.0/ports"


async def test_a_failing_observer_does_not_break_requests(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[RequestRecord] = []

    def broken(record: RequestRecord) -> None:
        raise RuntimeError("observer bug")

    client = make_client(Script(Reply.of("show port")))
    client.add_observer(broken)
    client.add_observer(seen.append)
    with caplog.at_level(logging.ERROR, logger="hotport.network"):
        await client.show_port(PORT_ID)
    assert len(seen) == 1
    assert "observer" in caplog.text

    client.remove_observer(broken)
    client.remove_observer(seen.append)
    await client.show_port(PORT_ID)
    assert len(seen) == 1


async def test_debug_log_has_call_and_duration_but_no_headers(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    class TokenAuth:
        async def headers(self) -> dict[str, str]:
            return {"X-Auth-Token": "gAAAA-very-secret-token"}

        async def endpoint(self) -> str:
            return "http://neutron.test:9696"

        async def invalidate(self) -> None:
            return None

    script = Script(Reply(503, content=b""), Reply.of("show port"))
    client = make_client(script, auth=TokenAuth())
    with caplog.at_level(logging.DEBUG):
        await client.show_port(PORT_ID)

    ours = [r.getMessage() for r in caplog.records if r.name == "hotport.network"]
    assert len(ours) == 2
    assert "show_port GET /v2.0/ports/{port_id} -> 503" in ours[0]
    assert "will retry" in ours[0]
    assert "-> 200 in 0.000s (attempt 2)" in ours[1]
    assert "very-secret-token" not in caplog.text
    assert script.requests[0].headers["x-auth-token"] == "gAAAA-very-secret-token"
