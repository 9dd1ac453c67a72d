"""Retry policy of the network client: what is retried, how long to wait, when to stop.

Owns: `Backoff` (exponential backoff with jitter), `Deadline` (the overall time budget of
one client call, read from an injectable clock), and the rules deciding whether an
attempt's failure may be retried (`retryable_status`, `is_idempotent`).

The policy (the client applies it; this module only decides):

- Retried (bounded by `retries` and by the call's deadline, with backoff between):
  * connect failures (connection refused, connect / pool timeout): the request never left,
    so this is safe for every method;
  * 503 for every method (the service refused the request before doing anything);
  * 502 and 504 for idempotent methods (GET, PUT, DELETE). A POST answered 502/504 may
    have created the resource behind the proxy, so it is NOT retried (retrying could
    create a duplicate port): it raises `Unavailable(maybe_applied=True)`;
  * a read timeout or a dropped connection, for GET only. For a write the answer is lost
    and the outcome unknown: `DeadlineExceeded` / `Unavailable` with `maybe_applied=True`.
- Never retried: every 4xx (400, 404, 409, 412, ... — the same request fails the same way;
  429 too: it raises `Unavailable`, and `Retry-After` is not interpreted),
  and 500 / 501 / other 5xx: a real neutron-server answers 500 for an unhandled exception,
  i.e. a bug triggered by this request, which a retry would only repeat (and, for a
  write, possibly half-apply twice).
- A 401 is not a transient error: the client invalidates the credentials and retries
  exactly once, without backoff and outside the `retries` budget.

Must never: sleep by itself (the client sleeps through its injected `sleep`), read the
wall clock directly (the clock is injected), or do I/O.

Concurrency: `Backoff` is an immutable value; a `Deadline` belongs to one call.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "IDEMPOTENT_METHODS",
    "READ_METHODS",
    "RETRYABLE_STATUSES",
    "Backoff",
    "Deadline",
    "is_idempotent",
    "retryable_status",
]

#: methods whose request has no effect on the service
READ_METHODS = frozenset({"GET", "HEAD"})
#: methods that may be repeated with the same effect (RFC 9110 9.2.2)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: the statuses that may be retried at all
RETRYABLE_STATUSES = frozenset({502, 503, 504})


def is_idempotent(method: str) -> bool:
    return method.upper() in IDEMPOTENT_METHODS


def retryable_status(method: str, status: int) -> bool:
    """Whether an answer with this status may be retried for this method."""
    if status == 503:
        return True
    if status in RETRYABLE_STATUSES:
        return is_idempotent(method)
    return False


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): `min(maximum, initial * multiplier**(n-1))`,
    reduced by up to `jitter` of itself at random ("equal jitter" when jitter=0.5).

    `jitter=0` makes the sequence deterministic (0.1, 0.2, 0.4, ... by default).
    """

    initial: float = 0.1
    multiplier: float = 2.0
    maximum: float = 5.0
    jitter: float = 0.5
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1:
            raise ValueError("backoff needs initial >= 0, maximum >= 0, multiplier >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("backoff jitter must be within [0, 1]")

    def base(self, retry: int) -> float:
        """The delay before retry `retry` (1-based) without jitter."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        return min(self.maximum, self.initial * self.multiplier ** (retry - 1))

    def delay(self, retry: int) -> float:
        """The delay before retry `retry` (1-based), jitter applied."""
        base = self.base(retry)
        return base - base * self.jitter * self.rng()


@dataclass(slots=True)
class Deadline:
    """The overall time budget of one call, measured on an injected monotonic clock."""

    seconds: float
    clock: Callable[[], float]
    start: float = field(init=False)

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("a deadline must be positive")
        self.start = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def expired(self) -> bool:
        return self.remaining() <= 0
