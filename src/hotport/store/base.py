"""The store's contract: row types, write outcomes, errors, and the `Store` protocol.

Owns: what the engine may ask of the cache/journal store, and the rules a conditional
VIF write follows. Concrete stores (`hotport.store.sql`) implement `Store`; the engine
imports only this module.

Must never: import SQLAlchemy, HTTP or libvirt; hold state.

Concurrency: the rows are immutable values. Every `Store` method is one transaction;
implementations must make each conditional write atomic (read-compare-write in one
transaction), so that two writers of one row can never both win.

## The write rules (one row per port, keyed by port id)

A row holds the VIF of one port: the instance it belongs to, its position in that
instance's ordered network info, the VIF JSON, the Neutron `revision_number` the VIF was
built from, and a `deleted` flag (a tombstone). Rows are never physically removed except
by `purge_tombstones`.

`put_vif(instance, port, vif, revision)` (a live write) is APPLIED when
  - there is no row for the port, or
  - the row is live and `revision >= row.revision` (equal: same port state, e.g. a
    refreshed floating IP or network detail, which Neutron does not count), or
  - the row is a tombstone and `revision > row.revision` (strictly: a tombstone is the
    last word on the revision it carries; only a newer port state resurrects it);
and REFUSED (`stale`) otherwise; a refusal is counted and changes nothing.
`tombstone_vif(port, revision)` is APPLIED when a row exists and `revision >= row.revision`;
REFUSED (`stale`) when older; `missing` when there is no row.
With `expect=<revision>` (compare-and-swap, used by heal), either write is applied only if
the row's current revision equals `expect` (and, for `expect_deleted`, its deleted flag),
else refused with `conflict`.

A live write that creates a row, or resurrects a tombstone, or moves the port to another
instance, gives the row a new position: one more than the highest position the instance
ever used (positions are never reused, so the order of attachment is kept). Any other
applied write keeps the position.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

JSON = dict[str, Any]
JournalKind = Literal["attach", "detach", "event", "heal", "refresh"]
JournalState = Literal["started", "done", "failed", "rolled-back"]
OutcomeReason = Literal["applied", "stale", "conflict", "missing"]


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """Transient: the database could not be reached or was locked for too long."""


class InstanceExists(StoreError):
    """Conflict: an instance with this UUID is already recorded."""


class InstanceNotFound(StoreError):
    """Permanent: no such instance."""


@dataclass(frozen=True, slots=True)
class InstanceRow:
    uuid: str
    name: str
    host: str
    created_at: float  # unix seconds
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class VifRow:
    port_id: str
    instance_uuid: str
    position: int
    vif: JSON  # the VIF in Nova's network_info layout (hotport.model.VIF.to_json())
    revision: int  # the Neutron revision_number the VIF was built from
    deleted: bool
    created_at: float
    updated_at: float


class VifHead(NamedTuple):
    """A VIF row without its VIF: what the heal reads of EVERY row (tombstones too) before
    it lists the network service, so that its compare-and-swap writes stay sound."""

    port_id: str
    instance_uuid: str
    revision: int
    deleted: bool
    updated_at: float  # by the store's clock


class VifText(NamedTuple):
    """A live row with its VIF as the JSON text the database holds, NOT decoded (decoding
    100,000 VIFs costs seconds; the heal compares the text and decodes only what
    differs). `json.loads(text)` is the row's `VifRow.vif`."""

    port_id: str
    instance_uuid: str
    revision: int
    text: str


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    reason: OutcomeReason
    row: VifRow | None  # the row after the call (unchanged when not applied)

    @property
    def applied(self) -> bool:
        return self.reason == "applied"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    instance_uuid: str
    port_id: str | None
    kind: JournalKind
    state: JournalState
    error: str | None
    details: JSON = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def open(self) -> bool:
        return self.state == "started"


# -- the write rules, as pure functions (the cache algebra) --------------------------


def put_verdict(
    row: VifRow | None,
    revision: int,
    expect: int | None = None,
    expect_deleted: bool | None = None,
) -> OutcomeReason:
    """The outcome of a live write of `revision` over `row` (see `hotport.store.base`)."""
    if expect is not None or expect_deleted is not None:
        if row is None:
            return "conflict"
        if expect is not None and row.revision != expect:
            return "conflict"
        if expect_deleted is not None and row.deleted != expect_deleted:
            return "conflict"
    if row is None:
        return "applied"
    if row.deleted:
        return "applied" if revision > row.revision else "stale"
    return "applied" if revision >= row.revision else "stale"


def tombstone_verdict(
    row: VifRow | None, revision: int, expect: int | None = None
) -> OutcomeReason:
    """The outcome of tombstoning `row` at `revision` (see `hotport.store.base`)."""
    if row is None:
        return "missing"
    if expect is not None and row.revision != expect:
        return "conflict"
    return "applied" if revision >= row.revision else "stale"


class Store(Protocol):
    """Instances, VIF rows (with the write rules above) and the operation journal."""

    # -- instances -------------------------------------------------------------------
    async def create_instance(self, uuid: str, name: str, host: str) -> InstanceRow: ...
    async def get_instance(self, uuid: str) -> InstanceRow | None: ...
    async def list_instances(self, host: str | None = None) -> list[InstanceRow]: ...
    async def delete_instance(self, uuid: str) -> None: ...

    # -- VIF rows --------------------------------------------------------------------
    async def vifs(self, instance_uuid: str, *, include_deleted: bool = False) -> list[VifRow]:
        """The instance's rows, ordered by position."""
        ...

    async def vif(self, port_id: str) -> VifRow | None: ...

    async def all_vifs(self, *, include_deleted: bool = False) -> list[VifRow]:
        """Every row of every instance (for heal), ordered by instance then position."""
        ...

    def now(self) -> float:
        """The store's clock: what it stamps rows with (`VifRow.updated_at`)."""
        ...

    async def vif_heads(self, *, since: float | None = None) -> list[VifHead]:
        """Every row (tombstones included) without its VIF, in no particular order; with
        `since`, only the rows last written at or after it (the store's clock: compare
        with a `VifHead.updated_at`, not with another clock)."""
        ...

    async def vif_texts(self, instance_uuids: Collection[str]) -> list[VifText]:
        """The live rows of these instances, VIFs as stored JSON text (see `VifText`), in
        no particular order. Many instances may take several statements: the answer is
        not one snapshot (each row is as read)."""
        ...

    async def put_vif(
        self,
        instance_uuid: str,
        port_id: str,
        vif: Mapping[str, Any],
        revision: int,
        *,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> WriteOutcome: ...

    async def tombstone_vif(
        self,
        port_id: str,
        revision: int,
        *,
        expect: int | None = None,
    ) -> WriteOutcome: ...

    async def set_active(self, port_id: str, active: bool) -> bool:
        """Record the port's link status in its live row's VIF JSON (`active`), revision
        unchanged (Neutron's status events carry no revision). False if no live row."""
        ...

    async def replace_instance_vifs(
        self, instance_uuid: str, rows: Sequence[tuple[str, Mapping[str, Any], int]]
    ) -> None:
        """UNCONDITIONAL whole-blob write (port_id, vif, revision) for one instance: rows
        not listed become tombstones. Exists only for the `article` reference policy,
        which reproduces the known lost-update race; hotport's own policy never calls it."""
        ...

    async def purge_tombstones(self, older_than: float) -> int:
        """Physically remove tombstones last updated before `older_than` (unix seconds)."""
        ...

    def refused_writes(self) -> Mapping[str, int]:
        """Counters of refused VIF writes by reason (`stale`, `conflict`) since start."""
        ...

    # -- journal ---------------------------------------------------------------------
    async def journal_start(
        self,
        instance_uuid: str,
        port_id: str | None,
        kind: JournalKind,
        details: Mapping[str, Any] | None = None,
    ) -> int: ...

    async def journal_update(self, entry_id: int, details: Mapping[str, Any]) -> None:
        """Merge `details` into an open entry (e.g. record that the port was bound).
        A `port_id` in `details` also sets the entry's port when it had none (a port the
        operation created after it started), so that `open_ports` sees it."""
        ...

    async def journal_finish(
        self,
        entry_id: int,
        state: JournalState,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...

    async def journal(
        self,
        *,
        instance_uuid: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[JournalEntry]:
        """Entries, newest first."""
        ...

    async def open_ports(self) -> set[str]:
        """Port ids that have an open (started) journal entry."""
        ...

    async def journal_counts(self) -> dict[str, int]:
        """How many journal entries are in each state (one aggregate query)."""
        ...

    async def close(self) -> None: ...
