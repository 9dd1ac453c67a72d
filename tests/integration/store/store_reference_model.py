"""A tiny, pure, in-memory model of the store's VIF write rules (base.py's docstring),
written independently of `hotport.store.sql`, to compare the SQL store against."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ModelRow:
    instance: str
    position: int
    vif: dict[str, Any]
    revision: int
    deleted: bool
    updated_at: float


class ModelStore:
    def __init__(self, instances: list[str]) -> None:
        self.rows: dict[str, ModelRow] = {}
        self.next_position = dict.fromkeys(instances, 0)
        self.refused: Counter[str] = Counter({"stale": 0, "conflict": 0})

    def _position(self, instance: str) -> int:
        position = self.next_position[instance]
        self.next_position[instance] = position + 1
        return position

    def _refuse(self, reason: str) -> str:
        self.refused[reason] += 1
        return reason

    def put(
        self,
        instance: str,
        port: str,
        vif: dict[str, Any],
        revision: int,
        now: float,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> str:
        row = self.rows.get(port)
        if expect is not None or expect_deleted is not None:
            if row is None:
                return self._refuse("conflict")
            if expect is not None and expect != row.revision:
                return self._refuse("conflict")
            if expect_deleted is not None and expect_deleted != row.deleted:
                return self._refuse("conflict")
        if row is None:
            self.rows[port] = ModelRow(
                instance, self._position(instance), vif, revision, False, now
            )
            return "applied"
        if row.deleted and revision <= row.revision:
            return self._refuse("stale")
        if not row.deleted and revision < row.revision:
            return self._refuse("stale")
        moves = row.deleted or row.instance != instance
        position = self._position(instance) if moves else row.position
        self.rows[port] = ModelRow(instance, position, vif, revision, False, now)
        return "applied"

    def tombstone(self, port: str, revision: int, now: float, expect: int | None = None) -> str:
        row = self.rows.get(port)
        if row is None:
            return "missing"
        if expect is not None and expect != row.revision:
            return self._refuse("conflict")
        if revision < row.revision:
            return self._refuse("stale")
        self.rows[port] = replace(row, revision=revision, deleted=True, updated_at=now)
        return "applied"

    def set_active(self, port: str, active: bool, now: float) -> bool:
        row = self.rows.get(port)
        if row is None or row.deleted:
            return False
        self.rows[port] = replace(row, vif={**row.vif, "active": active}, updated_at=now)
        return True

    def replace_all(
        self, instance: str, rows: list[tuple[str, dict[str, Any], int]], now: float
    ) -> None:
        listed = {port for port, _, _ in rows}
        for port, row in list(self.rows.items()):
            if row.instance == instance and not row.deleted and port not in listed:
                self.rows[port] = replace(row, deleted=True, updated_at=now)
        for port, vif, revision in rows:
            row = self.rows.get(port)
            keeps = row is not None and not row.deleted and row.instance == instance
            position = row.position if keeps and row is not None else self._position(instance)
            self.rows[port] = ModelRow(instance, position, vif, revision, False, now)

    def purge(self, older_than: float) -> int:
        old = [p for p, r in self.rows.items() if r.deleted and r.updated_at < older_than]
        for port in old:
            del self.rows[port]
        return len(old)
