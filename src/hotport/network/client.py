"""The Neutron v2.0 REST client hotport uses: each call is exactly one HTTP request.

Owns: `NeutronClient` — one `httpx.AsyncClient` (one connection pool) per client, the
per-attempt timeout and per-call deadline, the retry loop (policy in `retry.py`), the 401
invalidate-and-retry-once, translation of every httpx / pydantic failure into the tree of
`errors.py` (cause chained), request counting and observers (`observe.py`), and the
calls: `show_port`, `list_ports`, `bind_port`, `unbind_port`, `create_port`,
`delete_port`, `show_network`, `list_networks`, `list_subnets`, `list_floating_ips`.
(`show_network`, the floating-IP lookup by fixed address and the network list by project
and `shared` are what upstream Nova sends; only the reference designs of
`hotport.engine.reference` use them.)

Request budget: each call is ONE HTTP request, except that (a) a list whose id filter is
longer than `id_chunk` ids is split into ceil(n / id_chunk) requests, sent concurrently,
and (b) a list answer carrying a `<resource>_links` `rel=next` link (a server with
`pagination_max_limit`) is followed, one request per page. Every request, page, chunk
and retry is counted (`counters`, `retry_counters`) and reported to observers. A list
call given an EMPTY id list sends nothing and returns `[]`.

Must never: log or record headers, tokens or bodies; retry a 4xx or a 500; retry a write
whose answer was lost (it raises with `maybe_applied=True`); send `X-Project-Id`; build a
URL from an empty id (that would turn `show_port("")` into a list of every port).

Concurrency: one event loop. Any number of calls may run concurrently on one client;
they share the connection pool and the counters (mutated between awaits, no lock).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar, overload
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pydantic

from hotport.network.auth import AuthProvider, SupportsAclose
from hotport.network.errors import (
    DeadlineExceeded,
    MalformedResponse,
    NetworkServiceError,
    NotFound,
    PermanentError,
    Unavailable,
    error_from_response,
)
from hotport.network.models import FloatingIP, Network, NeutronResource, PartialPort, Port, Subnet
from hotport.network.observe import Observer, RequestRecord, RequestStats
from hotport.network.retry import READ_METHODS, Backoff, Deadline, retryable_status

__all__ = ["API_PREFIX", "NeutronClient"]

API_PREFIX = "/v2.0"

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
_M = TypeVar("_M", bound=NeutronResource)

# httpx failures where the request never reached the service: safe to retry for any method
_NOT_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ProxyError)
_NOT_SENT_TIMEOUT: tuple[type[Exception], ...] = (httpx.ConnectTimeout, httpx.PoolTimeout)
# the request (maybe) reached the service, the answer was lost
_LOST_TIMEOUT: tuple[type[Exception], ...] = (httpx.ReadTimeout, httpx.WriteTimeout, TimeoutError)
_LOST: tuple[type[Exception], ...] = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


@dataclass(slots=True)
class _Op:
    """One HTTP request of a call."""

    call: str
    method: str
    template: str  # e.g. /v2.0/ports/{port_id}: safe for metrics and logs
    path: str  # below /v2.0, ids quoted
    timeout: float
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path


class NeutronClient:
    """Async Neutron v2.0 client with deadlines, bounded retries, counters and observers.

    `read_timeout` / `write_timeout` bound each HTTP attempt of a GET / of a write;
    `read_deadline` / `write_deadline` bound a whole call (every attempt, page and chunk
    and the backoff sleeps). Both are overridable per call (`attempt_timeout=`, `deadline=`).
    `retries` is the number of retries after the first attempt for transient failures;
    `sleep`, `clock` and `backoff.rng` are injectable so tests use no wall time.
    `own_auth=True` makes `aclose()` close the auth provider too (if it has `aclose`).
    """

    def __init__(
        self,
        auth: AuthProvider,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        read_timeout: float = 10.0,
        write_timeout: float = 30.0,
        read_deadline: float = 30.0,
        write_deadline: float = 60.0,
        retries: int = 3,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        id_chunk: int = 100,
        max_connections: int = 100,
        own_auth: bool = False,
    ) -> None:
        if min(read_timeout, write_timeout, read_deadline, write_deadline) <= 0:
            raise ValueError("timeouts and deadlines must be positive")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if id_chunk < 1:
            raise ValueError("id_chunk must be >= 1")
        self._auth = auth
        self._own_auth = own_auth
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.read_deadline = read_deadline
        self.write_deadline = write_deadline
        self.retries = retries
        self.backoff = backoff or Backoff()
        self.id_chunk = id_chunk
        self._sleep = sleep
        self._clock = clock
        self._stats = RequestStats()
        self._http = httpx.AsyncClient(
            transport=transport,
            # with an injected transport, proxy settings from the environment must not
            # mount other transports over it
            trust_env=transport is None,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json", "User-Agent": "hotport"},
            timeout=httpx.Timeout(read_timeout),
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._own_auth and isinstance(self._auth, SupportsAclose):
            await self._auth.aclose()

    def __repr__(self) -> str:
        return f"NeutronClient(auth={self._auth!r}, retries={self.retries})"

    # -- counting and observing --------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """HTTP requests by call name, first attempts only (each page and chunk counts)."""
        return self._stats.requests

    @property
    def retry_counters(self) -> dict[str, int]:
        """Extra attempts by call name (transient retries and the 401 re-auth retry)."""
        return self._stats.retries

    @property
    def total_requests(self) -> int:
        """Every HTTP attempt made, retries included."""
        return self._stats.total_requests

    def reset_counters(self) -> None:
        self._stats.reset()

    def add_observer(self, fn: Observer) -> None:
        """Call `fn(RequestRecord)` after every HTTP attempt (synchronously, on the loop)."""
        self._stats.add_observer(fn)

    def remove_observer(self, fn: Observer) -> None:
        self._stats.remove_observer(fn)

    # -- ports -------------------------------------------------------------------------

    async def show_port(
        self, port_id: str, *, attempt_timeout: float | None = None, deadline: float | None = None
    ) -> Port:
        """`GET /v2.0/ports/{port_id}`."""
        op = self._op(
            "show_port", "GET", "/ports/{port_id}", f"/ports/{_seg(port_id)}", attempt_timeout
        )
        return await self._one(op, "port", Port, deadline)

    @overload
    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = ...,
        device_id: str | None = ...,
        device_owner: str | None = ...,
        network_id: str | None = ...,
        host: str | None = ...,
        fields: None = ...,
        attempt_timeout: float | None = ...,
        deadline: float | None = ...,
    ) -> list[Port]: ...

    @overload
    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = ...,
        device_id: str | None = ...,
        device_owner: str | None = ...,
        network_id: str | None = ...,
        host: str | None = ...,
        fields: Sequence[str],
        attempt_timeout: float | None = ...,
        deadline: float | None = ...,
    ) -> list[PartialPort]: ...

    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = None,
        device_id: str | None = None,
        device_owner: str | None = None,
        network_id: str | None = None,
        host: str | None = None,
        fields: Sequence[str] | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[Port] | list[PartialPort]:
        """`GET /v2.0/ports?id=a&id=b&device_id=..&binding:host_id=..&fields=..`.

        With `fields`, Neutron returns only those keys: the result is `PartialPort`s.
        """
        params: list[tuple[str, str]] = []
        for name, value in (
            ("device_id", device_id),
            ("device_owner", device_owner),
            ("network_id", network_id),
            ("binding:host_id", host),
        ):
            if value is not None:
                params.append((name, value))
        params.extend(("fields", f) for f in _strs("fields", fields or ()))
        rows = await self._list(
            "list_ports", "ports", "/ports", params, [("id", ids)], attempt_timeout, deadline
        )
        if fields is not None:
            return self._parse_many(rows, PartialPort, "list_ports", "/ports")
        return self._parse_many(rows, Port, "list_ports", "/ports")

    async def bind_port(
        self,
        port_id: str,
        *,
        device_id: str,
        host: str,
        device_owner: str = "compute:nova",
        revision: int | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Port:
        """ONE `PUT /v2.0/ports/{id}` setting device_id, device_owner and binding:host_id.

        With `revision`, the write carries `If-Match: revision_number=N`: it fails with
        `RevisionMismatch` (412) if anybody changed the port since revision N was read.
        """
        if not device_id or not host:
            raise ValueError("bind_port needs a non-empty device_id and host")
        body = {
            "port": {"device_id": device_id, "device_owner": device_owner, "binding:host_id": host}
        }
        return await self._update_port(
            "bind_port", port_id, body, revision, attempt_timeout, deadline
        )

    async def unbind_port(
        self,
        port_id: str,
        *,
        revision: int | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Port:
        """ONE `PUT` clearing device_id, device_owner and binding:host_id.

        Idempotent: unbinding an unbound port succeeds (and still costs one request).
        Real Neutron then shows `binding:host_id == ""` and `binding:vif_type == "unbound"`.
        """
        body = {"port": {"device_id": "", "device_owner": "", "binding:host_id": None}}
        return await self._update_port(
            "unbind_port", port_id, body, revision, attempt_timeout, deadline
        )

    async def create_port(
        self,
        network_id: str,
        *,
        device_id: str,
        host: str,
        device_owner: str = "compute:nova",
        fixed_ips: Sequence[Mapping[str, str]] | None = None,
        project_id: str | None = None,
        name: str | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Port:
        """ONE `POST /v2.0/ports` creating the port already bound to `device_id` on `host`.

        Not retried after a 502/504 or a lost answer (it could create a second port):
        those raise with `maybe_applied=True`; look the port up by device_id before
        trying again.
        """
        if not network_id or not device_id or not host:
            raise ValueError("create_port needs a non-empty network_id, device_id and host")
        port: dict[str, Any] = {
            "network_id": network_id,
            "device_id": device_id,
            "device_owner": device_owner,
            "binding:host_id": host,
        }
        if fixed_ips is not None:
            port["fixed_ips"] = [dict(ip) for ip in fixed_ips]
        if project_id is not None:
            port["project_id"] = project_id
        if name is not None:
            port["name"] = name
        op = self._op(
            "create_port", "POST", "/ports", "/ports", attempt_timeout, json={"port": port}
        )
        return await self._one(op, "port", Port, deadline)

    async def delete_port(
        self,
        port_id: str,
        *,
        missing_ok: bool = True,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> bool:
        """`DELETE /v2.0/ports/{id}`. True if deleted, False if it was already gone
        (`missing_ok=True`; otherwise `PortNotFound` is raised)."""
        op = self._op(
            "delete_port", "DELETE", "/ports/{port_id}", f"/ports/{_seg(port_id)}", attempt_timeout
        )
        try:
            await self._request(op, self._deadline(op, deadline))
        except NotFound:
            if missing_ok:
                return False
            raise
        return True

    # -- networks, subnets, floating IPs -----------------------------------------------

    @overload
    async def show_network(
        self,
        network_id: str,
        *,
        fields: None = ...,
        attempt_timeout: float | None = ...,
        deadline: float | None = ...,
    ) -> Network: ...

    @overload
    async def show_network(
        self,
        network_id: str,
        *,
        fields: Sequence[str],
        attempt_timeout: float | None = ...,
        deadline: float | None = ...,
    ) -> dict[str, Any]: ...

    async def show_network(
        self,
        network_id: str,
        *,
        fields: Sequence[str] | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Network | dict[str, Any]:
        """`GET /v2.0/networks/{network_id}` (`?fields=a&fields=b`).

        With `fields`, Neutron returns only those keys (none at all when the network has
        none of them, e.g. `segments` of a single-segment network), so the answer is the
        network object as sent, not a `Network`.
        """
        params = [("fields", f) for f in _strs("fields", fields or ())]
        op = self._op(
            "show_network", "GET", "/networks/{network_id}", f"/networks/{_seg(network_id)}",
            attempt_timeout, params=params,
        )  # fmt: skip
        if fields is None:
            return await self._one(op, "network", Network, deadline)
        return await self._one_raw(op, "network", deadline)

    async def list_networks(
        self,
        ids: Sequence[str] | None = None,
        *,
        shared: bool | None = None,
        project_id: str | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[Network]:
        """`GET /v2.0/networks?id=a&id=b...&shared=..&tenant_id=..`.

        An empty id list sends nothing; `ids=None` lists every network the other filters
        match (ONE request, pages followed), as Nova's "networks available to the project"
        (`tenant_id=P&shared=False`, then `shared=True`) does.
        """
        params: list[tuple[str, str]] = []
        if project_id is not None:
            params.append(("tenant_id", project_id))
        if shared is not None:
            params.append(("shared", "True" if shared else "False"))
        rows = await self._list(
            "list_networks",
            "networks",
            "/networks",
            params,
            [("id", ids)],
            attempt_timeout,
            deadline,
        )
        return self._parse_many(rows, Network, "list_networks", "/networks")

    async def list_subnets(
        self,
        *,
        ids: Sequence[str] | None = None,
        network_ids: Sequence[str] | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[Subnet]:
        """`GET /v2.0/subnets?id=..&network_id=..` (an empty list sends nothing)."""
        rows = await self._list(
            "list_subnets",
            "subnets",
            "/subnets",
            [],
            [("id", ids), ("network_id", network_ids)],
            attempt_timeout,
            deadline,
        )
        return self._parse_many(rows, Subnet, "list_subnets", "/subnets")

    async def list_floating_ips(
        self,
        port_ids: Sequence[str] | None,
        *,
        fixed_ip_address: str | None = None,
        attempt_timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[FloatingIP]:
        """`GET /v2.0/floatingips?port_id=a&port_id=b...` (an empty list sends nothing).

        `port_ids=None` lists every floating IP the credentials can see, in ONE request
        whatever their number: the heal uses it when its ports are too many for one URL.
        `fixed_ip_address` keeps those mapped to that fixed IP (Nova's lookup, one per
        fixed IP of a port: `?fixed_ip_address=X&port_id=P`).
        """
        params: list[tuple[str, str]] = []
        if fixed_ip_address is not None:
            if not isinstance(fixed_ip_address, str) or not fixed_ip_address:
                raise ValueError(
                    f"fixed_ip_address must be a non-empty string: {fixed_ip_address!r}"
                )
            params.append(("fixed_ip_address", fixed_ip_address))
        rows = await self._list(
            "list_floating_ips",
            "floatingips",
            "/floatingips",
            params,
            [("port_id", port_ids)],
            attempt_timeout,
            deadline,
        )
        return self._parse_many(rows, FloatingIP, "list_floating_ips", "/floatingips")

    # -- building requests -------------------------------------------------------------

    def _op(
        self,
        call: str,
        method: str,
        template: str,
        path: str,
        attempt_timeout: float | None,
        *,
        params: list[tuple[str, str]] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> _Op:
        if attempt_timeout is not None and attempt_timeout <= 0:
            raise ValueError("attempt_timeout must be positive")
        default = self.read_timeout if method in READ_METHODS else self.write_timeout
        return _Op(
            call=call,
            method=method,
            template=API_PREFIX + template,
            path=path,
            timeout=attempt_timeout or default,
            params=params or [],
            json=json,
            headers=headers or {},
        )

    def _deadline(self, op: _Op, seconds: float | None) -> Deadline:
        default = self.read_deadline if op.method in READ_METHODS else self.write_deadline
        return Deadline(seconds if seconds is not None else default, self._clock)

    async def _update_port(
        self,
        call: str,
        port_id: str,
        body: dict[str, Any],
        revision: int | None,
        attempt_timeout: float | None,
        deadline: float | None,
    ) -> Port:
        headers = {}
        if revision is not None:
            if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
                raise ValueError(f"revision must be a non-negative int, got {revision!r}")
            headers["If-Match"] = f"revision_number={revision}"
        op = self._op(
            call, "PUT", "/ports/{port_id}", f"/ports/{_seg(port_id)}", attempt_timeout,
            json=body, headers=headers,
        )  # fmt: skip
        return await self._one(op, "port", Port, deadline)

    # -- answers -----------------------------------------------------------------------

    async def _one(self, op: _Op, key: str, model: type[_M], deadline: float | None) -> _M:
        return _validate(model, await self._one_raw(op, key, deadline), op)

    async def _one_raw(self, op: _Op, key: str, deadline: float | None) -> dict[str, Any]:
        response = await self._request(op, self._deadline(op, deadline))
        body = _json_object(response, op)
        obj = body.get(key)
        if not isinstance(obj, dict):
            raise _malformed(op, f"the answer has no {key!r} object")
        return obj

    def _parse_many(
        self, rows: list[dict[str, Any]], model: type[_M], call: str, path: str
    ) -> list[_M]:
        op = _Op(call=call, method="GET", template=API_PREFIX + path, path=path, timeout=1.0)
        return [_validate(model, row, op) for row in rows]

    async def _list(
        self,
        call: str,
        key: str,
        path: str,
        params: list[tuple[str, str]],
        id_filters: Sequence[tuple[str, Sequence[str] | None]],
        attempt_timeout: float | None,
        deadline: float | None,
    ) -> list[dict[str, Any]]:
        """One request per (chunk of each id filter), concurrently; pages followed."""
        groups: list[list[list[tuple[str, str]]]] = []
        for name, values in id_filters:
            if values is None:
                continue
            unique = list(dict.fromkeys(_strs(name, values)))
            if not unique:
                return []  # an empty filter matches nothing: no request
            groups.append(
                [
                    [(name, v) for v in unique[i : i + self.id_chunk]]
                    for i in range(0, len(unique), self.id_chunk)
                ]
            )
        template_op = self._op(call, "GET", path, path, attempt_timeout)
        dl = self._deadline(template_op, deadline)
        queries = [
            [*itertools.chain.from_iterable(combo), *params] for combo in itertools.product(*groups)
        ]
        if len(queries) == 1:
            return await self._pages(template_op, key, queries[0], dl)
        pages = await _gather_first_error(
            [self._pages(template_op, key, query, dl) for query in queries]
        )
        return [row for page in pages for row in page]

    async def _pages(
        self, base: _Op, key: str, params: list[tuple[str, str]], dl: Deadline
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        op = _Op(base.call, "GET", base.template, base.path, base.timeout, params=params)
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        while True:
            body = _json_object(await self._request(op, dl), op)
            page = body.get(key)
            if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
                raise _malformed(op, f"the answer has no {key!r} list of objects")
            rows.extend(page)
            href = _next_href(body.get(f"{key}_links"))
            if href is None:
                return rows
            path, query = _below_api(href, op)
            marker = (path, tuple(query))
            if marker in seen:
                raise _malformed(op, "the next-page links loop")
            seen.add(marker)
            op = _Op(base.call, "GET", base.template, path, base.timeout, params=query)

    # -- the retry loop ----------------------------------------------------------------

    async def _request(self, op: _Op, dl: Deadline) -> httpx.Response:
        """Send `op` until it succeeds, fails for good, or the deadline passes."""
        is_read = op.method in READ_METHODS
        attempt = 0
        transient_retries = 0
        reauthed = False
        maybe_applied = False
        last: NetworkServiceError | None = None
        while True:
            attempt += 1
            if dl.remaining() <= 0:
                raise self._deadline_error(op, dl, attempt - 1, maybe_applied, last) from last
            try:
                async with asyncio.timeout(dl.remaining()):
                    auth_headers = await self._auth.headers()
                    root = await self._auth.endpoint()
            except TimeoutError as exc:
                raise DeadlineExceeded(
                    f"the {dl.seconds:g}s deadline passed while authenticating",
                    call=op.call, method=op.method, path=op.full_path,
                    attempts=attempt - 1, maybe_applied=maybe_applied,
                ) from exc  # fmt: skip
            budget = min(op.timeout, dl.remaining())
            if budget <= 0:
                raise self._deadline_error(op, dl, attempt - 1, maybe_applied, last) from last
            self._stats.count(op.call, attempt)
            started = self._clock()
            response: httpx.Response | None = None
            err: NetworkServiceError | None = None
            cause: BaseException | None = None
            transport_error: str | None = None
            retry = False
            try:
                async with asyncio.timeout(budget):
                    response = await self._http.request(
                        op.method,
                        _url(root, op.path),
                        params=list(op.params),
                        json=op.json,
                        headers={**auth_headers, **op.headers},
                        timeout=httpx.Timeout(budget),
                    )
            except (*_NOT_SENT, *_NOT_SENT_TIMEOUT, *_LOST_TIMEOUT, *_LOST) as exc:
                cause, transport_error = exc, type(exc).__name__
                err, retry, lost = _transport_failure(exc, op, is_read, budget)
                maybe_applied = maybe_applied or lost
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                cause, transport_error = exc, type(exc).__name__
                err = PermanentError(f"{type(exc).__name__}: {exc}")
                maybe_applied = maybe_applied or not is_read
            duration = self._clock() - started

            if response is not None:
                status = response.status_code
                if 200 <= status < 300:
                    self._emit(op, attempt, duration, status, None)
                    return response
                if status == 401 and not reauthed:
                    reauthed = True
                    self._emit(op, attempt, duration, status, "Unauthorized", will_retry=True)
                    await self._auth.invalidate()
                    continue
                maybe_applied = maybe_applied or (not is_read and status in (502, 504))
                err = error_from_response(
                    status,
                    response.content,
                    content_type=response.headers.get("content-type"),
                    reason=response.reason_phrase,
                )
                retry = retryable_status(op.method, status)

            assert err is not None
            _fill(err, op, attempt, maybe_applied, response)
            if cause is not None:
                err.__cause__ = cause
            delay = 0.0
            deadline_stop = False
            if retry and transient_retries < self.retries:
                delay = self.backoff.delay(transient_retries + 1)
                deadline_stop = delay >= dl.remaining()
            will_retry = retry and transient_retries < self.retries and not deadline_stop
            self._emit(
                op,
                attempt,
                duration,
                response.status_code if response is not None else None,
                type(err).__name__,
                will_retry=will_retry,
                transport_error=transport_error,
            )
            if deadline_stop:
                raise self._deadline_error(op, dl, attempt, maybe_applied, err) from err
            if not will_retry:
                raise err
            transient_retries += 1
            last = err
            await self._sleep(delay)

    def _deadline_error(
        self,
        op: _Op,
        dl: Deadline,
        attempts: int,
        maybe_applied: bool,
        last: NetworkServiceError | None,
    ) -> DeadlineExceeded:
        why = f"; last error: {last.message}" if last is not None else ""
        return DeadlineExceeded(
            f"the {dl.seconds:g}s deadline of the call does not allow another attempt{why}",
            status=last.status if last is not None else None,
            call=op.call,
            method=op.method,
            path=op.full_path,
            request_id=last.request_id if last is not None else None,
            attempts=attempts,
            maybe_applied=maybe_applied,
        )

    def _emit(
        self,
        op: _Op,
        attempt: int,
        duration: float,
        status: int | None,
        error: str | None,
        *,
        will_retry: bool = False,
        transport_error: str | None = None,
    ) -> None:
        self._stats.emit(
            RequestRecord(
                call=op.call,
                method=op.method,
                path=op.template,
                status=status,
                error=error,
                attempt=attempt,
                duration=duration,
                will_retry=will_retry,
                transport_error=transport_error,
            )
        )


# -- helpers (pure) ---------------------------------------------------------------------


def _seg(value: str) -> str:
    """One URL path segment from an id; an empty id is refused (it would change the URL)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an id must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _strs(name: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of strings, not a string")
    out = list(values)
    for v in out:
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name} must hold non-empty strings, got {v!r}")
    return out


def _url(root: str, path: str) -> str:
    root = root.rstrip("/")
    if not root.endswith(API_PREFIX):
        root += API_PREFIX
    return root + path


def _fill(
    err: NetworkServiceError,
    op: _Op,
    attempt: int,
    maybe_applied: bool,
    response: httpx.Response | None,
) -> None:
    err.call = op.call
    err.method = op.method
    err.path = op.full_path
    err.attempts = attempt
    err.maybe_applied = maybe_applied
    if response is not None:
        err.request_id = response.headers.get("x-openstack-request-id")


def _transport_failure(
    exc: Exception, op: _Op, is_read: bool, budget: float
) -> tuple[NetworkServiceError, bool, bool]:
    """(error, retryable, maybe_applied) for an attempt that got no answer."""
    name = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return Unavailable(f"could not connect ({name})"), True, False
    if isinstance(exc, _NOT_SENT_TIMEOUT):
        return DeadlineExceeded(f"could not connect within {budget:g}s ({name})"), True, False
    if isinstance(exc, _LOST_TIMEOUT):
        what = "" if is_read else "; the outcome of the write is unknown"
        err = DeadlineExceeded(f"no answer within {budget:g}s ({name}){what}")
        return err, is_read, not is_read
    what = "" if is_read else "; the outcome of the write is unknown"
    return Unavailable(f"the connection failed mid-request ({name}){what}"), is_read, not is_read


def _malformed(op: _Op, why: str) -> MalformedResponse:
    return MalformedResponse(why, call=op.call, method=op.method, path=op.full_path)


def _json_object(response: httpx.Response, op: _Op) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        err = _malformed(op, f"the {response.status_code} answer is not JSON")
        err.request_id = response.headers.get("x-openstack-request-id")
        raise err from exc
    if not isinstance(data, dict):
        raise _malformed(op, f"the {response.status_code} answer is not a JSON object")
    return data


def _validate(model: type[_M], obj: dict[str, Any], op: _Op) -> _M:
    try:
        return model.model_validate(obj)
    except pydantic.ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise _malformed(op, f"unexpected {model.__name__} shape (fields: {fields})") from exc


def _next_href(links: object) -> str | None:
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
            if isinstance(href, str) and href:
                return href
    return None


def _below_api(href: str, op: _Op) -> tuple[str, list[tuple[str, str]]]:
    """The path below /v2.0 and the query of a next-page link.

    The link's scheme and host are ignored: the request goes to our endpoint (a server
    behind a proxy builds links with its own host name).
    """
    parts = urlsplit(href)
    index = parts.path.find(API_PREFIX + "/")
    if index < 0:
        raise _malformed(op, "a next-page link outside /v2.0")
    path = parts.path[index + len(API_PREFIX) :]
    return path, parse_qsl(parts.query, keep_blank_values=True)


_T = TypeVar("_T")


async def _gather_first_error(coros: Sequence[Awaitable[_T]]) -> list[_T]:
    """Run concurrently; on the first failure cancel the rest and raise that failure."""
    tasks: list[asyncio.Task[_T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                tasks.append(group.create_task(_await(coro)))
    except BaseExceptionGroup as eg:
        first = eg.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from first.__cause__
    return [t.result() for t in tasks]


async def _await(aw: Awaitable[_T]) -> _T:
    return await aw
