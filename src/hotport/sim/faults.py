"""Fault injection for the Neutron simulator, configured per endpoint.

Owns: the fault rules (`FaultRule`: method + path glob + probabilities), their CLI and JSON
forms, the seeded decision of whether one request fails and how (`FaultInjector.decide`), the
counters of injected faults, and the Neutron error bodies of injected 500/503 responses.

Never: sleeps, does I/O or touches simulator state. It only decides; the ASGI app applies the
decision (answer 500/503 without applying the request, or hang `Fault.hang_seconds` through its
clock and never apply the request).

Concurrency: one asyncio event loop, no awaits, not thread-safe. `set_rules` swaps the rule list
atomically with respect to `decide`.

Rule syntax (CLI, ``--fault``)::

    METHOD PATH: KEY=VALUE, KEY=VALUE, ...
    PUT /v2.0/ports/*: 503=0.2, timeout=0.05, hang=10
    * /v2.0/*: 500=0.01
    GET /v2.0/networks*:            (no keys: an exemption; as the first match it injects nothing)

METHOD is GET, POST, PUT, DELETE or ``*``. PATH is an `fnmatch` glob matched case-sensitively
against the request path without its query string (``*`` also matches ``/``). Keys: ``500``
(alias ``error_500``), ``503`` (``error_503``), ``timeout``, each a probability in [0, 1]
written as a number or a percentage (``20%``), with a sum <= 1; and ``hang`` (``hang_seconds``),
the seconds a timed-out request hangs (default 30).

Decision: the FIRST rule whose method and path match decides, with one uniform draw u:
u < p500 -> 500; u < p500 + p503 -> 503; u < p500 + p503 + ptimeout -> timeout; else no fault.
A request that no rule matches draws nothing.
"""

from __future__ import annotations

import fnmatch
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "METHODS",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "neutron_error_body",
]

FaultKind = Literal["500", "503", "timeout"]

METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "*"})

_KEY_ALIASES: dict[str, str] = {
    "500": "error_500",
    "error_500": "error_500",
    "503": "error_503",
    "error_503": "error_503",
    "timeout": "timeout",
    "hang": "hang_seconds",
    "hang_seconds": "hang_seconds",
}
_PROBABILITIES = ("error_500", "error_503", "timeout")
_DICT_KEYS = frozenset({"method", "path", *_PROBABILITIES, "hang_seconds"})


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FaultRule:
    method: str  # "GET", "POST", "PUT", "DELETE" or "*"
    path: str  # fnmatch glob on the request path, e.g. "/v2.0/ports/*"
    error_500: float = 0.0  # probability of a 500
    error_503: float = 0.0  # probability of a 503
    timeout: float = 0.0  # probability the request hangs hang_seconds and is NOT applied
    hang_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method.upper() not in METHODS:
            known = ", ".join(sorted(METHODS))
            raise ValueError(f"unknown method {self.method!r} in fault rule (known: {known})")
        object.__setattr__(self, "method", self.method.upper())
        if not isinstance(self.path, str) or not self.path.startswith(("/", "*")):
            raise ValueError(
                f"fault rule path must be a glob starting with '/' or '*': {self.path!r}"
            )
        total = 0.0
        for name in _PROBABILITIES:
            p = _number(getattr(self, name), name)
            if not (0.0 <= p <= 1.0):  # also rejects NaN
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
            object.__setattr__(self, name, p)
            total += p
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"fault probabilities of {self.method} {self.path} sum to {total:g} > 1"
            )
        hang = _number(self.hang_seconds, "hang_seconds")
        if not math.isfinite(hang) or hang < 0:
            raise ValueError(f"hang_seconds must be a finite number >= 0, got {hang!r}")
        object.__setattr__(self, "hang_seconds", hang)

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method.upper():
            return False
        return fnmatch.fnmatchcase(path.split("?", 1)[0], self.path)

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """Parse the CLI form ``"METHOD PATH: KEY=VALUE, ..."`` (see the module docstring)."""
        head, colon, tail = spec.rpartition(":")
        if not colon:
            raise ValueError(f"fault rule {spec!r}: expected 'METHOD PATH: KEY=VALUE, ...'")
        words = head.split()
        if len(words) != 2:
            raise ValueError(
                f"fault rule {spec!r}: expected 'METHOD PATH' before ':', got {head.strip()!r}"
            )
        method, path = words
        values: dict[str, float] = {}
        for item in tail.split(","):
            item = item.strip()
            if not item:
                continue
            key, eq, raw = item.partition("=")
            key, raw = key.strip().lower(), raw.strip()
            if not eq or not key or not raw:
                raise ValueError(f"fault rule {spec!r}: expected KEY=VALUE, got {item!r}")
            name = _KEY_ALIASES.get(key)
            if name is None:
                known = ", ".join(sorted(_KEY_ALIASES))
                raise ValueError(f"fault rule {spec!r}: unknown key {key!r} (known: {known})")
            if name in values:
                raise ValueError(f"fault rule {spec!r}: {key!r} given twice")
            values[name] = cls._parse_value(spec, name, raw)
        try:
            return cls(method=method, path=path, **values)
        except ValueError as exc:
            raise ValueError(f"fault rule {spec!r}: {exc}") from None

    @staticmethod
    def _parse_value(spec: str, name: str, raw: str) -> float:
        percent = name in _PROBABILITIES and raw.endswith("%")
        try:
            value = float(raw[:-1] if percent else raw)
        except ValueError:
            raise ValueError(f"fault rule {spec!r}: {raw!r} is not a number") from None
        return value / 100.0 if percent else value

    def to_spec(self) -> str:
        """The CLI form; `parse(rule.to_spec()) == rule`."""
        parts = [
            f"{key}={getattr(self, name)!r}"
            for key, name in (("500", "error_500"), ("503", "error_503"), ("timeout", "timeout"))
            if getattr(self, name)
        ]
        if self.timeout or self.hang_seconds != 30.0:
            parts.append(f"hang={self.hang_seconds!r}")
        return f"{self.method} {self.path}: {', '.join(parts)}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "error_500": self.error_500,
            "error_503": self.error_503,
            "timeout": self.timeout,
            "hang_seconds": self.hang_seconds,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaultRule:
        """Build a rule from its JSON form; ValueError on a missing, unknown or bad field."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a fault rule must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - _DICT_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(map(str, unknown)))}")
        for key in ("method", "path"):
            if not isinstance(d.get(key), str):
                raise ValueError(f"fault rule field {key!r} is required and must be a string")
        kwargs = {k: _number(v, k) for k, v in d.items() if k not in ("method", "path")}
        return cls(method=d["method"], path=d["path"], **kwargs)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    rule: FaultRule
    hang_seconds: float  # the rule's hang_seconds for a timeout, 0.0 for 500/503


def neutron_error_body(kind: FaultKind) -> tuple[int, dict[str, Any]]:
    """Status and body of an injected error, shaped as neutron-server 29 emits them.

    Neutron builds ``{"NeutronError": {"type": <exception class name>, "message": ..., "detail":
    ""}}`` (neutron/api/api_common.py). An unexpected exception becomes a webob
    HTTPInternalServerError with a fixed message; a 503 comes from neutron-lib's
    ServiceUnavailable mapped to HTTP 503 by the fault map, and its class name is the type.
    """
    if kind == "500":
        message = "Request Failed: internal server error while processing your request."
        return 500, {
            "NeutronError": {"type": "HTTPInternalServerError", "message": message, "detail": ""}
        }
    if kind == "503":
        return 503, {
            "NeutronError": {
                "type": "ServiceUnavailable",
                "message": "The service is unavailable.",
                "detail": "",
            }
        }
    raise ValueError(f"no error body for fault kind {kind!r} (only '500' and '503')")


class FaultInjector:
    """Decides, per request, whether to inject a fault; counts what it injected."""

    def __init__(self, rules: Sequence[FaultRule] = (), seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._rules: tuple[FaultRule, ...] = ()
        self._decisions = 0
        self._matched = 0
        self._by_kind: Counter[str] = Counter()
        self._by_rule: Counter[str] = Counter()
        self.set_rules(rules)

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return self._rules

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the rules; per-rule counters restart, per-kind totals are kept."""
        for rule in rules:
            if not isinstance(rule, FaultRule):
                raise ValueError(f"not a FaultRule: {rule!r}")
        self._rules = tuple(rules)
        self._by_rule = Counter()

    def decide(self, method: str, path: str) -> Fault | None:
        self._decisions += 1
        for rule in self._rules:
            if rule.matches(method, path):
                break
        else:
            return None
        self._matched += 1
        u = self._rng.random()
        kind: FaultKind
        if u < rule.error_500:
            kind = "500"
        elif u < rule.error_500 + rule.error_503:
            kind = "503"
        elif u < rule.error_500 + rule.error_503 + rule.timeout:
            kind = "timeout"
        else:
            return None
        self._by_kind[kind] += 1
        self._by_rule[rule.to_spec()] += 1
        return Fault(kind, rule, rule.hang_seconds if kind == "timeout" else 0.0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "rules": [rule.to_dict() for rule in self._rules],
            "decisions": self._decisions,
            "matched": self._matched,
            "injected": sum(self._by_kind.values()),
            "by_kind": {kind: self._by_kind[kind] for kind in ("500", "503", "timeout")},
            "by_rule": [
                {"rule": rule.to_spec(), "injected": self._by_rule[rule.to_spec()]}
                for rule in self._rules
            ],
        }
