"""`VifTemplate`: is a stored VIF's JSON text what `build_vif` would make now? Without
building it.

Owns: the exact JSON text (`json.dumps` with its default separators, as the store writes
it) of `build_vif(...).to_json()` for the ports of one network, assembled from pieces
serialised once per network (the network's label and meta, each subnet without its IPs)
and a few per-port strings; and `matches`, which compares a stored text with it, leaving
three slots free: `active` (the heal ignores the link status), `preserve_on_delete` and
`meta` (the heal keeps them from the row itself: `engine.events.kept_from_row`).

Why: the heal reconciles every VIF of the host. Decoding 100,000 stored VIFs and
building 100,000 fresh ones to compare them costs tens of seconds of CPU; comparing
100,000 texts with templates costs a fraction of one.

The contract (what makes the shortcut sound): for any inputs on which `build_vif`
succeeds, `text(...)` is EXACTLY `json.dumps(build_vif(...).to_json())`; so when
`matches` says True, the VIF the heal would build equals the stored one (up to `active`)
or `build_vif` would fail (the heal skips such a port either way). A False answer only
means "decode and build to know". The pieces are made by the builder's own code
(`_subnet`, `_bridge`, `_physnet_tunneled`, the values' `to_json`), and a property test
holds the two paths equal.

Must never: do I/O, or answer True on a doubt (anything unusual: False).

Concurrency: a template is immutable once built; share it freely.
"""

from __future__ import annotations

import ipaddress
import json
import json.encoder
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hotport.model.build import (
    _bridge,
    _floating_ips,
    _physnet_tunneled,
    _Source,
    _subnet,
)
from hotport.model.errors import ModelError
from hotport.model.values import Network
from hotport.model.vif import NIC_NAME_LEN

__all__ = ["VifTemplate"]

_dumps = json.dumps
# What json.dumps does with its default arguments, without its per-call set-up: a string
# (ASCII-escaped), and an object through one reused C encoder (the circular-reference check
# is off: JSON from the network service has no cycles, and the text is the same).
_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_iterencode = (
    None
    if _c_encoder is None
    else _c_encoder(None, json.JSONEncoder().default, _string, None, ": ", ", ", False, False, True)
)


def _object(value: Mapping[str, Any]) -> str:
    if not value:
        return "{}"
    if _iterencode is None or type(value) is not dict:
        return _dumps(value)
    return "".join(_iterencode(value, 0))


def _opt_string(value: str | None) -> str:
    return "null" if value is None else _string(value)


_AFTER_PRESERVE = ', "delegate_create": false, "meta": '
_NORMAL = '"normal"'
_CREATE_BRIDGE = ', "should_create_bridge": true}'


class VifTemplate:
    """The VIF JSON text of the ports of ONE network (given as Neutron objects, exactly as
    they are given to `build_vif`). Build it once per network and heal.

    A port is given as: its id, MAC, `binding:vif_type`, `binding:vif_details` and
    `binding:profile` (absent: `{}`), `binding:vnic_type` (absent: None), its fixed IPs
    as (subnet_id, ip_address) pairs in its order, and floating IP objects (those of
    other ports are ignored, as the builder does)."""

    __slots__ = (
        "_details_memo",
        "_network_close",
        "_network_id",
        "_network_mid",
        "_network_open",
        "_ok",
        "_ovs_bridge",
        "_subnets",
    )

    def __init__(
        self,
        network: Mapping[str, Any],
        subnets: Sequence[Mapping[str, Any]],
        *,
        ovs_bridge: str = "br-int",
    ) -> None:
        self._ovs_bridge = ovs_bridge
        # the last `details` matched and its text (see `matches`)
        self._details_memo: tuple[Mapping[str, Any], str] = ({}, "{}")
        self._ok = False
        self._network_id = ""
        self._network_open = self._network_mid = self._network_close = ""
        # subnet id -> (text before its IPs, text after them), None when build_vif would
        # refuse it
        self._subnets: dict[str, tuple[str, str] | None] = {}
        try:
            self._prepare(network, subnets)
        except (ModelError, ValueError, TypeError, KeyError):
            self._ok = False  # build_vif refuses every port of this network: no shortcut

    def _prepare(self, network: Mapping[str, Any], subnets: Sequence[Mapping[str, Any]]) -> None:
        # as build_vif reads the network
        n = _Source(network, "network")
        network_id = n.text("id")
        physnet, tunneled = _physnet_tunneled(n)
        mtu = network.get("mtu")
        if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int)):
            return
        name = network.get("name")
        net = Network(
            id=network_id,
            label="" if name is None else n.text("name", nonempty=False),
            bridge=None,
            meta={
                "injected": False,
                "tenant_id": network.get("tenant_id", network.get("project_id")),
                "mtu": mtu,
                "physical_network": physnet,
                "tunneled": tunneled,
            },
        ).to_json()
        # as build_vif's _subnets indexes them (a malformed one fails every port)
        if not isinstance(subnets, (list, tuple)):
            return
        by_id: dict[str, _Source] = {}
        for i, item in enumerate(subnets):
            source = _Source(item, f"subnets[{i}]")
            by_id.setdefault(source.text("id"), source)
        for subnet_id, source in by_id.items():
            try:
                built = _subnet(source, [], {}, network_id).to_json()
            except ModelError:
                self._subnets[subnet_id] = None
                continue
            keys = list(built)
            at = keys.index("ips")
            before = {k: built[k] for k in keys[:at]}
            after = {k: built[k] for k in keys[at + 1 :]}
            head = (_dumps(before)[:-1] + ', "ips": [') if before else '{"ips": ['
            tail = ("], " + _dumps(after)[1:]) if after else "]}"
            self._subnets[subnet_id] = (head, tail)
        # Network.to_json's keys: id, bridge, label, subnets, meta (+ should_create_bridge)
        self._network_id = network_id
        self._network_open = '{"id": ' + _string(network_id) + ', "bridge": '
        self._network_mid = ', "label": ' + _dumps(net["label"]) + ', "subnets": ['
        self._network_close = '], "meta": ' + _dumps(net["meta"])
        self._ok = True

    @property
    def network_id(self) -> str:
        return self._network_id

    def parts(
        self,
        port_id: str,
        mac: str,
        vif_type: str | None,
        details: Mapping[str, Any],
        vnic_type: str | None,
        profile: Mapping[str, Any],
        fixed_ips: Sequence[tuple[str, str]],
        floating_ips: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[str, str, str] | None:
        """The text around the three free slots: (up to `"active": `, from after it up
        to `"preserve_on_delete": `, from after that up to `"meta": `); None when this
        port needs the real builder (unusual input, or input `build_vif` refuses)."""
        if not self._ok or not isinstance(vif_type, str) or not port_id or not mac:
            return None
        try:
            return self._parts(
                port_id,
                mac,
                vif_type,
                details,
                _object(details),
                vnic_type,
                profile,
                fixed_ips,
                floating_ips,
            )
        except Exception:  # whatever it is, the real builder will say
            return None

    def _parts(
        self,
        port_id: str,
        mac: str,
        vif_type: str,
        details: Mapping[str, Any],
        details_text: str,
        vnic_type: str | None,
        profile: Mapping[str, Any],
        fixed_ips: Sequence[tuple[str, str]],
        floating_ips: Sequence[Mapping[str, Any]],
    ) -> tuple[str, str, str] | None:
        if len(fixed_ips) == 1 and not floating_ips:  # the common case, spelt out
            subnet_id, address = fixed_ips[0]
            head_tail = self._subnets.get(subnet_id)
            if head_tail is None:
                return None
            listed = (
                f'{head_tail[0]}{{"address": {_string(address)}, "type": "fixed", '
                f'"version": {"6" if ":" in address else "4"}, "meta": {{}}, '
                f'"floating_ips": []}}{head_tail[1]}'
            )
        else:
            found = self._listed(port_id, fixed_ips, floating_ips)
            if found is None:
                return None
            listed = found
        bridge, ovs_interfaceid, create_bridge = _bridge(
            vif_type, details, port_id, self._network_id, self._ovs_bridge
        )
        quoted_id = _string(port_id)
        # VIF.to_json's keys, in its order
        before_active = (
            f'{{"id": {quoted_id}, "address": {_string(mac)}, "network": '
            f"{self._network_open}{'null' if bridge is None else _string(bridge)}"
            f"{self._network_mid}{listed}"
            f"{self._network_close}{_CREATE_BRIDGE if create_bridge else '}'}, "
            f'"type": {_string(vif_type)}, "details": {details_text}, '
            f'"devname": {_string(("tap" + port_id)[:NIC_NAME_LEN])}, '
            '"ovs_interfaceid": '
            f"{quoted_id if ovs_interfaceid == port_id else _opt_string(ovs_interfaceid)}, "
            '"qbh_params": null, "qbg_params": null, "active": '
        )
        before_preserve = (
            ', "vnic_type": '
            f"{_NORMAL if vnic_type is None else _string(vnic_type)}, "
            f'"profile": {_object(profile) if profile else "{}"}, "preserve_on_delete": '
        )
        return before_active, before_preserve, _AFTER_PRESERVE

    def _listed(
        self,
        port_id: str,
        fixed_ips: Sequence[tuple[str, str]],
        floating_ips: Sequence[Mapping[str, Any]],
    ) -> str | None:
        """The network's `subnets` items (without the brackets), as `_subnets` and
        `_subnet` make them: the port's subnets in the order it first names them, each
        with its IPs (an address once), each IP with its floating IPs."""
        subnets = self._subnets
        order: list[str] = []
        for subnet_id, _ in fixed_ips:
            if subnets.get(subnet_id) is None:
                return None
            if subnet_id not in order:
                order.append(subnet_id)
        floats = _floating_ips(floating_ips, port_id) if floating_ips else None
        pieces: list[str] = []
        for subnet_id in order:
            head_tail = subnets[subnet_id]
            assert head_tail is not None
            ips: list[str] = []
            seen: set[str] = set()
            for ref, address in fixed_ips:
                if ref != subnet_id or address in seen:
                    continue
                seen.add(address)
                fips = ""
                if floats:
                    mapped = floats.get(ipaddress.ip_address(address), ())
                    fips = ", ".join(_dumps(ip.to_json()) for ip in mapped)
                ips.append(
                    f'{{"address": {_string(address)}, "type": "fixed", '
                    f'"version": {"6" if ":" in address else "4"}, "meta": {{}}, '
                    f'"floating_ips": [{fips}]}}'
                )
            pieces.append(head_tail[0] + ", ".join(ips) + head_tail[1])
        return ", ".join(pieces)

    def text(
        self,
        *port: Any,
        active: bool,
        preserve_on_delete: bool,
        tag: str | None,
    ) -> str | None:
        """The whole JSON text (`port`: the arguments of `parts`), None as there."""
        parts = self.parts(*port)
        if parts is None:
            return None
        a, b, c = parts
        meta = "{}" if tag is None else '{"tag": ' + _dumps(tag) + "}"
        return f"{a}{_dumps(active)}{b}{_dumps(preserve_on_delete)}{c}{meta}}}"

    def matches(
        self,
        stored: str,
        port_id: str,
        mac: str,
        vif_type: str | None,
        details: Mapping[str, Any],
        vnic_type: str | None,
        profile: Mapping[str, Any],
        fixed_ips: Sequence[tuple[str, str]],
        floating_ips: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """`stored` (a VIF row's JSON text) is the text of the VIF `build_vif` makes of
        this port, with `active` ignored and `preserve_on_delete` and the tag taken from
        `stored` itself (untagged: `"meta": {}`; tagged: `{"tag": "..."}` and nothing
        else)."""
        if not self._ok or not isinstance(vif_type, str) or not port_id or not mac:
            return False
        try:
            # The ports of a host mostly share one `binding:vif_details` value: reuse the
            # text of the last one EQUAL to it. Equal is what the heal asks (it compares
            # VIFs as decoded JSON, where {"a": 1} == {"a": 1.0}); a text written with the
            # other spelling decodes to an equal VIF, so a match stays sound.
            memo = self._details_memo
            if details == memo[0]:
                details_text = memo[1]
            else:
                details_text = _object(details)
                # (a private copy, decoded from the text itself: always consistent)
                self._details_memo = (json.loads(details_text), details_text)
            parts = self._parts(
                port_id,
                mac,
                vif_type,
                details,
                details_text,
                vnic_type,
                profile,
                fixed_ips,
                floating_ips,
            )
        except Exception:  # whatever it is, the real builder will say
            return False
        return parts is not None and _fits(stored, parts)


def _fits(stored: str, parts: tuple[str, str, str]) -> bool:
    a, b, c = parts
    if not stored.startswith(a):
        return False
    i = _after_bool(stored, len(a))  # active
    if i < 0 or not stored.startswith(b, i):
        return False
    i = _after_bool(stored, i + len(b))  # preserve_on_delete
    if i < 0 or not stored.startswith(c, i):
        return False
    rest = stored[i + len(c) :]
    if rest == "{}}":
        return True
    if not (rest.startswith('{"tag": "') and rest.endswith('"}}')):
        return False
    tag_text = rest[8:-2]
    try:
        tag = json.loads(tag_text)
    except ValueError:
        return False
    return isinstance(tag, str) and _dumps(tag) == tag_text


def _after_bool(text: str, i: int) -> int:
    """The index after the JSON boolean at `i`, or -1."""
    if text.startswith("true", i):
        return i + 4
    if text.startswith("false", i):
        return i + 5
    return -1
