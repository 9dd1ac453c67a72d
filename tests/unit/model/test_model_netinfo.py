"""NetworkInfo: ordered, unique port ids, edits return new values, Nova's JSON array."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from model_testdata import nova_vif_json

from hotport.model import IP, VIF, FixedIP, ModelError, Network, NetworkInfo, Subnet


def _vif(port_id: str, ip: str = "192.0.2.10", **overrides: Any) -> VIF:
    subnet = Subnet(
        cidr="192.0.2.0/24",
        version=4,
        gateway=IP("192.0.2.1", "gateway", 4),
        ips=(FixedIP(ip, 4, floating_ips=(IP("203.0.113.1", "floating", 4),)),),
    )
    fields: dict[str, Any] = {
        "id": port_id,
        "address": "fa:16:3e:00:00:01",
        "network": Network(id="net", label="n", bridge="br-int", subnets=(subnet,)),
        "type": "ovs",
    }
    fields.update(overrides)
    return VIF(**fields)


A, B, C = _vif("port-a", "192.0.2.10"), _vif("port-b", "192.0.2.11"), _vif("port-c", "192.0.2.12")


def test_order_is_kept() -> None:
    info = NetworkInfo([C, A, B])
    assert info.port_ids() == ("port-c", "port-a", "port-b")
    assert list(info) == [C, A, B]
    assert len(info) == 3
    assert info[0] is C
    assert info[-1] is B
    assert info[1:].port_ids() == ("port-a", "port-b")
    assert info.index(A) == 1
    assert A in info


def test_duplicate_port_ids_are_refused() -> None:
    with pytest.raises(ModelError, match="port-a appears twice") as caught:
        NetworkInfo([A, B, _vif("port-a", active=True)])
    assert caught.value.field == "[2].id"
    raw = [A.to_json(), A.to_json()]
    with pytest.raises(ModelError, match="appears twice"):
        NetworkInfo.from_json(raw)


def test_only_vifs_are_accepted() -> None:
    with pytest.raises(ModelError, match="expected a VIF"):
        NetworkInfo([A, A.to_json()])  # type: ignore[list-item]
    with pytest.raises(ModelError, match="expected a VIF"):
        NetworkInfo().with_vif("port-a")  # type: ignore[arg-type]


def test_with_vif_replaces_in_place_or_appends() -> None:
    info = NetworkInfo([A, B, C])
    newer_b = B.with_active(True)
    replaced = info.with_vif(newer_b)
    assert replaced.port_ids() == ("port-a", "port-b", "port-c")
    assert replaced.get("port-b") == newer_b
    assert info.get("port-b") == B  # the original is unchanged
    appended = info.with_vif(_vif("port-d"))
    assert appended.port_ids() == ("port-a", "port-b", "port-c", "port-d")


def test_without_removes_and_is_idempotent() -> None:
    info = NetworkInfo([A, B, C])
    assert info.without("port-b").port_ids() == ("port-a", "port-c")
    assert info.without("port-x") is info
    assert info.without("port-b").without("port-b") == NetworkInfo([A, C])
    assert NetworkInfo().without("port-a") == NetworkInfo()


def test_get_and_lookups() -> None:
    info = NetworkInfo([A, B])
    assert info.get("port-a") is A
    assert info.get("nope") is None
    assert info.fixed_ips() == ["192.0.2.10", "192.0.2.11"]
    assert info.floating_ips() == ["203.0.113.1", "203.0.113.1"]


def test_json_is_novas_array_of_vifs() -> None:
    nova = nova_vif_json()
    info = NetworkInfo.from_json([A.to_json(), nova, B.to_json()])
    assert info.port_ids() == ("port-a", nova["id"], "port-b")
    assert info.to_json() == [A.to_json(), nova, B.to_json()]
    assert NetworkInfo.from_json([]) == NetworkInfo()
    with pytest.raises(ModelError, match="expected an array"):
        NetworkInfo.from_json({"id": "x"})


def test_json_errors_name_the_vif_index() -> None:
    bad = B.to_json()
    bad["network"]["subnets"][0]["ips"][0]["address"] = "not-an-ip"
    with pytest.raises(ModelError) as caught:
        NetworkInfo.from_json([A.to_json(), bad])
    assert caught.value.field == "[1].network.subnets[0].ips[0].address"


def test_values_are_immutable_equal_and_hashable() -> None:
    one, two = NetworkInfo([A, B]), NetworkInfo((A, B))
    assert one == two
    assert hash(one) == hash(two)
    assert one != NetworkInfo([B, A])
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.vifs = ()  # type: ignore[misc]
    assert isinstance(one.vifs, tuple)
    assert "port-a" in repr(one)
