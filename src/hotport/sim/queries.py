"""List queries as neutron-server 29 runs them: filters, fields, sorting, pagination, links.

Owns: parsing a list request's query parameters (`parse_list_query`), applying them to a list
of resource dicts (`run_list`), the ``<collection>_links`` of a paginated answer
(`pagination_links`) and `fields` selection (`select_fields`).

Never: touches stored state, does I/O, or knows the web framework: it takes the query as
``[(name, value), ...]`` and the request URL as strings.

Concurrency: pure functions.

What the real server does (checked with curl against neutron-server 29.0.0):

* Any attribute marked as a filter may be given; repeated = OR (``id=a&id=b``); different
  attributes AND. Empty values are dropped, and a filter left with no value matches nothing.
  Typed filters are converted (``admin_state_up=maybe`` -> 400 InvalidInput "'maybe' cannot be
  converted to boolean"). Others are compared as given: ``network_id=notauuid`` is not an
  error, it matches nothing. ``fixed_ips=ip_address=X`` / ``fixed_ips=subnet_id=Y`` (and
  ``ip_address_substr``) filter on a port's addresses. An unknown or non-filter attribute ->
  400 HTTPBadRequest "['bogus'] is invalid attribute for filtering".
* ``fields`` (repeated) keeps only those keys; unknown names are ignored; ``fields=`` alone
  gives ``{}`` objects.
* Order: by ``id`` ascending unless ``sort_key``/``sort_dir`` are given (then ``id`` ascending
  breaks ties); their counts must match ("The number of sort_keys and sort_dirs must be same"),
  directions are asc|desc, keys must be sortable ("['x'] is invalid attribute for sort_keys").
* ``limit``: an integer >= 0 (Python int syntax, so ``+2`` works), 0 = no limit, else 400
  BadRequest "Bad limit request: Limit must be an integer 0 or greater and not 'abc'.".
  ``marker`` is used only with a limit; an unknown marker -> 404 <Resource>NotFound.
  ``page_reverse=True`` reads backwards from the marker (from the end without one) and the
  page is returned in forward order; without a limit it just reverses the list.
* Links (only with a limit): ``next`` unless (fewer than limit items and not page_reverse),
  ``previous`` unless (fewer than limit items and page_reverse). Each href is the request URL
  with its query re-encoded (``urllib.parse.urlencode``, original order) minus ``marker`` and
  ``page_reverse``, then ``marker`` = last (next) or first (previous) id of the page when the
  page is not empty, and ``page_reverse=True`` for previous.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SimError, bad_request, http_bad_request
from .schema import check_filters, check_sort_keys, to_bool

__all__ = [
    "CONTROL_PARAMS",
    "ListQuery",
    "not_found_error",
    "pagination_links",
    "parse_list_query",
    "run_list",
    "select_fields",
]

CONTROL_PARAMS = frozenset({"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"})

_NOT_FOUND = {
    "network": ("NetworkNotFound", "Network {} could not be found."),
    "subnet": ("SubnetNotFound", "Subnet {} could not be found."),
    "port": ("PortNotFound", "Port {} could not be found."),
    "router": ("RouterNotFound", "Router {} could not be found"),
    "floatingip": ("FloatingIPNotFound", "Floating IP {} could not be found"),
    "security_group": ("SecurityGroupNotFound", "Security group {} does not exist"),
}


def not_found_error(resource: str, rid: str) -> SimError:
    type_, msg = _NOT_FOUND[resource]
    return SimError(type_, msg.format(rid), status=404)


@dataclass
class ListQuery:
    filters: dict[str, list[Any]] = field(default_factory=dict)
    fields: list[str] | None = None  # None: all fields
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False


def parse_limit(raw: str) -> int | None:
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if limit < 0:
        raise bad_request("limit", f"Limit must be an integer 0 or greater and not '{raw}'")
    return limit or None


def parse_fields(params: Sequence[tuple[str, str]]) -> list[str] | None:
    values = [v for k, v in params if k == "fields"]
    if not values:
        return None
    return [v for v in values if v]


def parse_list_query(resource: str, params: Sequence[tuple[str, str]]) -> ListQuery:
    """Validate and convert a list request's query parameters."""
    q = ListQuery()
    raw_filters: dict[str, list[str]] = {}
    for key, value in params:
        if key not in CONTROL_PARAMS:
            raw_filters.setdefault(key, []).append(value)
    q.filters = check_filters(resource, raw_filters)
    q.fields = parse_fields(params)
    keys = [v for k, v in params if k == "sort_key"]
    dirs = [v for k, v in params if k == "sort_dir"]
    if len(keys) != len(dirs):
        raise http_bad_request("The number of sort_keys and sort_dirs must be same")
    absent = [d for d in dirs if d not in ("asc", "desc")]
    if absent:
        raise http_bad_request(
            f"{absent} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
        )
    check_sort_keys(resource, keys)
    q.sort = [(k, d == "asc") for k, d in zip(keys, dirs, strict=True)]
    if "id" not in keys:
        q.sort.append(("id", True))
    limits = [v for k, v in params if k == "limit"]
    if limits:
        q.limit = parse_limit(limits[-1])
    markers = [v for k, v in params if k == "marker"]
    q.marker = markers[-1] if markers else None
    reverse = [v for k, v in params if k == "page_reverse"]
    q.page_reverse = to_bool(reverse[-1]) if reverse else False
    return q


def _matches(resource: str, item: Mapping[str, Any], key: str, values: list[Any]) -> bool:
    if not values:
        return False
    if resource == "port" and key == "fixed_ips":
        wanted: dict[str, list[str]] = {}
        for v in values:
            k, _, val = str(v).partition("=")
            wanted.setdefault(k, []).append(val)
        for k, vals in wanted.items():
            ips = item.get("fixed_ips") or []
            if k == "ip_address_substr":
                ok = any(val in ip["ip_address"] for ip in ips for val in vals)
            elif k in ("ip_address", "subnet_id"):
                ok = any(ip.get(k) in vals for ip in ips)
            else:
                ok = True
            if not ok:
                return False
        return True
    current = item.get(key)
    if key == "tags":
        have = set(current or [])
        return any(set(str(v).split(",")) <= have for v in values)
    if isinstance(current, list):
        return any(str(v) in [str(c) for c in current] for v in values)
    if isinstance(current, bool):
        return any(current == v for v in values)
    if current is None:
        return False
    return any(str(current) == str(v) for v in values)


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, (list, dict)):
        return (1, str(value))
    return (1, value)


def _sorter(key: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    return lambda it: _sort_value(it.get(key))


def run_list(resource: str, items: Sequence[dict[str, Any]], q: ListQuery) -> list[dict[str, Any]]:
    """Filter, sort and page `items` (full resource dicts). Fields are selected later."""
    out = [
        it for it in items if all(_matches(resource, it, k, vals) for k, vals in q.filters.items())
    ]
    for key, ascending in reversed(q.sort):
        out.sort(key=_sorter(key), reverse=not ascending)
    if q.page_reverse:
        out.reverse()
    if q.limit is None:
        return out
    if q.marker is not None:
        idx = next((i for i, it in enumerate(out) if it.get("id") == q.marker), None)
        if idx is None:
            if q.marker not in {it.get("id") for it in items}:
                raise not_found_error(resource, q.marker)
            # the marker exists but is filtered out: Neutron pages from its sort position
            marker_item = next(it for it in items if it.get("id") == q.marker)
            idx = _position(out, marker_item, q) - 1
        out = out[idx + 1 :]
    page = out[: q.limit]
    if q.page_reverse:
        page.reverse()
    return page


def _position(out: list[dict[str, Any]], marker: Mapping[str, Any], q: ListQuery) -> int:
    """Index of the first item of `out` that sorts after `marker`."""

    def key(it: Mapping[str, Any]) -> list[tuple[int, Any]]:
        return [_sort_value(it.get(k)) for k, _ in q.sort]

    mk = key(marker)
    for i, it in enumerate(out):
        ik = key(it)
        for (a, b), (_, asc) in zip(zip(ik, mk, strict=True), q.sort, strict=True):
            if a == b:
                continue
            after = (a > b) if (asc != q.page_reverse) else (a < b)
            if after:
                return i
            break
    return len(out)


def select_fields(item: Mapping[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return dict(item)
    return {k: item[k] for k in fields if k in item}


def pagination_links(
    url: str,
    params: Sequence[tuple[str, str]],
    page: Sequence[Mapping[str, Any]],
    q: ListQuery,
) -> list[dict[str, str]] | None:
    """``<collection>_links`` for a list answer, or None when there is no limit.

    `url` is the request URL without the query (scheme://host/v2.0/ports).
    """
    if q.limit is None:
        return None
    base = [(k, v) for k, v in params if k not in ("marker", "page_reverse")]
    links: list[dict[str, str]] = []
    short = len(page) < q.limit
    if not (short and not q.page_reverse):
        nxt = list(base)
        if page:
            nxt.append(("marker", str(page[-1]["id"])))
        links.append({"rel": "next", "href": f"{url}?{urllib.parse.urlencode(nxt)}"})
    if not (short and q.page_reverse):
        prev = list(base)
        if page:
            prev.append(("marker", str(page[0]["id"])))
        prev.append(("page_reverse", "True"))
        links.append({"rel": "previous", "href": f"{url}?{urllib.parse.urlencode(prev)}"})
    return links
