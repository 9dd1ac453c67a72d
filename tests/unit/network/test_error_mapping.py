"""Every error answer maps to the right class of the tree, with its context filled in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from neutron_unit_fakes import MakeClient, Reply, Script, error_samples, neutron_error, sample

from hotport.network import errors as E

EXPECTED_BY_LABEL: dict[str, type[E.NetworkServiceError]] = {
    "bind port If-Match stale": E.RevisionMismatch,
    "create port mac in use": E.MacAddressInUse,
    "create port ip in use": E.IpAddressInUse,
    "create port bad network": E.NetworkNotFound,
    "create port no body key": E.BadRequest,
    "create port unknown attr": E.BadRequest,
    "create port bad mac": E.BadRequest,
    "show port 404": E.PortNotFound,
    "show network 404": E.NetworkNotFound,
    "update port 404": E.PortNotFound,
    "delete port 404": E.PortNotFound,
    "list ports unknown filter": E.BadRequest,
    "list ports bad limit": E.BadRequest,
    "list ports marker 404": E.PortNotFound,
    "delete port again": E.PortNotFound,
    "bad json": E.BadRequest,
}


def test_every_recorded_error_sample_is_mapped() -> None:
    assert {s["label"] for s in error_samples()} == set(EXPECTED_BY_LABEL)


@pytest.mark.parametrize("s", error_samples(), ids=lambda s: s["label"])
def test_recorded_error_bodies(s: dict[str, Any]) -> None:
    body = json.dumps(s["body"]).encode()
    err = E.error_from_response(s["status"], body, content_type="application/json")

    assert type(err) is EXPECTED_BY_LABEL[s["label"]]
    assert err.status == s["status"]
    assert err.neutron_type == s["body"]["NeutronError"]["type"]
    assert err.message == s["body"]["NeutronError"]["message"]
    assert err.detail is None  # "" in the body
    assert err.maybe_applied is False


def test_the_tree() -> None:
    assert issubclass(E.PermanentError, E.NetworkServiceError)
    assert issubclass(E.ConflictError, E.NetworkServiceError)
    assert issubclass(E.TransientError, E.NetworkServiceError)
    permanent = (E.BadRequest, E.Unauthorized, E.Forbidden, E.NotFound, E.MalformedResponse)
    assert all(issubclass(c, E.PermanentError) for c in permanent)
    not_found = (E.PortNotFound, E.NetworkNotFound, E.SubnetNotFound, E.FloatingIPNotFound)
    assert all(issubclass(c, E.NotFound) for c in not_found)
    assert all(
        issubclass(c, E.Conflict) for c in (E.MacAddressInUse, E.IpAddressInUse, E.PortInUse)
    )
    assert issubclass(E.Conflict, E.ConflictError)
    assert issubclass(E.RevisionMismatch, E.ConflictError)
    assert not issubclass(E.RevisionMismatch, E.Conflict)
    assert issubclass(E.Unavailable, E.TransientError)
    assert issubclass(E.DeadlineExceeded, E.TransientError)
    assert not issubclass(E.ConflictError, E.PermanentError)


@pytest.mark.parametrize(
    ("status", "type_", "expected"),
    [
        (400, "InvalidInput", E.BadRequest),
        (401, None, E.Unauthorized),
        (403, "PolicyNotAuthorized", E.Forbidden),
        (404, "SubnetNotFound", E.SubnetNotFound),
        (404, "FloatingIPNotFound", E.FloatingIPNotFound),
        (404, "SomethingElseNotFound", E.NotFound),
        (409, "PortInUse", E.PortInUse),
        (409, "IpAddressInUse", E.IpAddressInUse),
        (409, "IpAddressAlreadyAllocated", E.IpAddressInUse),
        (409, "MacAddressInUse", E.MacAddressInUse),
        (409, "SomeOtherConflict", E.Conflict),
        (412, "RevisionNumberConstraintFailed", E.RevisionMismatch),
        (412, None, E.RevisionMismatch),
        (405, None, E.PermanentError),
        (414, None, E.PermanentError),
        (429, None, E.Unavailable),
        (500, "NeutronException", E.Unavailable),
        (501, None, E.Unavailable),
        (502, None, E.Unavailable),
        (503, None, E.Unavailable),
        (504, None, E.Unavailable),
        # the type refines the status class, never changes its branch
        (400, "PortNotFound", E.BadRequest),
        (404, "RevisionNumberConstraintFailed", E.NotFound),
    ],
)
def test_status_and_type_mapping(status: int, type_: str | None, expected: type) -> None:
    assert E.class_for(status, type_) is expected
    body = {"NeutronError": {"type": type_, "message": "m", "detail": "d"}} if type_ else {}
    err = E.error_from_response(status, json.dumps(body).encode(), reason="Reason")
    assert type(err) is expected
    assert err.status == status


@pytest.mark.parametrize(
    ("body", "type_", "message"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1>\n nginx</body></html>", None,
         "<html><body><h1>502 Bad Gateway</h1> nginx</body></html>"),
        (b"", None, "Bad Gateway"),
        (b'{"NeutronError": "old style message"}', None, "old style message"),
        (b'{"error": {"code": 502, "title": "Bad Gateway", "message": "upstream down"}}',
         "Bad Gateway", "upstream down"),
        (b'{"message": "plain", "type": "T"}', "T", "plain"),
        (b"[1, 2]", None, "[1, 2]"),
        (b"\xff\xfe garbage", None, "\ufffd\ufffd garbage"),
        (b'{"NeutronError": {"message": null}}', None, "Bad Gateway"),
    ],
)  # fmt: skip
def test_unknown_or_malformed_bodies(body: bytes, type_: str | None, message: str) -> None:
    err = E.error_from_response(502, body, content_type="text/html", reason="Bad Gateway")
    assert type(err) is E.Unavailable
    assert err.neutron_type == type_
    assert err.message == message


def test_long_non_json_bodies_are_cut() -> None:
    err = E.error_from_response(502, b"x" * 10_000)
    assert len(err.message) <= 300
    assert err.message.endswith("...")


def test_str_names_call_method_path_status_and_type() -> None:
    err = E.PortNotFound(
        "Port p could not be found.",
        status=404,
        neutron_type="PortNotFound",
        call="show_port",
        method="GET",
        path="/v2.0/ports/p",
    )
    assert str(err) == "show_port GET /v2.0/ports/p: 404 PortNotFound: Port p could not be found."
    assert "PortNotFound(status=404" in repr(err)
    err.attempts, err.maybe_applied = 3, True
    assert str(err).endswith("(after 3 attempts) [the write may have been applied]")
    assert E.Unavailable("x").status is None
    assert E.Conflict("x").status == 409


async def test_client_fills_context_and_does_not_retry(make_client: MakeClient) -> None:
    s = sample("bind port If-Match stale")
    port_id = s["request"]["path"].rsplit("/", 1)[1]
    script = Script(Reply.of("bind port If-Match stale"))
    client = make_client(script)

    with pytest.raises(E.RevisionMismatch) as info:
        await client.bind_port(port_id, device_id="d", host="compute-1", revision=6)

    err = info.value
    assert err.status == 412
    assert err.neutron_type == "RevisionNumberConstraintFailed"
    assert err.message == s["body"]["NeutronError"]["message"]
    assert err.call == "bind_port"
    assert err.method == "PUT"
    assert err.path == s["request"]["path"]
    assert err.request_id == s["response_headers"]["x-openstack-request-id"]
    assert err.attempts == 1
    assert err.maybe_applied is False
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("label", "call"),
    [
        ("create port mac in use", lambda c: c.create_port("n", device_id="d", host="h")),
        ("create port ip in use", lambda c: c.create_port("n", device_id="d", host="h")),
        ("create port bad network", lambda c: c.create_port("n", device_id="d", host="h")),
        ("show port 404", lambda c: c.show_port("p")),
        ("update port 404", lambda c: c.unbind_port("p")),
        ("list ports unknown filter", lambda c: c.list_ports(device_id="x")),
    ],
)
async def test_client_raises_the_mapped_class(
    make_client: MakeClient, label: str, call: Any
) -> None:
    script = Script(Reply.of(label))
    with pytest.raises(EXPECTED_BY_LABEL[label]):
        await call(make_client(script))
    assert len(script.requests) == 1


async def test_non_json_502_on_a_write_through_the_client(make_client: MakeClient) -> None:
    script = Script(
        Reply(502, content=b"<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    )
    client = make_client(script)
    with pytest.raises(E.Unavailable) as info:
        await client.create_port("n", device_id="d", host="h")
    assert info.value.status == 502
    assert info.value.message == "<html>Bad Gateway</html>"
    assert info.value.maybe_applied is True  # a POST answered 502 may have created the port
    assert len(script.requests) == 1


async def test_401_twice_is_unauthorized(make_client: MakeClient) -> None:
    script = Script(neutron_error(401, "HTTPUnauthorized", "Authentication required"))
    client = make_client(script)
    with pytest.raises(E.Unauthorized):
        await client.show_port("p")
    assert len(script.requests) == 2  # one invalidate + retry
