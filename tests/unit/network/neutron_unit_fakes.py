"""Fakes for the network client's unit tests: no sockets, no wall time.

- `Script`: an `httpx.MockTransport` handler answering from a list of outcomes
  (a `Reply`, an exception to raise, or a function of the request) and recording every
  request it saw.
- `FakeTime`: an injectable clock and sleep; sleeping advances the clock.
- `sample(label)`: a response recorded from a real neutron-server 29.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hotport.network import NeutronClient

ENDPOINT = "http://neutron.test:9696"
SAMPLES_PATH = Path(__file__).parents[2] / "conformance" / "samples" / "neutron-29.json"
_SAMPLES: list[dict[str, Any]] = json.loads(SAMPLES_PATH.read_text())["samples"]


def sample(label: str) -> dict[str, Any]:
    for s in _SAMPLES:
        if s["label"] == label:
            return s
    raise KeyError(label)


def error_samples() -> list[dict[str, Any]]:
    return [s for s in _SAMPLES if s["status"] >= 400]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> httpx.Response:
        if self.content is not None:
            return httpx.Response(self.status, content=self.content, headers=self.headers)
        if self.body is None or self.body == "":
            return httpx.Response(self.status, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    @classmethod
    def of(cls, label: str) -> Reply:
        s = sample(label)
        return cls(s["status"], s["body"], headers=dict(s["response_headers"]))


MakeClient = Callable[..., NeutronClient]

Outcome = Reply | BaseException | Callable[[httpx.Request], Any]


class Script:
    """Answers request n with outcome n (the last outcome repeats)."""

    def __init__(self, *outcomes: Outcome) -> None:
        assert outcomes, "a script needs at least one outcome"
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        index = min(len(self.requests), len(self.outcomes)) - 1
        outcome = self.outcomes[index]
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, Reply):
            return outcome.response()
        result = outcome(request)
        if isinstance(result, Awaitable):
            result = await result
        if isinstance(result, Reply):
            return result.response()
        assert isinstance(result, httpx.Response)
        return result

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def neutron_error(status: int, type_: str, message: str = "boom") -> Reply:
    return Reply(status, {"NeutronError": {"type": type_, "message": message, "detail": ""}})
