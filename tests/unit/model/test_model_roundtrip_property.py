"""Properties: any VIF JSON of Nova's layout round-trips exactly; values equal iff JSON equal."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from model_testdata import json_value, subnet_json, vif_json

from hotport.model import VIF, NetworkInfo, Subnet, freeze, thaw

FAST = settings(max_examples=100, deadline=None)
FEW = settings(max_examples=40, deadline=None)


@FAST
@given(vif_json())
def test_any_vif_json_round_trips_exactly(raw: dict[str, Any]) -> None:
    vif = VIF.from_json(copy.deepcopy(raw))
    assert vif.to_json() == raw
    again = VIF.from_json(vif.to_json())
    assert again == vif
    assert hash(again) == hash(vif)
    assert json.loads(json.dumps(vif.to_json())) == raw


@FEW
@given(vif_json(), vif_json())
def test_values_are_equal_exactly_when_their_json_is(a: dict[str, Any], b: dict[str, Any]) -> None:
    va, vb = VIF.from_json(a), VIF.from_json(b)
    assert (va == vb) == (a == b)
    if va == vb:
        assert hash(va) == hash(vb)


@FEW
@given(vif_json())
def test_a_copy_of_the_json_reads_as_an_equal_value(raw: dict[str, Any]) -> None:
    assert VIF.from_json(copy.deepcopy(raw)) == VIF.from_json(raw)
    assert hash(VIF.from_json(copy.deepcopy(raw))) == hash(VIF.from_json(raw))


@FAST
@given(subnet_json())
def test_any_subnet_json_round_trips(raw: dict[str, Any]) -> None:
    assert Subnet.from_json(copy.deepcopy(raw)).to_json() == raw


@FEW
@given(st.lists(vif_json(), max_size=3, unique_by=lambda vif: str(vif["id"])))
def test_any_network_info_round_trips_in_order(raws: list[dict[str, Any]]) -> None:
    info = NetworkInfo.from_json(copy.deepcopy(raws))
    assert info.to_json() == raws
    assert list(info.port_ids()) == [raw["id"] for raw in raws]
    assert NetworkInfo.from_json(info.to_json()) == info


@FAST
@given(json_value)
def test_freeze_thaw_is_identity_on_json(value: Any) -> None:
    frozen = freeze(value)
    hash(frozen)
    assert thaw(frozen) == value
    assert freeze(thaw(frozen)) == frozen
