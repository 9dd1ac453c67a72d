"""The native API, `/v1`: instances, their interfaces, heal and the operations journal.

Owns: the routes, their request bodies (pydantic, unknown fields refused) and their
response shapes. Every attach and detach answer carries the operation's trace (phase
timings, network-service requests, lock waits).

Must never: decide anything about an operation (the engine does), or skip the service's
gate for a mutating route (`Service.operation()`: refused while stopping).

Concurrency: handlers run concurrently on one event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from hotport.api.auth import Caller, admin, authenticated
from hotport.api.bodies import UUID_PATTERN, StrictBody
from hotport.api.errors import ErrorBody
from hotport.engine.manager import InstanceView, InterfaceManager
from hotport.service.runtime import Service
from hotport.store.base import InstanceRow, JournalEntry

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad input; nothing was changed"},
    401: {"model": ErrorBody, "description": "no valid token"},
    403: {"model": ErrorBody, "description": "the token lacks a role"},
    404: {"model": ErrorBody, "description": "no such instance, port or interface"},
    409: {"model": ErrorBody, "description": "conflict (port in use, concurrent change)"},
    503: {"model": ErrorBody, "description": "a backend is unavailable, or stopping"},
}

router = APIRouter(prefix="/v1", tags=["v1"], responses=_ERRORS)

Authenticated = Annotated[Caller, Depends(authenticated)]
InstanceId = Annotated[str, Path(pattern=UUID_PATTERN, description="The instance's UUID.")]
PortId = Annotated[str, Path(pattern=UUID_PATTERN, description="The port's UUID.")]
Admin = Annotated[Caller, Depends(admin)]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _manager(request: Request) -> InterfaceManager:
    return _service(request).require_manager()


# -- bodies ----------------------------------------------------------------------------
class InstanceCreate(StrictBody):
    uuid: str = Field(pattern=UUID_PATTERN, description="The instance's UUID.")
    name: str = Field(min_length=1, max_length=255)


class FixedIPRequest(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["ip_address"]}, {"required": ["subnet_id"]}]}
    )

    ip_address: str | SkipJsonSchema[None] = None
    subnet_id: str | SkipJsonSchema[None] = Field(default=None, pattern=UUID_PATTERN)


class AttachRequest(StrictBody):
    """Exactly one of `port_id` (a port created beforehand) or `network_id` (hotport
    creates the port, and deletes it on detach)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["port_id"], "not": {"required": ["fixed_ips"]}},
                {"required": ["network_id"]},
            ]
        }
    )

    port_id: str | SkipJsonSchema[None] = Field(default=None, pattern=UUID_PATTERN)
    network_id: str | SkipJsonSchema[None] = Field(default=None, pattern=UUID_PATTERN)
    fixed_ips: list[FixedIPRequest] | SkipJsonSchema[None] = Field(
        default=None, description="Only with network_id."
    )
    tag: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=60)


# -- answers ---------------------------------------------------------------------------
class Instance(BaseModel):
    uuid: str
    name: str
    host: str
    created_at: float


class NICOut(BaseModel):
    mac: str
    dev: str | None
    port_id: str | None
    alias: str | None


class InstanceDetail(Instance):
    interfaces: list[dict[str, Any]] = Field(
        description="The cached network info (Nova's network_info VIF layout)."
    )
    nics: list[NICOut] = Field(description="The NICs the domain really has.")


class Instances(BaseModel):
    instances: list[Instance]


class Interfaces(BaseModel):
    interfaces: list[dict[str, Any]]


class InterfaceOut(BaseModel):
    interface: dict[str, Any]


class Trace(BaseModel):
    kind: str
    instance: str | None
    port_id: str | None
    outcome: str
    error: str | None
    seconds: float
    phases: list[dict[str, Any]]
    network_requests: dict[str, int]
    network_request_total: int
    network_round_trips: int
    lock_wait_seconds: dict[str, float]


class AttachOut(BaseModel):
    interface: dict[str, Any]
    created_port: bool
    trace: Trace


class DetachOut(BaseModel):
    port_id: str
    deleted_port: bool
    trace: Trace


class Operation(BaseModel):
    id: int
    instance: str
    port_id: str | None
    kind: str
    state: str
    error: str | None
    details: Any
    created_at: float
    updated_at: float


class Operations(BaseModel):
    operations: list[Operation]


def _instance(row: InstanceRow) -> Instance:
    return Instance(uuid=row.uuid, name=row.name, host=row.host, created_at=row.created_at)


def _detail(view: InstanceView) -> InstanceDetail:
    return InstanceDetail(
        **_instance(view.instance).model_dump(),
        interfaces=view.interfaces.to_json(),
        nics=[NICOut(mac=n.mac, dev=n.dev, port_id=n.port_id, alias=n.alias) for n in view.nics],
    )


def _operation(e: JournalEntry) -> Operation:
    return Operation(
        id=e.id,
        instance=e.instance_uuid,
        port_id=e.port_id,
        kind=e.kind,
        state=e.state,
        error=e.error,
        details=e.details,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


# -- routes ----------------------------------------------------------------------------
@router.get("/instances", summary="The instances on this host.")
async def list_instances(request: Request, _: Authenticated) -> Instances:
    rows = await _manager(request).list_instances()
    return Instances(instances=[_instance(r) for r in rows])


@router.post(
    "/instances",
    status_code=201,
    summary="Create an instance (a domain of the in-memory driver).",
    responses={405: {"model": ErrorBody, "description": "the driver cannot create domains"}},
)
async def create_instance(request: Request, body: InstanceCreate, _: Authenticated) -> Instance:
    async with _service(request).operation() as manager:
        row = await manager.create_instance(body.uuid, body.name)
    return _instance(row)


@router.get("/instances/{uuid}", summary="An instance: its cached interfaces and its real NICs.")
async def show_instance(request: Request, uuid: InstanceId, _: Authenticated) -> InstanceDetail:
    return _detail(await _manager(request).get_instance(uuid))


@router.delete(
    "/instances/{uuid}",
    status_code=204,
    summary="Detach every interface, remove the domain, forget the instance.",
    responses={405: {"model": ErrorBody, "description": "the driver cannot remove domains"}},
)
async def delete_instance(request: Request, uuid: InstanceId, _: Authenticated) -> Response:
    async with _service(request).operation() as manager:
        await manager.delete_instance(uuid)
    return Response(status_code=204)


@router.get("/instances/{uuid}/interfaces", summary="The instance's cached interfaces.")
async def list_interfaces(request: Request, uuid: InstanceId, _: Authenticated) -> Interfaces:
    info = await _manager(request).interfaces(uuid)
    return Interfaces(interfaces=info.to_json())


@router.post(
    "/instances/{uuid}/interfaces",
    status_code=201,
    summary="Attach a port (port_id) or a new port on a network (network_id).",
)
async def attach(
    request: Request, uuid: InstanceId, body: AttachRequest, _: Authenticated
) -> AttachOut:
    async with _service(request).operation() as manager:
        result = await manager.attach(
            uuid,
            port_id=body.port_id,
            network_id=body.network_id,
            fixed_ips=(
                [ip.model_dump(exclude_none=True) for ip in body.fixed_ips]
                if body.fixed_ips is not None
                else None
            ),
            tag=body.tag,
        )
    return AttachOut(
        interface=result.vif.to_json(),
        created_port=result.created_port,
        trace=Trace(**result.trace.to_dict()),
    )


@router.get("/instances/{uuid}/interfaces/{port_id}", summary="One cached interface.")
async def show_interface(
    request: Request, uuid: InstanceId, port_id: PortId, _: Authenticated
) -> InterfaceOut:
    vif = await _manager(request).interface(uuid, port_id)
    return InterfaceOut(interface=vif.to_json())


@router.delete(
    "/instances/{uuid}/interfaces/{port_id}",
    summary="Detach a port (a port hotport created is deleted).",
)
async def detach(
    request: Request, uuid: InstanceId, port_id: PortId, _: Authenticated
) -> DetachOut:
    async with _service(request).operation() as manager:
        result = await manager.detach(uuid, port_id)
    return DetachOut(
        port_id=result.port_id,
        deleted_port=result.deleted_port,
        trace=Trace(**result.trace.to_dict()),
    )


@router.post("/heal", summary="Run one heal of the whole host now; what it found and fixed.")
async def run_heal(request: Request, _: Admin) -> dict[str, Any]:
    async with _service(request).operation() as manager:
        report = await manager.heal()
    return report.to_dict()


@router.get("/operations", summary="The operations journal, newest first.")
async def operations(
    request: Request,
    _: Authenticated,
    instance: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Operations:
    entries = await _manager(request).journal(instance, limit=limit)
    return Operations(operations=[_operation(e) for e in entries])
