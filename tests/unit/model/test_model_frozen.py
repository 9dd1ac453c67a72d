"""Frozen JSON: read-only, hashable, deep; anything that is not JSON is refused."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

from hotport.model import EMPTY, FrozenDict, ModelError, freeze, thaw


def test_frozen_dict_is_a_read_only_deep_mapping() -> None:
    frozen = FrozenDict({"a": {"b": [1, {"c": None}]}, "d": 1.5})
    assert frozen["a"]["b"][1]["c"] is None
    assert isinstance(frozen["a"], FrozenDict)
    assert isinstance(frozen["a"]["b"], tuple)
    assert len(frozen) == 2
    assert list(frozen) == ["a", "d"]
    assert "d" in frozen
    with pytest.raises(TypeError):
        frozen["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        frozen._data = {}


def test_frozen_dict_equality_and_hash() -> None:
    a = FrozenDict({"x": [1, 2], "y": {"z": True}})
    b = FrozenDict({"y": {"z": True}, "x": [1, 2]})
    assert a == b
    assert hash(a) == hash(b)
    assert a == {"x": (1, 2), "y": {"z": True}}
    assert a != FrozenDict({"x": [1, 2]})
    assert FrozenDict() == EMPTY == {}
    assert a != "not a mapping"


def test_thaw_gives_fresh_plain_json() -> None:
    frozen = FrozenDict({"a": [1, {"b": 2}]})
    out = frozen.thaw()
    assert out == {"a": [1, {"b": 2}]}
    assert type(out) is dict
    assert type(out["a"]) is list
    assert type(out["a"][1]) is dict
    out["a"].append(3)
    assert frozen.thaw() == {"a": [1, {"b": 2}]}
    assert thaw(None) is None
    assert thaw("s") == "s"


def test_freeze_copies_its_input() -> None:
    source: dict[str, Any] = {"a": [1]}
    frozen = freeze(source)
    source["a"].append(2)
    assert frozen == {"a": (1,)}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a": math.nan}, "a"),
        ({"a": [1, math.inf]}, "a[1]"),
        ({"a": {"b": {1, 2}}}, "a.b"),
        ({"a": {3: "x"}}, "a"),
        ({"a": object()}, "a"),
    ],
)
def test_non_json_is_refused_with_its_place(value: Any, where: str) -> None:
    with pytest.raises(ModelError) as caught:
        freeze(value, "meta")
    assert caught.value.field == f"meta.{where}"


def test_frozen_dict_pickles() -> None:
    frozen = FrozenDict({"a": [1, {"b": None}]})
    assert pickle.loads(pickle.dumps(frozen)) == frozen
