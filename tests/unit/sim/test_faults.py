"""Fault rules: parsing, validation, JSON round trip, seeded decisions and counters."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hotport.sim.faults import Fault, FaultInjector, FaultRule, neutron_error_body

# -- parsing --------------------------------------------------------------------------------


def test_parse_full_spec() -> None:
    rule = FaultRule.parse("PUT /v2.0/ports/*: 503=0.2, timeout=0.05, hang=10")
    assert rule == FaultRule(
        method="PUT", path="/v2.0/ports/*", error_503=0.2, timeout=0.05, hang_seconds=10.0
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("* /v2.0/*: 500=0.01", FaultRule("*", "/v2.0/*", error_500=0.01)),
        ("get /v2.0/networks*:500=5%", FaultRule("GET", "/v2.0/networks*", error_500=0.05)),
        (
            "  DELETE   /v2.0/ports/* :  error_500=0.1 , error_503=0.1, hang_seconds=2 ",
            FaultRule("DELETE", "/v2.0/ports/*", 0.1, 0.1, 0.0, 2.0),
        ),
        ("GET /v2.0/ports:", FaultRule("GET", "/v2.0/ports")),  # an exemption rule
        ("POST *: timeout=1", FaultRule("POST", "*", timeout=1.0)),
    ],
)
def test_parse_variants(spec: str, expected: FaultRule) -> None:
    assert FaultRule.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("PUT /v2.0/ports/* 503=0.2", "expected 'METHOD PATH: KEY=VALUE"),
        ("/v2.0/ports: 500=0.1", "expected 'METHOD PATH' before ':'"),
        ("PUT /a /b: 500=0.1", "expected 'METHOD PATH' before ':'"),
        ("PATCH /v2.0/ports/*: 500=0.1", "unknown method 'PATCH'"),
        ("GET v2.0/ports: 500=0.1", "path must be a glob"),
        ("GET /v2.0/ports: 404=0.1", "unknown key '404'"),
        ("GET /v2.0/ports: 500", "expected KEY=VALUE"),
        ("GET /v2.0/ports: 500=", "expected KEY=VALUE"),
        ("GET /v2.0/ports: 500=abc", "'abc' is not a number"),
        ("GET /v2.0/ports: 500=0.1, error_500=0.2", "given twice"),
        ("GET /v2.0/ports: 500=1.5", r"error_500 must be a probability in \[0, 1\]"),
        ("GET /v2.0/ports: 503=-0.1", "error_503 must be a probability"),
        ("GET /v2.0/ports: 500=0.6, 503=0.5", "sum to 1.1 > 1"),
        ("GET /v2.0/ports: timeout=0.1, hang=-1", "hang_seconds must be"),
        ("GET /v2.0/ports: timeout=nan", "timeout must be a probability"),
        ("GET /v2.0/ports: hang=inf", "hang_seconds must be a finite"),
    ],
)
def test_parse_errors_are_clear(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultRule.parse(spec)


def test_probabilities_may_sum_to_exactly_one() -> None:
    rule = FaultRule.parse("* *: 500=0.1, 503=0.2, timeout=0.7")
    assert math.isclose(rule.error_500 + rule.error_503 + rule.timeout, 1.0)


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule("PUT", "/v2.0/ports/*", error_503=0.2, timeout=0.05, hang_seconds=10.0),
        FaultRule("*", "/v2.0/*", error_500=0.01),
        FaultRule("GET", "/v2.0/networks"),
        FaultRule("DELETE", "/v2.0/ports/*", hang_seconds=3.5),
        FaultRule("POST", "*", 1 / 3, 1 / 7, 0.1, 0.25),
    ],
)
def test_round_trips(rule: FaultRule) -> None:
    assert FaultRule.from_dict(rule.to_dict()) == rule
    assert FaultRule.parse(rule.to_spec()) == rule


def test_to_dict_shape() -> None:
    assert FaultRule.parse("put /x/*: 500=0.5").to_dict() == {
        "method": "PUT",
        "path": "/x/*",
        "error_500": 0.5,
        "error_503": 0.0,
        "timeout": 0.0,
        "hang_seconds": 30.0,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "GET", "path": "/x", "bogus": 1}, "unknown fault rule field"),
        ({"path": "/x"}, "'method' is required"),
        ({"method": "GET"}, "'path' is required"),
        ({"method": "GET", "path": "/x", "error_500": "0.1"}, "must be a number"),
        ({"method": "GET", "path": "/x", "timeout": True}, "must be a number"),
        ({"method": "GET", "path": "/x", "error_500": 2}, "probability"),
        ({"method": "HEAD", "path": "/x"}, "unknown method"),
    ],
)
def test_from_dict_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultRule.from_dict(data)


def test_from_dict_rejects_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        FaultRule.from_dict([1, 2])  # type: ignore[arg-type]


# -- matching and decisions -----------------------------------------------------------------


def test_matching_method_wildcard_glob_and_query() -> None:
    rule = FaultRule("*", "/v2.0/ports/*", error_500=1.0)
    assert rule.matches("GET", "/v2.0/ports/abc")
    assert rule.matches("delete", "/v2.0/ports/abc")
    assert rule.matches("GET", "/v2.0/ports/abc?fields=id")
    assert not rule.matches("GET", "/v2.0/ports")
    assert not rule.matches("GET", "/v2.0/networks/abc")
    put = FaultRule("PUT", "/v2.0/ports*")
    assert put.matches("PUT", "/v2.0/ports")
    assert put.matches("put", "/v2.0/ports/x")
    assert not put.matches("GET", "/v2.0/ports/x")
    assert not FaultRule("GET", "/V2.0/*").matches("GET", "/v2.0/ports")  # case-sensitive


def test_first_matching_rule_decides() -> None:
    injector = FaultInjector(
        [
            FaultRule("GET", "/v2.0/networks*"),  # exemption
            FaultRule("*", "/v2.0/*", error_500=1.0),
        ],
        seed=1,
    )
    assert injector.decide("GET", "/v2.0/networks") is None
    assert injector.decide("GET", "/v2.0/networks/n1") is None
    fault = injector.decide("GET", "/v2.0/ports")
    assert fault == Fault("500", injector.rules[1], 0.0)
    fault = injector.decide("POST", "/v2.0/networks")
    assert fault is not None
    assert fault.kind == "500"


def test_unmatched_requests_draw_nothing() -> None:
    rules = [FaultRule("PUT", "/v2.0/ports/*", 0.3, 0.3, 0.3)]
    a = FaultInjector(rules, seed=5)
    b = FaultInjector(rules, seed=5)
    seq_a = []
    seq_b = []
    for _ in range(50):
        a.decide("GET", "/v2.0/ports/x")  # no rule: no random draw
        seq_a.append(a.decide("PUT", "/v2.0/ports/x"))
        seq_b.append(b.decide("PUT", "/v2.0/ports/x"))
    assert seq_a == seq_b


def test_probabilities_respected_statistically() -> None:
    n = 10_000
    p = {"500": 0.1, "503": 0.2, "timeout": 0.05}
    rule = FaultRule("*", "*", error_500=p["500"], error_503=p["503"], timeout=p["timeout"])
    injector = FaultInjector([rule], seed=12345)
    counts = {"500": 0, "503": 0, "timeout": 0, None: 0}
    for _ in range(n):
        fault = injector.decide("PUT", "/v2.0/ports/x")
        counts[fault.kind if fault else None] += 1
    for kind, prob in p.items():
        sigma = math.sqrt(n * prob * (1 - prob))
        assert abs(counts[kind] - n * prob) < 4 * sigma, (kind, counts)
    assert abs(counts[None] - n * 0.65) < 4 * math.sqrt(n * 0.65 * 0.35)
    snap = injector.snapshot()
    assert snap["decisions"] == n
    assert snap["matched"] == n
    assert snap["by_kind"] == {k: counts[k] for k in ("500", "503", "timeout")}
    assert snap["injected"] == n - counts[None]


def test_certain_and_impossible_faults() -> None:
    injector = FaultInjector(
        [
            FaultRule("GET", "*", timeout=1.0, hang_seconds=7.0),
            FaultRule("*", "*"),
        ],
        seed=None,
    )
    for _ in range(100):
        assert injector.decide("GET", "/v2.0/ports") == Fault("timeout", injector.rules[0], 7.0)
        assert injector.decide("PUT", "/v2.0/ports/x") is None


def test_seeded_injectors_are_deterministic() -> None:
    rules = [FaultRule("*", "*", 0.2, 0.2, 0.2)]
    a, b = FaultInjector(rules, seed=9), FaultInjector(rules, seed=9)
    assert [a.decide("GET", "/p") for _ in range(200)] == [
        b.decide("GET", "/p") for _ in range(200)
    ]


def test_set_rules_and_snapshot_counters() -> None:
    injector = FaultInjector(seed=3)
    assert injector.snapshot()["rules"] == []
    assert injector.decide("GET", "/v2.0/ports") is None
    r503 = FaultRule.parse("PUT /v2.0/ports/*: 503=1")
    r500 = FaultRule.parse("* /v2.0/*: 500=1")
    injector.set_rules([r503, r500])
    assert injector.rules == (r503, r500)
    injector.decide("PUT", "/v2.0/ports/a")
    injector.decide("PUT", "/v2.0/ports/b")
    injector.decide("GET", "/v2.0/networks")
    snap = injector.snapshot()
    assert snap["rules"] == [r503.to_dict(), r500.to_dict()]
    assert snap["by_kind"] == {"500": 1, "503": 2, "timeout": 0}
    assert snap["by_rule"] == [
        {"rule": "PUT /v2.0/ports/*: 503=1.0", "injected": 2},
        {"rule": "* /v2.0/*: 500=1.0", "injected": 1},
    ]
    assert snap["decisions"] == 4
    injector.set_rules([r500])
    snap = injector.snapshot()
    assert snap["by_rule"] == [{"rule": "* /v2.0/*: 500=1.0", "injected": 0}]
    assert snap["by_kind"]["503"] == 2  # totals survive a rule change
    with pytest.raises(ValueError, match="not a FaultRule"):
        injector.set_rules(["GET /x: 500=1"])  # type: ignore[list-item]


# -- error bodies ---------------------------------------------------------------------------


def test_neutron_error_bodies() -> None:
    assert neutron_error_body("500") == (
        500,
        {
            "NeutronError": {
                "type": "HTTPInternalServerError",
                "message": "Request Failed: internal server error while processing your request.",
                "detail": "",
            }
        },
    )
    status, body = neutron_error_body("503")
    assert status == 503
    assert body == {
        "NeutronError": {
            "type": "ServiceUnavailable",
            "message": "The service is unavailable.",
            "detail": "",
        }
    }
    with pytest.raises(ValueError, match="timeout"):
        neutron_error_body("timeout")
