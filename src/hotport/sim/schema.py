"""Attribute maps of the simulated Neutron resources and request-body validation.

Owns: which attributes each resource has, which may be POSTed or PUT, their converters and
validators (messages copied from neutron-lib 3.x/5.x as served by neutron-server 29), which
attributes are valid list filters and sort keys, and `parse_body`, which turns a request body
into a clean attribute dict in the same order of checks as Neutron's
``prepare_request_body``: resource key present -> object is a dict -> project ids ->
unknown attributes -> required / not-allowed-in-POST / read-only-in-PUT -> convert + validate.

Never: does I/O, knows HTTP, or looks at stored state (checks needing state live in
`state.py`).

Concurrency: module-level tables are immutable after import; functions are pure.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import http_bad_request, invalid_input

__all__ = [
    "ATTRIBUTES",
    "COLLECTIONS",
    "Attr",
    "check_filters",
    "check_sort_keys",
    "is_uuid_like",
    "normalize_mac",
    "parse_body",
    "to_bool",
    "to_int",
]

Validator = Callable[[Any], str | None]  # returns the reason when invalid
Converter = Callable[[Any], Any]  # raises SimError (InvalidInput) when it cannot convert


def _fmt(data: Any) -> str:
    return f"'{data}'"


# ------------------------------------------------------------------ converters
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def to_bool(data: Any) -> bool:
    """neutron-lib convert_to_boolean (oslo strutils.bool_from_string, strict)."""
    if isinstance(data, bool):
        return data
    if isinstance(data, int) and data in (0, 1):
        return bool(data)
    if isinstance(data, str):
        low = data.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise invalid_input(f"{_fmt(data)} cannot be converted to boolean")


def to_int(data: Any) -> int:
    """neutron-lib convert_to_int."""
    if isinstance(data, bool):
        return int(data)
    try:
        return int(data)
    except (ValueError, TypeError):
        raise invalid_input(f"{_fmt(data)} is not an integer") from None


def _to_int_or_none(data: Any) -> int | None:
    return None if data is None else to_int(data)


def _none_to_empty_string(data: Any) -> Any:
    return "" if data is None else data


def _none_to_empty_list(data: Any) -> Any:
    return [] if data is None else data


def _none_to_empty_dict(data: Any) -> Any:
    return {} if data is None else data


# ------------------------------------------------------------------ validators
def _string(max_len: int | None = 255) -> Validator:
    def check(data: Any) -> str | None:
        if not isinstance(data, str):
            return f"{_fmt(data)} is not a valid string"
        if max_len is not None and len(data) > max_len:
            return f"{_fmt(data)} exceeds maximum length of {max_len}"
        return None

    return check


def _string_or_none(max_len: int = 255) -> Validator:
    inner = _string(max_len)
    return lambda data: None if data is None else inner(data)


_UUID_STRIP = re.compile(r"[{}\-]|urn:uuid:")


def is_uuid_like(val: Any) -> bool:
    """oslo uuidutils.is_uuid_like: hex with or without dashes, braces, urn prefix."""
    if not isinstance(val, str):
        return False
    try:
        return uuid.UUID(val).hex == _UUID_STRIP.sub("", val.lower())
    except (TypeError, ValueError, AttributeError):
        return False


def _uuid(data: Any) -> str | None:
    return None if is_uuid_like(data) else f"{_fmt(data)} is not a valid UUID"


def _uuid_or_none(data: Any) -> str | None:
    return None if data is None else _uuid(data)


def _uuid_list(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"{_fmt(data)} is not a list"
    for item in data:
        reason = _uuid(item)
        if reason:
            return reason
    if len(set(data)) != len(data):
        return f"Duplicate items in the list: '{', '.join(map(str, data))}'"
    return None


_MAC_RE = re.compile(
    r"^([0-9a-fA-F]{1,2})([:\-])" + r"([0-9a-fA-F]{1,2})\2" * 4 + r"([0-9a-fA-F]{1,2})$"
)
_MAC_BARE = re.compile(r"^[0-9a-fA-F]{12}$")
_INVALID_MACS = {"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"}


def normalize_mac(data: Any) -> str | None:
    """The MAC in Neutron's stored form (lower case, colons), or None if not a MAC."""
    if not isinstance(data, str) or data != data.strip() or " " in data:
        return None
    m = _MAC_RE.match(data)
    if m:
        octets = [m.group(1), m.group(3), m.group(4), m.group(5), m.group(6), m.group(7)]
    elif _MAC_BARE.match(data):
        octets = [data[i : i + 2] for i in range(0, 12, 2)]
    else:
        return None
    mac = ":".join(f"{int(o, 16):02x}" for o in octets)
    return None if mac in _INVALID_MACS else mac


def _mac(data: Any) -> str | None:
    return None if normalize_mac(data) else f"{_fmt(data)} is not a valid MAC address"


def _mac_or_none(data: Any) -> str | None:
    """None asks for a new generated MAC (neutron-server accepts it and allocates one)."""
    return None if data is None else _mac(data)


def _ip(data: Any) -> str | None:
    if not isinstance(data, str):
        return f"{_fmt(data)} is not a valid IP address"
    try:
        ipaddress.ip_address(data)
    except ValueError:
        return f"{_fmt(data)} is not a valid IP address"
    return None


def _ip_or_none(data: Any) -> str | None:
    return None if data is None else _ip(data)


def _dict(data: Any) -> str | None:
    return None if isinstance(data, dict) else f"{_fmt(data)} is not a dictionary"


def _dict_or_none(data: Any) -> str | None:
    return None if data is None else _dict(data)


def _list(data: Any) -> str | None:
    return None if isinstance(data, list) else f"{_fmt(data)} is not a list"


def _string_list(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"{_fmt(data)} is not a list"
    for item in data:
        reason = _string(255)(item)
        if reason:
            return reason
    return None


def _values(*valid: Any) -> Validator:
    def check(data: Any) -> str | None:
        return None if data in valid else f"{data} is not in valid_values"

    return check


def _values_or_none(*valid: Any) -> Validator:
    inner = _values(*valid)
    return lambda data: None if data is None else inner(data)


def _fixed_ips(data: Any) -> str | None:
    """neutron-lib validate_fixed_ips."""
    if not isinstance(data, list):
        return f"Invalid data format for fixed IP: {_fmt(data)}"
    seen: list[Any] = []
    for fixed_ip in data:
        if not isinstance(fixed_ip, dict):
            return f"Invalid data format for fixed IP: {_fmt(fixed_ip)}"
        if "ip_address" in fixed_ip:
            addr = fixed_ip["ip_address"]
            if addr in seen:
                return f"Duplicate IP address {_fmt(addr)}"
            reason = _ip(addr)
            if reason:
                return reason
            seen.append(addr)
        if "subnet_id" in fixed_ip:
            reason = _uuid(fixed_ip["subnet_id"])
            if reason:
                return reason
    return None


def _pools(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for IP pool: {_fmt(data)}"
    for pool in data:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            return f"Invalid data format for IP pool: {_fmt(pool)}"
        for key in ("start", "end"):
            reason = _ip(pool[key])
            if reason:
                return reason
    return None


def _nameservers(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for nameserver: {_fmt(data)}"
    for item in data:
        reason = _ip(item)
        if reason:
            return f"{_fmt(item)} is not a valid nameserver. {reason}"
    return None


def _host_routes(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for hostroute: {_fmt(data)}"
    for route in data:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            return f"Invalid data format for hostroute: {_fmt(route)}"
        try:
            ipaddress.ip_network(route["destination"], strict=False)
        except (ValueError, TypeError):
            return f"{_fmt(route['destination'])} is not a valid IP subnet"
        reason = _ip(route["nexthop"])
        if reason:
            return reason
    return None


def _gateway_info(data: Any) -> str | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"{_fmt(data)} is not a dictionary"
    unknown = set(data) - {"network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"}
    if unknown:
        return (
            f"Validation of dictionary's keys failed. Unexpected keys: {', '.join(sorted(unknown))}"
        )
    if "network_id" in data:
        return _uuid(data["network_id"])
    return None


# ------------------------------------------------------------------ attribute maps
@dataclass(frozen=True)
class Attr:
    """One attribute of a resource, as in a neutron-lib RESOURCE_ATTRIBUTE_MAP."""

    post: bool = False  # may be given in POST
    put: bool = False  # may be given in PUT
    required: bool = False  # POST fails when missing
    convert: Converter | None = None
    validate: Validator | None = None
    filter: bool = False  # valid list filter
    filter_convert: Converter | None = None  # converts one filter value (raises InvalidInput)
    sort: bool = False  # valid sort_key


def _cidr_filter(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise invalid_input(f"{value} is not in a CIDR format") from None


def _kvp_filter(value: Any) -> Any:
    if not isinstance(value, str) or "=" not in value:
        raise invalid_input(f"{_fmt(value)} is not of the form <key>=[value]")
    return value


_STR = _string(255)
_DESC = _string(255)
_PROJECT = Attr(post=True, validate=_string(255), filter=True, sort=True)

_COMMON: dict[str, Attr] = {
    "id": Attr(filter=True, sort=True),
    "project_id": _PROJECT,
    "tenant_id": _PROJECT,
    "description": Attr(post=True, put=True, validate=_DESC, filter=True),
    "tags": Attr(post=True, validate=_string_list, filter=True),
    "created_at": Attr(),
    "updated_at": Attr(),
    "revision_number": Attr(filter=True),
}

VNIC_TYPES = (
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
    "accelerator-direct",
    "accelerator-direct-physical",
)
IPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless", "slaac")
NETWORK_TYPES = ("flat", "vlan", "local", "vxlan", "geneve", "gre")

ATTRIBUTES: dict[str, dict[str, Attr]] = {
    "network": {
        **_COMMON,
        "name": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "admin_state_up": Attr(
            post=True, put=True, filter=True, filter_convert=to_bool, sort=True, convert=to_bool
        ),
        "mtu": Attr(
            post=True, put=True, convert=to_int, filter=True, filter_convert=to_int, sort=True
        ),
        "status": Attr(filter=True, sort=True),
        "subnets": Attr(),
        "shared": Attr(post=True, put=True, filter=True, filter_convert=to_bool, convert=to_bool),
        "availability_zone_hints": Attr(post=True, validate=_string_list, sort=True),
        "availability_zones": Attr(),
        "ipv4_address_scope": Attr(),
        "ipv6_address_scope": Attr(),
        "router:external": Attr(
            post=True, put=True, filter=True, filter_convert=to_bool, convert=to_bool
        ),
        "is_default": Attr(
            post=True, put=True, filter=True, filter_convert=to_bool, convert=to_bool
        ),
        "qinq": Attr(post=True, filter=True, filter_convert=to_bool, convert=to_bool),
        "vlan_transparent": Attr(post=True, filter=True, filter_convert=to_bool, convert=to_bool),
        "port_security_enabled": Attr(post=True, put=True, convert=to_bool),
        "provider:network_type": Attr(
            post=True, validate=_values_or_none(*NETWORK_TYPES), filter=True
        ),
        "provider:physical_network": Attr(post=True, validate=_string_or_none(64), filter=True),
        "provider:segmentation_id": Attr(
            post=True, convert=_to_int_or_none, filter=True, filter_convert=to_int
        ),
    },
    "subnet": {
        **_COMMON,
        "name": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "network_id": Attr(post=True, required=True, validate=_uuid, filter=True, sort=True),
        "ip_version": Attr(
            post=True,
            required=True,
            convert=to_int,
            validate=_values(4, 6),
            filter=True,
            filter_convert=to_int,
            sort=True,
        ),
        "cidr": Attr(post=True, filter=True, filter_convert=_cidr_filter, sort=True),
        "subnetpool_id": Attr(post=True, validate=_uuid_or_none, filter=True),
        "gateway_ip": Attr(post=True, put=True, validate=_ip_or_none, filter=True, sort=True),
        "allocation_pools": Attr(post=True, put=True, validate=_pools),
        "dns_nameservers": Attr(
            post=True, put=True, convert=_none_to_empty_list, validate=_nameservers
        ),
        "host_routes": Attr(
            post=True, put=True, convert=_none_to_empty_list, validate=_host_routes
        ),
        "enable_dhcp": Attr(
            post=True, put=True, filter=True, filter_convert=to_bool, sort=True, convert=to_bool
        ),
        "ipv6_ra_mode": Attr(post=True, validate=_values_or_none(*IPV6_MODES), filter=True),
        "ipv6_address_mode": Attr(post=True, validate=_values_or_none(*IPV6_MODES), filter=True),
        "router:external": Attr(filter=True, filter_convert=to_bool),
        "service_types": Attr(post=True, put=True, validate=_string_list),
    },
    "port": {
        **_COMMON,
        "name": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "network_id": Attr(post=True, required=True, validate=_uuid, filter=True, sort=True),
        "admin_state_up": Attr(
            post=True, put=True, filter=True, filter_convert=to_bool, sort=True, convert=to_bool
        ),
        "mac_address": Attr(post=True, put=True, validate=_mac_or_none, filter=True, sort=True),
        "fixed_ips": Attr(
            post=True, put=True, validate=_fixed_ips, filter=True, filter_convert=_kvp_filter
        ),
        "device_id": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "device_owner": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "status": Attr(filter=True, sort=True),
        "security_groups": Attr(
            post=True, put=True, convert=_none_to_empty_list, validate=_uuid_list, filter=True
        ),
        "allowed_address_pairs": Attr(
            post=True, put=True, convert=_none_to_empty_list, validate=_list
        ),
        "extra_dhcp_opts": Attr(post=True, put=True, convert=_none_to_empty_list, validate=_list),
        "port_security_enabled": Attr(post=True, put=True, convert=to_bool),
        "binding:host_id": Attr(
            post=True, put=True, convert=_none_to_empty_string, validate=_STR, filter=True
        ),
        "binding:vnic_type": Attr(post=True, put=True, validate=_values(*VNIC_TYPES)),
        "binding:profile": Attr(
            post=True, put=True, convert=_none_to_empty_dict, validate=_dict_or_none
        ),
        "binding:vif_type": Attr(),
        "binding:vif_details": Attr(),
    },
    "floatingip": {
        **_COMMON,
        "floating_network_id": Attr(
            post=True, required=True, validate=_uuid, filter=True, sort=True
        ),
        "floating_ip_address": Attr(post=True, validate=_ip_or_none, filter=True, sort=True),
        "subnet_id": Attr(post=True, validate=_uuid_or_none),
        "port_id": Attr(post=True, put=True, validate=_uuid_or_none, filter=True, sort=True),
        "fixed_ip_address": Attr(post=True, put=True, validate=_ip_or_none, filter=True, sort=True),
        "router_id": Attr(filter=True, sort=True),
        "status": Attr(filter=True, sort=True),
        "port_details": Attr(),
    },
    "router": {
        **_COMMON,
        "name": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "admin_state_up": Attr(
            post=True, put=True, filter=True, filter_convert=to_bool, sort=True, convert=to_bool
        ),
        "status": Attr(),
        "external_gateway_info": Attr(post=True, put=True, validate=_gateway_info),
        "distributed": Attr(post=True, put=True, convert=to_bool),
        "ha": Attr(post=True, put=True, convert=to_bool),
        "availability_zone_hints": Attr(post=True, validate=_string_list),
        "availability_zones": Attr(),
        "routes": Attr(post=False, put=True, convert=_none_to_empty_list, validate=_host_routes),
        "flavor_id": Attr(post=True, validate=_uuid_or_none),
    },
    "security_group": {
        **_COMMON,
        "name": Attr(post=True, put=True, validate=_STR, filter=True, sort=True),
        "stateful": Attr(post=True, put=True, filter=True, filter_convert=to_bool, convert=to_bool),
        "shared": Attr(filter=True, filter_convert=to_bool),
        "security_group_rules": Attr(),
    },
}

# collection name -> resource name, in the URL's spelling
COLLECTIONS: dict[str, str] = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "floatingips": "floatingip",
    "routers": "router",
    "security-groups": "security_group",
}


def parse_body(
    resource: str,
    body: Any,
    *,
    create: bool,
    default_project: str,
) -> dict[str, Any]:
    """Validate a request body like Neutron's ``prepare_request_body``; return the attributes.

    Raises the same errors, with the same messages, as neutron-server 29 for the checks that
    need no stored state.
    """
    attrs = ATTRIBUTES[resource]
    if not isinstance(body, Mapping) or resource not in body:
        raise http_bad_request(f"Unable to find '{resource}' in request body")
    res = body[resource]
    if not isinstance(res, Mapping):
        raise http_bad_request(f"Object '{resource}' contains invalid data")
    res = dict(res)
    # populate_project_info: project_id and tenant_id mirror each other
    if "project_id" in res and "tenant_id" in res and res["project_id"] != res["tenant_id"]:
        raise http_bad_request("'project_id' and 'tenant_id' do not match")
    if "tenant_id" in res:
        res["project_id"] = res["tenant_id"]
    elif "project_id" in res:
        res["tenant_id"] = res["project_id"]
    elif create:
        res["project_id"] = res["tenant_id"] = default_project
    extra = [k for k in res if k not in attrs]
    if extra:
        raise http_bad_request(f"Unrecognized attribute(s) '{', '.join(extra)}'")
    for name, attr in attrs.items():
        if create:
            if attr.post:
                if attr.required and name not in res:
                    raise http_bad_request(
                        f"Failed to parse request. Required attribute '{name}' not specified"
                    )
            elif name in res:
                raise http_bad_request(f"Attribute '{name}' not allowed in POST")
        elif name in res and not attr.put:
            raise http_bad_request(f"Cannot update read-only attribute {name}")
    for name, attr in attrs.items():
        if name not in res:
            continue
        if attr.convert is not None:
            res[name] = attr.convert(res[name])
        if attr.validate is not None:
            reason = attr.validate(res[name])
            if reason:
                raise http_bad_request(f"Invalid input for {name}. Reason: {reason}.")
    return res


def check_filters(resource: str, filters: Mapping[str, list[str]]) -> dict[str, list[Any]]:
    """Validate list filters; convert typed values. Unknown filter -> 400 like Neutron."""
    attrs = ATTRIBUTES[resource]
    bad = [k for k in filters if k not in attrs or not attrs[k].filter]
    if bad:
        raise http_bad_request(f"{bad} is invalid attribute for filtering")
    out: dict[str, list[Any]] = {}
    for key, values in filters.items():
        conv = attrs[key].filter_convert
        vals = [v for v in values if v]
        out[key] = [conv(v) for v in vals] if conv is not None else vals
    return out


def check_sort_keys(resource: str, keys: list[str]) -> None:
    attrs = ATTRIBUTES[resource]
    bad = [k for k in keys if k not in attrs or not attrs[k].sort]
    if bad:
        raise http_bad_request(f"{bad} is invalid attribute for sort_keys")
