"""The Nova-compatible `/v2.1` facade: what clients written for Nova's compute API need
from a compute node, with Nova's request bodies, response bodies and status codes.

Owns: the version documents (`GET /` via `root_router`, `GET /v2.1`), microversion
negotiation (`OpenStack-API-Version: compute X.Y` or `X-OpenStack-Nova-API-Version`,
2.1 to `MAX_VERSION`; 400 for a malformed version, 406 for one out of range; every
`/v2.1` answer says the version it was served at), the minimal servers API (`GET
/servers`, `/servers/detail`, `/servers/{id}`: the instances of this host), the port
interfaces API (`/servers/{id}/os-interface[/{port_id}]`) and
`POST /os-server-external-events` (what Neutron's nova notifier sends; admin or service
role). See docs/nova-api.md for the shapes and what differs from Nova.

Where the answers come from: the network-info cache (the VIF rows), never a per-port
read of the network service. An interface's `port_state` is the cached link state
(`ACTIVE` or `DOWN`); its subnet ids come from the engine's per-host network cache (a
hit after the attach warmed it), matched by CIDR.

Must never: decide anything about an operation (the engine does), skip the service's gate
(`Service.operation()`) for a mutating route, or let bad input reach the engine: every
body is checked against Nova's schema for the requested microversion first, and a
refusal changes nothing.

Concurrency: handlers run concurrently on one event loop; they share no state (the
negotiated version lives on the request).
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from starlette.datastructures import Headers

from hotport.api import errors
from hotport.api.auth import Caller, admin, authenticated
from hotport.api.bodies import StrictBody
from hotport.engine import errors as E
from hotport.engine.context import translate_errors
from hotport.engine.manager import InterfaceManager
from hotport.engine.waiters import ExternalEvent
from hotport.model import VIF
from hotport.service.runtime import Service
from hotport.store.base import InstanceRow

# -- microversions ---------------------------------------------------------------------


class Microversion(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_VERSION = Microversion(2, 1)
#: Nova 2024.1 (Caracal)'s maximum; nothing the facade serves changed after 2.93
MAX_VERSION = Microversion(2, 96)
#: `tag` is accepted in an attach body from 2.49 and shown in interface answers from 2.70
TAG_IN_REQUEST = Microversion(2, 49)
TAG_IN_ANSWER = Microversion(2, 70)

#: os-server-external-events names, by the microversion that added them (Nova's schema)
EVENT_NAMES: tuple[tuple[Microversion, str], ...] = (
    (MIN_VERSION, "network-changed"),
    (MIN_VERSION, "network-vif-plugged"),
    (MIN_VERSION, "network-vif-unplugged"),
    (MIN_VERSION, "network-vif-deleted"),
    (Microversion(2, 51), "volume-extended"),
    (Microversion(2, 76), "power-update"),
    (Microversion(2, 82), "accelerator-request-bound"),
    (Microversion(2, 93), "volume-reimaged"),
)

VERSION_HEADER = "OpenStack-API-Version"
LEGACY_VERSION_HEADER = "X-OpenStack-Nova-API-Version"
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")

#: Nova's `[api] max_limit`: the most servers one list answer holds
MAX_LIMIT = 1000


class VersionError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def requested_version(headers: Headers) -> str | None:
    """The compute microversion a request asks for, as `microversion_parse` reads it:
    the `compute` entry of `OpenStack-API-Version` first, then the legacy header."""
    for value in headers.getlist(VERSION_HEADER):
        for item in value.split(","):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "compute":
                return parts[1].strip()
    legacy = headers.get(LEGACY_VERSION_HEADER)
    return legacy.strip() if legacy is not None else None


def negotiate(headers: Headers) -> Microversion:
    """The microversion to serve: 2.1 when none is asked for, the maximum for `latest`;
    `VersionError` 400 (malformed) or 406 (not in MIN_VERSION..MAX_VERSION), as Nova."""
    raw = requested_version(headers)
    if raw is None:
        return MIN_VERSION
    if raw.lower() == "latest":
        return MAX_VERSION
    match = _VERSION.match(raw)
    if match is None:
        raise VersionError(
            400,
            f"API Version String {raw} is of invalid format. Must be of format MajorNum.MinorNum.",
        )
    version = Microversion(int(match[1]), int(match[2]))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionError(
            406,
            f"Version {raw} is not supported by the API. Minimum is {MIN_VERSION} and "
            f"maximum is {MAX_VERSION}.",
        )
    return version


def stamp(response: Response, version: Microversion) -> None:
    """The headers nova-api puts on every answer of a negotiated request."""
    response.headers[VERSION_HEADER] = f"compute {version}"
    response.headers[LEGACY_VERSION_HEADER] = str(version)
    response.headers["Vary"] = f"{VERSION_HEADER}, {LEGACY_VERSION_HEADER}"


async def _answer_error(request: Request, exc: Exception) -> Response:
    """The app's own answer to `exc` (errors.HANDLERS), so that it can be stamped."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc


class NovaRoute(APIRoute):
    """A `/v2.1` route: negotiates the microversion before anything else (body validation
    included), keeps it in `request.state.nova_version`, and stamps the answer, errors
    included, with it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def nova_handler(request: Request) -> Response:
            try:
                version = negotiate(request.headers)
            except VersionError as exc:
                return errors.error_response(
                    request, exc.status, exc.message, type_="InvalidAPIVersion"
                )
            request.state.nova_version = version
            try:
                response = await handle(request)
            except Exception as exc:
                response = await _answer_error(request, exc)
            stamp(response, version)
            return response

        return nova_handler


def version_of(request: Request) -> Microversion:
    version: Microversion = request.state.nova_version
    return version


# -- documented shapes -----------------------------------------------------------------


class NovaFault(RootModel[dict[str, errors.NovaFaultDetail]]):
    """Nova's error body: `{"badRequest": {"code": 400, "message": "..."}}` and so on."""


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None


class MediaType(BaseModel):
    base: str
    type: str


class VersionEntry(BaseModel):
    id: str
    status: str
    version: str
    min_version: str
    updated: str
    links: list[Link]


class VersionDetail(VersionEntry):
    media_types: list[MediaType] = Field(alias="media-types")


class VersionsDoc(BaseModel):
    versions: list[VersionEntry]


class VersionDoc(BaseModel):
    version: VersionDetail


class ServerSummary(BaseModel):
    id: str
    name: str
    links: list[Link]


class Servers(BaseModel):
    servers: list[ServerSummary]
    servers_links: list[Link] | None = None


class ServerAddress(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: int
    addr: str
    ip_type: str = Field(alias="OS-EXT-IPS:type")
    mac_addr: str = Field(alias="OS-EXT-IPS-MAC:mac_addr")


class ServerDetail(BaseModel):
    id: str
    name: str
    status: str
    host: str = Field(alias="OS-EXT-SRV-ATTR:host")
    addresses: dict[str, list[ServerAddress]]
    links: list[Link]
    created: str
    updated: str
    metadata: dict[str, str] = Field(description="Always empty: hotport keeps no metadata.")
    image: str = Field(description="Always empty: hotport does not know the image.")
    flavor: dict[str, Any] = Field(description="Always empty: hotport does not know it.")


class ServersDetail(BaseModel):
    servers: list[ServerDetail]
    servers_links: list[Link] | None = None


class ServerOut(BaseModel):
    server: ServerDetail


class FixedIPOut(BaseModel):
    subnet_id: str | None
    ip_address: str


class InterfaceAttachmentOut(BaseModel):
    net_id: str
    port_id: str
    mac_addr: str
    port_state: Literal["ACTIVE", "DOWN"]
    fixed_ips: list[FixedIPOut]
    tag: str | None = Field(default=None, description="Present from microversion 2.70.")


class InterfaceAttachmentOne(BaseModel):
    interfaceAttachment: InterfaceAttachmentOut


class InterfaceAttachmentList(BaseModel):
    interfaceAttachments: list[InterfaceAttachmentOut]


class EventOut(BaseModel):
    name: str
    server_uuid: str
    status: Literal["completed", "failed"]
    code: int
    tag: str | None = None


class EventsOut(BaseModel):
    events: list[EventOut]


# -- request bodies (Nova's schemas: unknown fields refused) -----------------------------


def _a_uuid(value: str) -> str:
    try:
        uuidlib.UUID(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None
    return value


def _a_tag(value: str) -> str:
    if "," in value or "/" in value:
        raise ValueError(f"{value!r} contains ',' or '/', which a device tag must not")
    return value


UUIDString = Annotated[
    str, AfterValidator(_a_uuid), WithJsonSchema({"type": "string", "format": "uuid"})
]
Tag = Annotated[
    str,
    Field(min_length=1, max_length=60),
    AfterValidator(_a_tag),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}),
]


class FixedIPIn(StrictBody):
    ip_address: str

    @model_validator(mode="after")
    def _an_address(self) -> FixedIPIn:
        try:
            ipaddress.ip_address(self.ip_address)
        except ValueError:
            raise ValueError(
                f"ip_address {self.ip_address!r} is not an IPv4 or IPv6 address"
            ) from None
        return self


class InterfaceAttachmentIn(StrictBody):
    port_id: UUIDString | SkipJsonSchema[None] = Field(
        default=None, description="A port to attach."
    )
    net_id: UUIDString | SkipJsonSchema[None] = Field(
        default=None, description="A network to create the port on."
    )
    fixed_ips: list[FixedIPIn] | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=1, description="Only with net_id."
    )
    tag: Tag | SkipJsonSchema[None] = Field(
        default=None, description="The device tag (microversion 2.49 or later)."
    )


class AttachBody(StrictBody):
    interfaceAttachment: InterfaceAttachmentIn | SkipJsonSchema[None] = None


class EventIn(StrictBody):
    server_uuid: UUIDString
    name: str
    status: Literal["failed", "completed", "in-progress"] | SkipJsonSchema[None] = None
    tag: str | SkipJsonSchema[None] = Field(default=None, max_length=255)


class EventsBody(StrictBody):
    events: list[EventIn] = Field(min_length=1)


# -- routes ----------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": NovaFault, "description": "badRequest: bad input; nothing was changed"},
    401: {"model": NovaFault, "description": "unauthorized: no valid token"},
    403: {"model": NovaFault, "description": "forbidden: the token lacks a role"},
    404: {"model": NovaFault, "description": "itemNotFound: no such server or interface"},
    406: {"model": NovaFault, "description": "computeFault: microversion not supported"},
    409: {"model": NovaFault, "description": "conflictingRequest: port in use, ..."},
    502: {"model": NovaFault, "description": "computeFault: a backend failed unexpectedly"},
    503: {"model": NovaFault, "description": "serviceUnavailable: backend down, or stopping"},
}

router = APIRouter(prefix="/v2.1", tags=["nova"], responses=_ERRORS, route_class=NovaRoute)
root_router = APIRouter(tags=["nova"])

Authenticated = Annotated[Caller, Depends(authenticated)]
Admin = Annotated[Caller, Depends(admin)]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _manager(request: Request) -> InterfaceManager:
    return _service(request).require_manager()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _server_uuid(server_id: str) -> str:
    """A path's server id; Nova answers 404 for one that is not a UUID (no such server)."""
    try:
        return str(uuidlib.UUID(server_id))
    except ValueError:
        raise E.InstanceNotFound(
            f"Instance {server_id} could not be found: a server id is a UUID"
        ) from None


def _port_uuid(port_id: str) -> str:
    try:
        return str(uuidlib.UUID(port_id))
    except ValueError:
        raise E.PortNotFound(f"Port {port_id} could not be found: a port id is a UUID") from None


# -- version documents -----------------------------------------------------------------


def _v21(request: Request) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"href": f"{_base(request)}/v2.1/", "rel": "self"}],
    }


@root_router.get(
    "/",
    summary="The compute API's versions (Nova's version list).",
    response_model=None,
    responses={200: {"model": VersionsDoc}},
)
async def versions(request: Request) -> Response:
    return JSONResponse({"versions": [_v21(request)]})


@router.get(
    "",
    summary="The v2.1 version document: its microversion range.",
    response_model=None,
    responses={200: {"model": VersionDoc}},
)
@router.get("/", include_in_schema=False, response_model=None)
async def version(request: Request) -> Response:
    doc = _v21(request)
    doc["links"].append(
        {"href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"}
    )
    doc["media-types"] = [
        {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
    ]
    ordered = {k: doc[k] for k in ("id", "links", "media-types", "status")}
    ordered.update({k: doc[k] for k in ("version", "min_version", "updated")})
    return JSONResponse({"version": ordered})


# -- servers ---------------------------------------------------------------------------


def _timestamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(request: Request, server_uuid: str) -> list[dict[str, str]]:
    return [{"href": f"{_base(request)}/v2.1/servers/{server_uuid}", "rel": "self"}]


def _addresses(vifs: Iterable[VIF]) -> dict[str, list[dict[str, Any]]]:
    """Nova's `addresses`, from the cache: per network label its fixed IPs, then its
    floating IPs, each with the MAC of its port."""
    fixed: dict[str, list[dict[str, Any]]] = {}
    floating: dict[str, list[dict[str, Any]]] = {}
    for vif in vifs:
        label = vif.network.label
        fixed.setdefault(label, [])
        floating.setdefault(label, [])
        for subnet in vif.network.subnets:
            for ip in subnet.ips:
                fixed[label].append(_address(ip.version, ip.address, "fixed", vif.address))
                for fip in ip.floating_ips:
                    floating[label].append(
                        _address(fip.version, fip.address, "floating", vif.address)
                    )
    return {label: fixed[label] + floating[label] for label in fixed}


def _address(version: int, addr: str, kind: str, mac: str) -> dict[str, Any]:
    return {
        "version": version,
        "addr": addr,
        "OS-EXT-IPS:type": kind,
        "OS-EXT-IPS-MAC:mac_addr": mac,
    }


def _server_detail(request: Request, row: InstanceRow, vifs: Iterable[VIF]) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "name": row.name,
        "status": "ACTIVE",
        "OS-EXT-SRV-ATTR:host": row.host,
        "addresses": _addresses(vifs),
        "links": _links(request, row.uuid),
        "created": _timestamp(row.created_at),
        "updated": _timestamp(row.created_at),
        # what hotport does not know, in the form Nova gives for "none"
        "metadata": {},
        "image": "",
        "flavor": {},
    }


async def _server_page(
    request: Request, name: str | None, limit: int | None, marker: str | None
) -> tuple[list[InstanceRow], list[dict[str, str]] | None]:
    """This host's instances in Nova's order (newest first), those whose name contains
    `name`, one page of `limit` after `marker`. (Nova searches `name` as a regular
    expression; hotport matches it as a plain substring, so that no crafted expression
    can stall the service's one event loop.)"""
    rows = sorted(
        await _manager(request).list_instances(),
        key=lambda r: (r.created_at, r.uuid),
        reverse=True,
    )
    if name is not None:
        rows = [r for r in rows if name in r.name]
    if marker is not None:
        ids = [r.uuid for r in rows]
        try:
            position = ids.index(str(uuidlib.UUID(marker)))
        except ValueError:
            raise E.InvalidRequest(
                f"marker [{marker}] not found; give the id of the last server of the previous page"
            ) from None
        rows = rows[position + 1 :]
    page_size = MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)
    page = rows[:page_size]
    links = None
    if page and len(page) == page_size:
        params = dict(request.query_params)
        params["marker"] = page[-1].uuid
        href = f"{_base(request)}{request.url.path}?{urlencode(params)}"
        links = [{"href": href, "rel": "next"}]
    return page, links


Name = Annotated[str | None, Query(description="Text the server name must contain.")]
Limit = Annotated[int | None, Query(ge=0, description="At most this many servers.")]
Marker = Annotated[
    str | None, Query(min_length=1, description="The last server id of the previous page.")
]


@router.get(
    "/servers",
    summary="The servers of this host (id, name, links).",
    response_model=None,
    responses={200: {"model": Servers}},
)
async def list_servers(
    request: Request,
    _: Authenticated,
    name: Name = None,
    limit: Limit = None,
    marker: Marker = None,
) -> Response:
    page, links = await _server_page(request, name, limit, marker)
    body: dict[str, Any] = {
        "servers": [{"id": r.uuid, "links": _links(request, r.uuid), "name": r.name} for r in page]
    }
    if links:
        body["servers_links"] = links
    return JSONResponse(body)


@router.get(
    "/servers/detail",
    summary="The servers of this host, with their addresses from the cache.",
    response_model=None,
    responses={200: {"model": ServersDetail}},
)
async def list_servers_detail(
    request: Request,
    _: Authenticated,
    name: Name = None,
    limit: Limit = None,
    marker: Marker = None,
) -> Response:
    page, links = await _server_page(request, name, limit, marker)
    manager = _manager(request)
    servers = [_server_detail(request, r, await manager.interfaces(r.uuid)) for r in page]
    body: dict[str, Any] = {"servers": servers}
    if links:
        body["servers_links"] = links
    return JSONResponse(body)


@router.get(
    "/servers/{server_id}",
    summary="One server of this host.",
    response_model=None,
    responses={200: {"model": ServerOut}},
)
async def show_server(request: Request, server_id: str, _: Authenticated) -> Response:
    view = await _manager(request).get_instance(_server_uuid(server_id))
    return JSONResponse({"server": _server_detail(request, view.instance, view.interfaces)})


# -- os-interface ----------------------------------------------------------------------


async def _subnet_ids(manager: InterfaceManager, vifs: Sequence[VIF]) -> dict[str, str]:
    """`"<network id> <cidr>"` -> subnet id, for the networks of `vifs`, from the engine's
    network cache (subnets of one network never overlap, so the CIDR names the subnet)."""
    network_ids = sorted({v.network.id for v in vifs if v.network.subnets})
    if not network_ids:
        return {}
    try:
        with translate_errors("interface subnets"):
            details = await manager.engine.netcache.get(network_ids)
    except E.NetworkNotFound:
        return {}  # a network deleted under its ports: subnet ids unknown, the rest true
    out: dict[str, str] = {}
    for network_id, d in details.items():
        for subnet in d.subnets:
            try:
                cidr = ipaddress.ip_network(str(subnet["cidr"]), strict=False)
            except (KeyError, ValueError):
                continue
            out[f"{network_id} {cidr}"] = str(subnet["id"])
    return out


def _attachment(vif: VIF, subnet_ids: Mapping[str, str], version: Microversion) -> dict[str, Any]:
    fixed_ips: list[dict[str, str | None]] = []
    for subnet in vif.network.subnets:
        cidr = ipaddress.ip_network(subnet.cidr, strict=False)
        subnet_id = subnet_ids.get(f"{vif.network.id} {cidr}")
        fixed_ips.extend({"subnet_id": subnet_id, "ip_address": ip.address} for ip in subnet.ips)
    out: dict[str, Any] = {
        "net_id": vif.network.id,
        "port_id": vif.id,
        "mac_addr": vif.address,
        "port_state": "ACTIVE" if vif.active else "DOWN",
        "fixed_ips": fixed_ips,
    }
    if version >= TAG_IN_ANSWER:
        out["tag"] = vif.tag
    return out


async def _attachments(
    manager: InterfaceManager, vifs: Sequence[VIF], version: Microversion
) -> list[dict[str, Any]]:
    subnet_ids = await _subnet_ids(manager, vifs)
    return [_attachment(v, subnet_ids, version) for v in vifs]


@router.get(
    "/servers/{server_id}/os-interface",
    summary="The server's port interfaces (from the network-info cache).",
    response_model=None,
    responses={200: {"model": InterfaceAttachmentList}},
)
async def list_interfaces(request: Request, server_id: str, _: Authenticated) -> Response:
    manager = _manager(request)
    info = await manager.interfaces(_server_uuid(server_id))
    attachments = await _attachments(manager, list(info), version_of(request))
    return JSONResponse({"interfaceAttachments": attachments})


@router.get(
    "/servers/{server_id}/os-interface/{port_id}",
    summary="One port interface of the server.",
    response_model=None,
    responses={200: {"model": InterfaceAttachmentOne}},
)
async def show_interface(
    request: Request, server_id: str, port_id: str, _: Authenticated
) -> Response:
    manager = _manager(request)
    instance = _server_uuid(server_id)
    port = _port_uuid(port_id)
    vif = (await manager.interfaces(instance)).get(port)
    if vif is None:
        raise E.InterfaceNotAttached(
            f"Instance {instance} does not have a port with id {port}; list its ports with "
            f"GET /v2.1/servers/{instance}/os-interface"
        )
    [attachment] = await _attachments(manager, [vif], version_of(request))
    return JSONResponse({"interfaceAttachment": attachment})


def _attach_arguments(body: AttachBody, version: Microversion) -> dict[str, Any]:
    """The engine's attach arguments for a Nova body; `InvalidRequest` as Nova refuses."""
    a = body.interfaceAttachment
    if a is None or (a.port_id is None and a.net_id is None):
        raise E.InvalidRequest(
            "give interfaceAttachment.port_id (a port to attach) or interfaceAttachment.net_id "
            "(a network to create a port on); hotport does not choose a network for you"
        )
    if a.tag is not None and version < TAG_IN_REQUEST:
        raise E.InvalidRequest(
            f"unknown field 'interfaceAttachment.tag' at microversion {version}: tag needs "
            f"{TAG_IN_REQUEST} or later (send '{VERSION_HEADER}: compute {TAG_IN_REQUEST}'), "
            "or leave it out"
        )
    if a.port_id is not None and a.net_id is not None:
        raise E.InvalidRequest(
            "Must not input both network_id and port_id: give interfaceAttachment.port_id or "
            "interfaceAttachment.net_id, not both"
        )
    if a.fixed_ips is not None and a.net_id is None:
        raise E.InvalidRequest(
            "Must input network_id when request IP address: fixed_ips needs "
            "interfaceAttachment.net_id (a port keeps its own addresses)"
        )
    return {
        "port_id": a.port_id,
        "network_id": a.net_id,
        "fixed_ips": (
            [{"ip_address": ip.ip_address} for ip in a.fixed_ips]
            if a.fixed_ips is not None
            else None
        ),
        "tag": a.tag,
    }


@router.post(
    "/servers/{server_id}/os-interface",
    summary="Attach a port (port_id) or a new port on a network (net_id); 200 as Nova.",
    response_model=None,
    responses={200: {"model": InterfaceAttachmentOne}},
)
async def attach_interface(
    request: Request, server_id: str, body: AttachBody, _: Authenticated
) -> Response:
    version = version_of(request)
    instance = _server_uuid(server_id)
    arguments = _attach_arguments(body, version)
    async with _service(request).operation() as manager:
        result = await manager.attach(instance, **arguments)
    [attachment] = await _attachments(manager, [result.vif], version)
    return JSONResponse({"interfaceAttachment": attachment})


@router.delete(
    "/servers/{server_id}/os-interface/{port_id}",
    status_code=202,
    summary="Detach a port; 202 with no body, as Nova (done when answered).",
    response_model=None,
    response_class=Response,
    responses={202: {"description": "detached"}},
)
async def detach_interface(
    request: Request, server_id: str, port_id: str, _: Authenticated
) -> Response:
    instance = _server_uuid(server_id)
    port = _port_uuid(port_id)
    async with _service(request).operation() as manager:
        await manager.detach(instance, port)
    return Response(status_code=202)


# -- os-server-external-events ---------------------------------------------------------


def _event_names(version: Microversion) -> list[str]:
    return [name for since, name in EVENT_NAMES if version >= since]


@router.post(
    "/os-server-external-events",
    summary="Events from the network service (admin or service role), as Nova takes them.",
    response_model=None,
    responses={
        200: {"model": EventsOut, "description": "every event accepted"},
        207: {"model": EventsOut, "description": "some accepted; see each event's code"},
        404: {"model": NovaFault, "description": "no event was accepted"},
    },
)
async def external_events(request: Request, body: EventsBody, _: Admin) -> Response:
    version = version_of(request)
    names = _event_names(version)
    for i, ev in enumerate(body.events):
        if ev.name not in names:
            raise E.InvalidRequest(
                f"events[{i}].name: {ev.name!r} is not an event name at microversion "
                f"{version}; use one of {', '.join(names)}"
            )
    raw = await request.json()
    given: list[dict[str, Any]] = [dict(e) for e in raw["events"]]
    async with _service(request).operation() as manager:
        answers = await manager.events(
            [
                ExternalEvent(
                    ev.name,
                    str(uuidlib.UUID(ev.server_uuid)),
                    ev.tag,
                    ev.status or "completed",
                )
                for ev in body.events
            ]
        )
    echoed: list[dict[str, Any]] = []
    refused: list[str] = []
    for original, answer in zip(given, answers, strict=True):
        accepted = answer.code == 200
        echoed.append({**original, "status": "completed" if accepted else "failed"})
        echoed[-1]["code"] = answer.code
        if not accepted:
            refused.append(f"{answer.event.name} for {answer.event.server_uuid}: {answer.message}")
    if len(refused) == len(echoed):
        raise E.NotFoundError(
            "No instances found for any event: "
            + "; ".join(refused)
            + " (events are accepted only for instances known on this host)"
        )
    return JSONResponse({"events": echoed}, status_code=207 if refused else 200)
