"""A small typed client of hotport's native API (`/v1`), and how the CLI shows its answers.

Owns: `HotportClient` (async, httpx: one method per route the CLI and the demo use),
the answers' shapes as `TypedDict`s (the JSON as the API sends it, so `--json` prints
exactly what came over the wire), the client's errors (`Unreachable`: no hotport at
that URL; `ApiError`: hotport answered with an error, its message kept verbatim) and
the rich renderings of instances, interfaces, traces and heal reports.

Must never: decide anything an operation does (the service does); retry an operation
(attach and detach are not idempotent from the caller's side: a retry is the caller's
call); show a token (it is sent as `X-Auth-Token` and nowhere else).

Concurrency: a `HotportClient` is used from one event loop; its methods may run
concurrently (httpx pools the connections). The renderers are pure functions.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, NotRequired, TypedDict, cast

import httpx
from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AttachOut",
    "ClientError",
    "DetachOut",
    "HotportClient",
    "Instance",
    "InstanceDetail",
    "Trace",
    "Unreachable",
    "heal_view",
    "instance_view",
    "instances_table",
    "interfaces_table",
    "operations_table",
    "trace_view",
]

DEFAULT_URL = "http://127.0.0.1:8774"
TOKEN_HEADER = "X-Auth-Token"
#: an operation answers within the service's request_timeout (120 s by default)
DEFAULT_TIMEOUT = httpx.Timeout(150.0, connect=5.0)


# -- the answers -------------------------------------------------------------------------
class Instance(TypedDict):
    uuid: str
    name: str
    host: str
    created_at: float


class NIC(TypedDict):
    mac: str
    dev: str | None
    port_id: str | None
    alias: str | None


class InstanceDetail(Instance):
    interfaces: list[dict[str, Any]]
    nics: list[NIC]


class Phase(TypedDict):
    name: str
    start: float
    seconds: float


class Trace(TypedDict):
    kind: str
    instance: str | None
    port_id: str | None
    outcome: str
    error: str | None
    seconds: float
    phases: list[Phase]
    network_requests: dict[str, int]
    network_request_total: int
    network_round_trips: int
    lock_wait_seconds: dict[str, float]


class AttachOut(TypedDict):
    interface: dict[str, Any]
    created_port: bool
    trace: Trace


class DetachOut(TypedDict):
    port_id: str
    deleted_port: bool
    trace: Trace


class Operation(TypedDict):
    id: int
    instance: str
    port_id: str | None
    kind: str
    state: str
    error: str | None
    details: Any
    created_at: float
    updated_at: float


class Ready(TypedDict):
    status: str
    in_flight: int
    request_id: NotRequired[str]


# -- errors ------------------------------------------------------------------------------
class ClientError(Exception):
    """Base of the client's errors; `str()` is a message for a person."""


class Unreachable(ClientError):
    """No hotport answered at the URL (refused, timed out, not HTTP)."""


class ApiError(ClientError):
    """hotport answered with an error; `message` is the API's own."""

    def __init__(
        self, status: int, message: str, *, type_: str = "", request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.request_id = request_id

    def __str__(self) -> str:
        what = f"HTTP {self.status}" + (f" {self.type}" if self.type else "")
        rid = f", request {self.request_id}" if self.request_id else ""
        return f"{self.message} ({what}{rid})"


# -- the client --------------------------------------------------------------------------
class HotportClient:
    """`async with HotportClient(url, token=...) as c: await c.instances()`.

    `http` lets the caller hand over its own client (the demo passes one bound to the
    app over ASGI, so no socket is needed); it is then not closed by this one."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = {TOKEN_HEADER: token} if token else {}
        self._own = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        if http is not None:
            self.url = str(http.base_url).rstrip("/") or self.url

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None) -> HotportClient:
        """Flags first, then HOTPORT_URL / HOTPORT_TOKEN, then the default URL."""
        return cls(
            url or os.environ.get("HOTPORT_URL") or DEFAULT_URL,
            token=token or os.environ.get("HOTPORT_TOKEN") or None,
        )

    async def __aenter__(self) -> HotportClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    # -- the routes --------------------------------------------------------------------
    async def ready(self) -> Ready:
        r = await self._send("GET", "/readyz", ok=(200, 503))
        return cast(Ready, r.json())

    async def instances(self) -> list[Instance]:
        body = (await self._send("GET", "/v1/instances")).json()
        return cast(list[Instance], body["instances"])

    async def instance(self, uuid: str) -> InstanceDetail:
        return cast(InstanceDetail, (await self._send("GET", f"/v1/instances/{uuid}")).json())

    async def create_instance(self, uuid: str, name: str) -> Instance:
        r = await self._send("POST", "/v1/instances", json={"uuid": uuid, "name": name})
        return cast(Instance, r.json())

    async def delete_instance(self, uuid: str) -> None:
        await self._send("DELETE", f"/v1/instances/{uuid}")

    async def interfaces(self, uuid: str) -> list[dict[str, Any]]:
        body = (await self._send("GET", f"/v1/instances/{uuid}/interfaces")).json()
        return cast(list[dict[str, Any]], body["interfaces"])

    async def attach(
        self,
        uuid: str,
        *,
        port_id: str | None = None,
        network_id: str | None = None,
        fixed_ips: list[str] | None = None,
        tag: str | None = None,
    ) -> AttachOut:
        body: dict[str, Any] = {}
        if port_id is not None:
            body["port_id"] = port_id
        if network_id is not None:
            body["network_id"] = network_id
        if fixed_ips:
            body["fixed_ips"] = [{"ip_address": ip} for ip in fixed_ips]
        if tag is not None:
            body["tag"] = tag
        r = await self._send("POST", f"/v1/instances/{uuid}/interfaces", json=body)
        return cast(AttachOut, r.json())

    async def detach(self, uuid: str, port_id: str) -> DetachOut:
        r = await self._send("DELETE", f"/v1/instances/{uuid}/interfaces/{port_id}")
        return cast(DetachOut, r.json())

    async def heal(self) -> dict[str, Any]:
        return cast(dict[str, Any], (await self._send("POST", "/v1/heal")).json())

    async def operations(self, instance: str | None = None, limit: int = 20) -> list[Operation]:
        params: dict[str, str | int] = {"limit": limit}
        if instance is not None:
            params["instance"] = instance
        body = (await self._send("GET", "/v1/operations", params=params)).json()
        return cast(list[Operation], body["operations"])

    # -- the wire ----------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (),
        json: Any = None,
        params: dict[str, str | int] | None = None,
    ) -> httpx.Response:
        try:
            r = await self._http.request(
                method, self.url + path, json=json, params=params, headers=self._headers
            )
        except httpx.ConnectError as exc:
            raise Unreachable(
                f"cannot connect to hotport at {self.url} ({_reason(exc)}): is `hotport "
                "serve` running there? (set --url or HOTPORT_URL)"
            ) from None
        except httpx.TimeoutException as exc:
            raise Unreachable(
                f"hotport at {self.url} did not answer {method} {path} in time "
                f"({type(exc).__name__}); the operation may still complete: check with "
                "`hotport instance` or `hotport operations`"
            ) from None
        except httpx.TransportError as exc:
            raise Unreachable(
                f"talking to hotport at {self.url} failed: {type(exc).__name__}: {exc}"
            ) from None
        if r.is_success or r.status_code in ok:
            if r.content and not _is_json(r):
                raise Unreachable(
                    f"{self.url} answered {method} {path} with something that is not JSON "
                    f"({r.headers.get('content-type', 'no content type')}): is it hotport?"
                )
            return r
        raise _api_error(r)


def _is_json(r: httpx.Response) -> bool:
    return "json" in r.headers.get("content-type", "")


def _reason(exc: httpx.ConnectError) -> str:
    seen: BaseException | None = exc
    while seen is not None:  # httpx wraps the OS error (anyio: "All connection attempts failed")
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _api_error(r: httpx.Response) -> ApiError:
    rid = r.headers.get("X-Openstack-Request-Id")
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return ApiError(
            r.status_code,
            str(err.get("message") or r.reason_phrase),
            type_=str(err.get("type") or ""),
            request_id=err.get("request_id") or rid,
        )
    text = r.text.strip()[:300] or r.reason_phrase
    return ApiError(r.status_code, text, request_id=rid)


# -- renderings --------------------------------------------------------------------------
def _ips(vif: dict[str, Any]) -> str:
    out = []
    for subnet in (vif.get("network") or {}).get("subnets") or []:
        for ip in subnet.get("ips") or []:
            fips = [f["address"] for f in ip.get("floating_ips") or [] if "address" in f]
            out.append(ip.get("address", "?") + (f" (fip {', '.join(fips)})" if fips else ""))
    return ", ".join(out) or "-"


def _net(vif: dict[str, Any]) -> str:
    net = vif.get("network") or {}
    label = net.get("label") or ""
    nid = str(net.get("id") or "?")
    return f"{label} ({nid[:8]})" if label else nid


def _uuid_column(table: Table, name: str) -> None:
    # whole where the width allows, folded rather than squeezing the other columns
    table.add_column(name, overflow="fold")


def interfaces_table(interfaces: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    _uuid_column(table, "port")
    table.add_column("MAC", no_wrap=True)
    for col in ("IPs", "network", "type", "active", "tag"):
        table.add_column(col, overflow="fold")
    for vif in interfaces:
        table.add_row(
            str(vif.get("id", "?")),
            str(vif.get("address", "?")),
            _ips(vif),
            escape(_net(vif)),
            str(vif.get("type", "?")),
            "yes" if vif.get("active") else "no",
            escape(str((vif.get("meta") or {}).get("tag") or "-")),
        )
    if not interfaces:
        table.caption = "no interfaces"
    return table


def instances_table(instances: list[Instance]) -> RenderableType:
    if not instances:
        return Text("no instances on this host (create one: hotport instances create NAME)")
    table = Table()
    _uuid_column(table, "uuid")
    table.add_column("name", overflow="fold")
    table.add_column("host", overflow="fold")
    for inst in instances:
        table.add_row(inst["uuid"], escape(inst["name"]), escape(inst["host"]))
    return table


def operations_table(operations: list[Operation]) -> Table:
    table = Table()
    table.add_column("id", justify="right")
    table.add_column("kind")
    table.add_column("state")
    _uuid_column(table, "instance")
    _uuid_column(table, "port")
    table.add_column("error", overflow="fold")
    for o in operations:
        table.add_row(
            str(o["id"]),
            o["kind"],
            o["state"],
            o["instance"],
            o["port_id"] or "-",
            escape(o["error"] or ""),
        )
    if not operations:
        table.caption = "no operations"
    return table


def instance_view(detail: InstanceDetail) -> RenderableType:
    """The cache's interfaces, the domain's real NICs, and whether they agree."""
    cached = {str(v.get("address", "")).lower(): v for v in detail["interfaces"]}
    nics = Table(title="NICs the domain really has", title_justify="left")
    nics.add_column("MAC", no_wrap=True)
    nics.add_column("dev", no_wrap=True)
    _uuid_column(nics, "port")
    nics.add_column("alias", overflow="fold")
    nics.add_column("in the cache")
    for nic in detail["nics"]:
        nics.add_row(
            nic["mac"],
            nic["dev"] or "-",
            nic["port_id"] or "-",
            nic["alias"] or "-",
            "yes" if nic["mac"].lower() in cached else "[bold red]no (orphan NIC)[/]",
        )
    if not detail["nics"]:
        nics.caption = "no NICs"
    real = {n["mac"].lower() for n in detail["nics"]}
    missing = [v for mac, v in cached.items() if mac not in real]
    head = Text.assemble(
        ("instance ", "bold"),
        (detail["uuid"], "bold"),
        f"  name {detail['name']}  host {detail['host']}",
    )
    parts: list[RenderableType] = [
        head,
        interfaces_table(detail["interfaces"], title="cached interfaces (network info)"),
        nics,
    ]
    if missing:
        parts.append(
            Text(
                f"{len(missing)} cached interface(s) have no NIC in the domain: "
                + ", ".join(str(v.get("id")) for v in missing)
                + " (the next heal reports them)",
                style="bold red",
            )
        )
    elif detail["interfaces"] or detail["nics"]:
        parts.append(Text("the cache and the domain agree", style="green"))
    return Group(*parts)


def trace_view(trace: Trace) -> RenderableType:
    """An operation's trace: its phases, its network requests, its lock waits."""
    lock = sum(trace["lock_wait_seconds"].values())
    summary = Text.assemble(
        (f"{trace['kind']} {trace['outcome']}", "bold"),
        f" in {trace['seconds']:.3f} s: ",
        (f"{trace['network_request_total']} network request(s)", "bold"),
        f" in {trace['network_round_trips']} round trip(s), lock wait {lock:.3f} s",
    )
    calls = ", ".join(f"{c} x{n}" for c, n in sorted(trace["network_requests"].items()))
    waits = ", ".join(f"{k} {v:.3f} s" for k, v in sorted(trace["lock_wait_seconds"].items()))
    phases = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    phases.add_column("phase")
    phases.add_column("start (s)", justify="right")
    phases.add_column("seconds", justify="right")
    for p in trace["phases"]:
        phases.add_row(p["name"], f"{p['start']:.3f}", f"{p['seconds']:.3f}")
    parts: list[RenderableType] = [
        summary,
        Text(f"  requests:   {calls or 'none'}"),
        Text(f"  lock waits: {waits or 'none'}"),
        phases,
    ]
    if trace["error"]:
        parts.insert(1, Text(f"  error: {trace['error']}", style="bold red"))
    return Group(*parts)


_HEAL_LISTS = (
    ("added", "rows added (port bound here, not cached)"),
    ("updated", "rows updated (stale)"),
    ("removed", "rows removed (port gone or moved)"),
    ("orphan_nics", "orphan NICs (no row)"),
    ("missing_nics", "missing NICs (row without NIC)"),
    ("repaired", "repaired in the hypervisor"),
    ("repair_failed", "repairs that failed"),
    ("conflicts", "writes refused (an operation won)"),
    ("skipped_busy", "ports skipped (operation in flight)"),
    ("skipped_instances", "instances skipped (refresh in flight)"),
    ("foreign_ports", "ports bound here to unknown devices"),
    ("unknown_domains", "unknown domains"),
)


def heal_view(report: dict[str, Any]) -> RenderableType:
    drift = int(report.get("drift", 0))
    summary = Text.assemble(
        ("heal: ", "bold"),
        f"{report.get('instances', 0)} instance(s), {report.get('ports_seen', 0)} port(s) "
        f"bound here, {report.get('network_requests', 0)} network request(s), "
        f"{float(report.get('seconds', 0.0)):.3f} s; ",
        ("nothing out of line" if drift == 0 else f"{drift} thing(s) out of line", "bold"),
    )
    table = Table(title="what it found and fixed", title_justify="left")
    table.add_column("finding")
    table.add_column("count", justify="right")
    table.add_column("which", overflow="fold")
    for key, label in _HEAL_LISTS:
        items = report.get(key) or []
        if not items:
            continue
        shown = [i if isinstance(i, str) else str(i.get("port_id") or i) for i in items]
        table.add_row(label, str(len(items)), ", ".join(shown[:10]) + (" ..." * (len(shown) > 10)))
    table.add_row("tombstones purged", str(report.get("purged_tombstones", 0)), "")
    return Group(summary, table)
