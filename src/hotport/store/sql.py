"""`SqlStore`: the `hotport.store.base.Store` contract on SQLAlchemy 2 (async Core).

Owns: the engine set-up (SQLite pragmas, how write transactions begin, pool sizes), the
Alembic upgrade at start-up, the conditional VIF writes exactly as `base.py` states them,
instances, the operation journal, the in-memory counters of refused writes, and the
translation of library errors into `hotport.store.base` errors.

Must never: hold a transaction open across an await on anything but the database; call
the network, the hypervisor or the lock service; log VIF JSON (not even at DEBUG: rows are
big and many); let a raw SQLAlchemy/driver exception escape a public method (they become
`StoreUnavailable` when transient, `StoreError` or a typed subclass otherwise); use
SQLite-only SQL outside the SQLite engine hooks.

Concurrency: every public method is one transaction. Each conditional write reads, compares
and writes in ONE write transaction, so two writers of one row can never both win:
  - SQLite: the sqlite3 driver's own transaction handling is switched off
    (`isolation_level = None`) and a `begin` hook emits `BEGIN IMMEDIATE` for write
    transactions (a plain, deferred `BEGIN` for reads). A writer therefore holds SQLite's
    one RESERVED lock from its first statement on: no read-then-upgrade deadlock
    (SQLITE_BUSY on upgrade) and no lost update. Other connections and processes wait up
    to `busy_timeout` for it; past that the caller gets `StoreUnavailable`. WAL mode lets
    readers run beside the writer. Inside one `SqlStore` an `asyncio.Lock` queues the
    writers so that they do not spin in SQLite's busy handler against each other.
  - PostgreSQL (or any server database): rows are read with `SELECT ... FOR UPDATE`
    (`with_for_update()`, which the SQLite dialect renders as nothing) in READ COMMITTED;
    locks are taken in one order (VIF rows by port id, then the instance row when a
    position is handed out), so writers of one port queue instead of deadlocking. Two
    first writers of a new port race on the primary key: the loser's transaction fails
    with an integrity error and is retried, and then sees the winner's row. Updates are
    additionally guarded by the revision and deleted flag that were read
    (`WHERE revision = :old AND deleted = :old`); a miss retries the transaction.
    Serialization failures and deadlocks (SQLSTATE 40001/40P01) are retried too.
Reads run in plain (deferred) transactions, beside the writer under WAL. Big reads
(`all_vifs`: one query for every row) decode the VIF JSON after the connection is released,
in chunks that yield to the event loop, so a heal's read does not stall the requests; the
heal itself reads no VIF JSON in bulk: `vif_heads` (no JSON) and `vif_texts` (JSON left
as text, several statements for many instances: not one snapshot).
Alembic keeps its context in module globals, so `upgrade` runs one migration at a time per
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, get_args

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Row, RowMapping, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from hotport.store.base import (
    JSON,
    InstanceExists,
    InstanceNotFound,
    InstanceRow,
    JournalEntry,
    JournalKind,
    JournalState,
    StoreError,
    StoreUnavailable,
    VifHead,
    VifRow,
    VifText,
    WriteOutcome,
    put_verdict,
    tombstone_verdict,
)
from hotport.store.schema import instances, journal, vifs

if TYPE_CHECKING:
    from hotport.store.base import Store

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "MIGRATIONS_DIR",
    "JournalEntryClosed",
    "JournalEntryNotFound",
    "SqlStore",
    "create_engine",
    "normalize_url",
    "open_store",
    "put_verdict",
    "tombstone_verdict",
    "upgrade",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
DEFAULT_BUSY_TIMEOUT: Final = 5.0  # seconds a SQLite writer waits for the write lock
_WRITE_OPTION: Final = "hotport_write"  # execution option: this transaction will write
_MAX_ATTEMPTS: Final = 5  # for retryable write conflicts (server databases)
_SQLITE_POOL_SIZE: Final = 4  # one writer at a time; the rest serve WAL readers
_SQLITE_MAX_OVERFLOW: Final = 4

_JOURNAL_KINDS: Final = frozenset(get_args(JournalKind))
_FINAL_STATES: Final = frozenset(get_args(JournalState)) - {"started"}

# SQLite result codes (sqlite3.Error.sqlite_errorname) that mean "try again later".
_SQLITE_TRANSIENT: Final = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")
_TRANSIENT_WORDS: Final = (
    "database is locked",
    "database table is locked",
    "unable to open database",
    "disk i/o error",
    "could not connect",
    "connection refused",
    "connection reset",
    "connection is closed",
    "server closed the connection",
    "terminating connection",
    "timeout",
    "timed out",
)
# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P operator
# intervention (shutdown), 40 transaction rollback (after our retries ran out).
_TRANSIENT_SQLSTATES: Final = ("08", "53", "57P", "40")
_RETRY_SQLSTATES: Final = ("40001", "40P01")


class JournalEntryNotFound(StoreError):
    """No journal entry with this id."""


class JournalEntryClosed(StoreError):
    """The journal entry is already finished (done, failed or rolled back)."""


class _Retry(Exception):
    """A guarded write found the row changed under it: run the transaction again."""


# -- engine ---------------------------------------------------------------------------


def normalize_url(url: str | URL) -> URL:
    """Give a bare `sqlite://` or `postgresql://` URL its async driver."""
    u = make_url(url)
    if u.drivername == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+asyncpg")
    return u


def _sqlite_file(u: URL) -> Path | None:
    db = u.database
    if u.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser()


def create_engine(url: str | URL, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> AsyncEngine:
    """An async engine set up for the store (SQLite: pragmas and BEGIN IMMEDIATE hooks)."""
    u = normalize_url(url)
    if u.get_backend_name() != "sqlite":
        return create_async_engine(u, pool_pre_ping=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": busy_timeout}}
    if _sqlite_file(u) is not None:
        kwargs.update(
            pool_size=_SQLITE_POOL_SIZE,
            max_overflow=_SQLITE_MAX_OVERFLOW,
            pool_timeout=max(busy_timeout, 1.0) * 2,
        )
    engine = create_async_engine(u, **kwargs)
    _install_sqlite_hooks(engine, busy_timeout)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout: float) -> None:
    busy_ms = max(int(busy_timeout * 1000), 0)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver: we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


# -- errors ---------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    for attr in ("sqlstate", "pgcode"):
        value = getattr(exc.orig, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _is_transient(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    name = getattr(exc.orig, "sqlite_errorname", None)
    if isinstance(name, str) and name.startswith(_SQLITE_TRANSIENT):
        return True
    state = _sqlstate(exc)
    if state is not None and state.startswith(_TRANSIENT_SQLSTATES):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        text = str(exc.orig).lower()
        return any(word in text for word in _TRANSIENT_WORDS)
    return False


def _is_retryable(exc: sa_exc.DBAPIError) -> bool:
    if isinstance(exc, sa_exc.IntegrityError):
        return True
    state = _sqlstate(exc)
    return state is not None and state in _RETRY_SQLSTATES


def _translate(exc: BaseException, op: str) -> Exception:
    """The store error (or ValueError for unstorable input) that stands for `exc`."""
    if isinstance(exc, sa_exc.DBAPIError):
        if _is_transient(exc):
            return StoreUnavailable(f"{op}: database unavailable: {_describe(exc)}")
        return StoreError(f"{op}: database error: {_describe(exc)}")
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError | OSError):
        return StoreUnavailable(f"{op}: database unavailable: {_describe(exc)}")
    if isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, TypeError | ValueError):
        return ValueError(f"{op}: value cannot be stored: {exc.orig}")
    return StoreError(f"{op}: {_describe(exc)}")


# -- migrations -----------------------------------------------------------------------

_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini) for this package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one write transaction (idempotent)."""
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.setdefault(loop, asyncio.Lock())
    try:
        async with lock, engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
            await conn.run_sync(_upgrade_sync, revision)
    except CommandError as exc:
        raise StoreError(f"migrating the store to {revision!r} failed: {exc}") from exc
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise _translate(exc, "migrate") from exc


async def open_store(
    url: str,
    *,
    migrate: bool = True,
    clock: Callable[[], float] = time.time,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> SqlStore:
    """Open (creating a SQLite file's directories) and migrate the store at `url`."""
    u = normalize_url(url)
    path = _sqlite_file(u)
    if path is not None:
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of the store {path}: {exc}") from exc
    engine = create_engine(u, busy_timeout=busy_timeout)
    try:
        if migrate:
            await upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    log.info("store opened: %s", u.render_as_string(hide_password=True))
    return SqlStore(engine, clock=clock)


# -- rows -----------------------------------------------------------------------------


# The VIF JSON is fetched as text and decoded here, outside the connection and in chunks
# that yield to the event loop: 100,000 rows take seconds of CPU to decode, and the loop
# must keep serving requests meanwhile.
_VIF_COLUMNS: Final = (
    vifs.c.port_id,
    vifs.c.instance_uuid,
    vifs.c.position,
    sa.type_coerce(vifs.c.vif, sa.Text()).label("vif"),
    vifs.c.revision,
    vifs.c.deleted,
    vifs.c.created_at,
    vifs.c.updated_at,
)
_DECODE_CHUNK: Final = 500
_IN_CHUNK: Final = 500  # ids per IN (...) list: well under every database's limit


def _json_value(value: Any) -> JSON:
    # (a driver may decode JSON itself)
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(decoded, dict):
        raise StoreError(f"a stored VIF is not a JSON object: {type(decoded).__name__}")
    return decoded


def _vif_row(r: Any) -> VifRow:  # a Row of _VIF_COLUMNS
    port_id, instance_uuid, position, vif, revision, deleted, created_at, updated_at = r
    return VifRow(
        port_id=port_id,
        instance_uuid=instance_uuid,
        position=int(position),
        vif=_json_value(vif),
        revision=int(revision),
        deleted=bool(deleted),
        created_at=float(created_at),
        updated_at=float(updated_at),
    )


async def _vif_rows(raw: Sequence[Row[Any]]) -> list[VifRow]:
    rows: list[VifRow] = []
    for start in range(0, len(raw), _DECODE_CHUNK):
        if start:
            await asyncio.sleep(0)
        rows.extend(_vif_row(r) for r in raw[start : start + _DECODE_CHUNK])
    return rows


def _instance_row(r: RowMapping) -> InstanceRow:
    return InstanceRow(
        uuid=r["uuid"],
        name=r["name"],
        host=r["host"],
        created_at=float(r["created_at"]),
        deleted=bool(r["deleted"]),
    )


def _journal_entry(r: RowMapping) -> JournalEntry:
    return JournalEntry(
        id=int(r["id"]),
        instance_uuid=r["instance_uuid"],
        port_id=r["port_id"],
        kind=cast(JournalKind, r["kind"]),
        state=cast(JournalState, r["state"]),
        error=r["error"],
        details=dict(r["details"] or {}),
        created_at=float(r["created_at"]),
        updated_at=float(r["updated_at"]),
    )


def _check_revision(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


_LIVE = vifs.c.deleted == sa.false()


@contextlib.asynccontextmanager
async def _holding(lock: asyncio.Lock | None) -> AsyncIterator[None]:
    if lock is None:
        yield
    else:
        async with lock:
            yield


async def _allocate_positions(conn: AsyncConnection, instance_uuid: str, count: int = 1) -> int:
    """Hand out `count` new positions of the instance; returns the first one."""
    result = await conn.execute(
        sa.update(instances)
        .where(instances.c.uuid == instance_uuid)
        .values(next_position=instances.c.next_position + count)
        .returning(instances.c.next_position)
    )
    return int(result.scalar_one()) - count


async def _instance_is_live(conn: AsyncConnection, uuid: str) -> bool:
    result = await conn.execute(sa.select(instances.c.deleted).where(instances.c.uuid == uuid))
    deleted = result.scalar_one_or_none()
    return deleted is not None and not deleted


async def _lock_vif(conn: AsyncConnection, port_id: str) -> VifRow | None:
    result = await conn.execute(
        sa.select(*_VIF_COLUMNS).where(vifs.c.port_id == port_id).with_for_update()
    )
    row = result.one_or_none()
    return None if row is None else _vif_row(row)


async def _update_vif(conn: AsyncConnection, old: VifRow, **values: Any) -> None:
    """Update `old`'s row, guarded by the revision and flag that were read."""
    result = await conn.execute(
        sa.update(vifs)
        .where(
            vifs.c.port_id == old.port_id,
            vifs.c.revision == old.revision,
            vifs.c.deleted == (sa.true() if old.deleted else sa.false()),
        )
        .values(**values)
    )
    if result.rowcount != 1:
        raise _Retry(old.port_id)


# -- the store ------------------------------------------------------------------------


class SqlStore:
    """Instances, VIF rows and the journal in a SQL database (see the module docstring).

    Build it with `open_store`; a hand-made engine must come from `create_engine` (the
    SQLite hooks make the write transactions atomic).
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._clock = clock
        sqlite = engine.dialect.name == "sqlite"
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if sqlite else None
        # An in-memory SQLite database is one shared connection: queue the readers too.
        shared = isinstance(engine.sync_engine.pool, StaticPool)
        self._read_lock: asyncio.Lock | None = self._write_lock if shared else None
        self._refused: Counter[str] = Counter({"stale": 0, "conflict": 0})
        self._closed = False

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def __aenter__(self) -> SqlStore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._engine.dispose()

    # -- transactions ------------------------------------------------------------------

    def _check_open(self, op: str) -> None:
        if self._closed:
            raise StoreError(f"{op}: the store is closed")

    async def _read(self, op: str, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        self._check_open(op)
        try:
            async with _holding(self._read_lock), self._engine.connect() as conn:
                return await fn(conn)
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise _translate(exc, op) from exc

    async def _write(self, op: str, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `fn` in one write transaction, retrying races a server database reports."""
        self._check_open(op)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with _holding(self._write_lock), self._write_engine.begin() as conn:
                    return await fn(conn)
            except _Retry as exc:
                if attempt >= _MAX_ATTEMPTS:
                    raise StoreUnavailable(
                        f"{op}: row {exc} kept changing; gave up after {attempt} attempts"
                    ) from None
                log.debug("%s: row %s changed under the write; retrying", op, exc)
            except sa_exc.DBAPIError as exc:
                if not _is_retryable(exc) or attempt >= _MAX_ATTEMPTS:
                    raise _translate(exc, op) from exc
                log.debug("%s: retrying after %s", op, _describe(exc))
            except (sa_exc.SQLAlchemyError, OSError) as exc:
                raise _translate(exc, op) from exc

    def _account(
        self,
        op: str,
        port_id: str,
        revision: int,
        outcome: WriteOutcome,
        expect: int | None,
        expect_deleted: bool | None = None,
    ) -> None:
        if outcome.applied:
            return
        if outcome.reason in ("stale", "conflict"):
            self._refused[outcome.reason] += 1
        row = outcome.row
        log.debug(
            "%s refused: port=%s revision=%d row_revision=%s row_deleted=%s expect=%s "
            "expect_deleted=%s reason=%s",
            op,
            port_id,
            revision,
            None if row is None else row.revision,
            None if row is None else row.deleted,
            expect,
            expect_deleted,
            outcome.reason,
        )

    # -- instances ---------------------------------------------------------------------

    async def create_instance(self, uuid: str, name: str, host: str) -> InstanceRow:
        async def txn(conn: AsyncConnection) -> InstanceRow:
            result = await conn.execute(
                sa.select(instances.c.deleted).where(instances.c.uuid == uuid).with_for_update()
            )
            deleted = result.scalar_one_or_none()
            now = self._clock()
            if deleted is None:
                await conn.execute(
                    sa.insert(instances).values(
                        uuid=uuid,
                        name=name,
                        host=host,
                        created_at=now,
                        deleted=False,
                        next_position=0,
                    )
                )
            elif not deleted:
                raise InstanceExists(uuid)
            else:  # re-created: positions go on counting (they are never reused)
                await conn.execute(
                    sa.update(instances)
                    .where(instances.c.uuid == uuid)
                    .values(name=name, host=host, created_at=now, deleted=False)
                )
            return InstanceRow(uuid=uuid, name=name, host=host, created_at=now)

        return await self._write("create_instance", txn)

    async def get_instance(self, uuid: str) -> InstanceRow | None:
        async def txn(conn: AsyncConnection) -> InstanceRow | None:
            result = await conn.execute(
                sa.select(instances).where(
                    instances.c.uuid == uuid, instances.c.deleted == sa.false()
                )
            )
            row = result.mappings().one_or_none()
            return None if row is None else _instance_row(row)

        return await self._read("get_instance", txn)

    async def list_instances(self, host: str | None = None) -> list[InstanceRow]:
        query = sa.select(instances).where(instances.c.deleted == sa.false())
        if host is not None:
            query = query.where(instances.c.host == host)
        query = query.order_by(instances.c.created_at, instances.c.uuid)

        async def txn(conn: AsyncConnection) -> list[InstanceRow]:
            result = await conn.execute(query)
            return [_instance_row(r) for r in result.mappings()]

        return await self._read("list_instances", txn)

    async def delete_instance(self, uuid: str) -> None:
        async def txn(conn: AsyncConnection) -> None:
            result = await conn.execute(
                sa.update(instances)
                .where(instances.c.uuid == uuid, instances.c.deleted == sa.false())
                .values(deleted=True)
            )
            if result.rowcount != 1:
                raise InstanceNotFound(uuid)

        await self._write("delete_instance", txn)

    # -- VIF rows: reads ---------------------------------------------------------------

    async def vifs(self, instance_uuid: str, *, include_deleted: bool = False) -> list[VifRow]:
        query = sa.select(*_VIF_COLUMNS).where(vifs.c.instance_uuid == instance_uuid)
        if not include_deleted:
            query = query.where(_LIVE)
        query = query.order_by(vifs.c.position, vifs.c.port_id)

        async def txn(conn: AsyncConnection) -> Sequence[Row[Any]]:
            return (await conn.execute(query)).all()

        return await _vif_rows(await self._read("vifs", txn))

    async def vif(self, port_id: str) -> VifRow | None:
        async def txn(conn: AsyncConnection) -> VifRow | None:
            result = await conn.execute(sa.select(*_VIF_COLUMNS).where(vifs.c.port_id == port_id))
            row = result.one_or_none()
            return None if row is None else _vif_row(row)

        return await self._read("vif", txn)

    async def all_vifs(self, *, include_deleted: bool = False) -> list[VifRow]:
        query = sa.select(*_VIF_COLUMNS)
        if not include_deleted:
            query = query.where(_LIVE)
        query = query.order_by(vifs.c.instance_uuid, vifs.c.position, vifs.c.port_id)

        async def txn(conn: AsyncConnection) -> Sequence[Row[Any]]:
            # ONE query for every row of every instance
            return (await conn.execute(query)).all()

        return await _vif_rows(await self._read("all_vifs", txn))

    # -- VIF rows: the heal's light reads (no JSON decoded in Python) -------------------

    def now(self) -> float:
        return self._clock()

    async def vif_heads(self, *, since: float | None = None) -> list[VifHead]:
        query = sa.select(
            vifs.c.port_id, vifs.c.instance_uuid, vifs.c.revision, vifs.c.deleted, vifs.c.updated_at
        )
        if since is not None:  # (both values of `deleted`: the (deleted, updated_at) index)
            query = query.where(vifs.c.deleted.in_([False, True]), vifs.c.updated_at >= since)

        async def txn(conn: AsyncConnection) -> list[VifHead]:
            # ONE query; five small columns per row (100,000 rows: a tenth of a second)
            result = await conn.execute(query)
            return list(map(VifHead._make, result.all()))  # (typed by the columns)

        return await self._read("vif_heads", txn)

    async def vif_texts(self, instance_uuids: Collection[str]) -> list[VifText]:
        ids = sorted(set(instance_uuids))
        if not ids:
            return []

        async def txn(conn: AsyncConnection) -> list[VifText]:
            out: list[VifText] = []
            for start in range(0, len(ids), _IN_CHUNK):
                # (tombstones are dropped here, not in SQL: with `deleted` in the WHERE
                # clause SQLite walks the deleted index, i.e. every live row, per chunk)
                result = await conn.execute(
                    sa.select(
                        vifs.c.port_id,
                        vifs.c.instance_uuid,
                        vifs.c.revision,
                        vifs.c.deleted,
                        sa.type_coerce(vifs.c.vif, sa.Text()),
                    ).where(vifs.c.instance_uuid.in_(ids[start : start + _IN_CHUNK]))
                )
                out.extend(
                    VifText(p, i, r, t if type(t) is str else json.dumps(t))
                    for p, i, r, d, t in result.all()
                    if not d
                )
            return out

        return await self._read("vif_texts", txn)

    # -- VIF rows: conditional writes --------------------------------------------------

    async def put_vif(
        self,
        instance_uuid: str,
        port_id: str,
        vif: Mapping[str, Any],
        revision: int,
        *,
        expect: int | None = None,
        expect_deleted: bool | None = None,
    ) -> WriteOutcome:
        _check_revision("revision", revision)
        if expect is not None:
            _check_revision("expect", expect)
        data: JSON = dict(vif)

        async def txn(conn: AsyncConnection) -> WriteOutcome:
            if not await _instance_is_live(conn, instance_uuid):
                raise InstanceNotFound(instance_uuid)
            row = await _lock_vif(conn, port_id)
            reason = put_verdict(row, revision, expect, expect_deleted)
            if reason != "applied":
                return WriteOutcome(reason, row)
            now = self._clock()
            if row is None:
                position = await _allocate_positions(conn, instance_uuid)
                await conn.execute(
                    sa.insert(vifs).values(
                        port_id=port_id,
                        instance_uuid=instance_uuid,
                        position=position,
                        vif=data,
                        revision=revision,
                        deleted=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
                created_at = now
            else:
                # Resurrection or a move to another instance: a new place at the end.
                fresh = row.deleted or row.instance_uuid != instance_uuid
                position = await _allocate_positions(conn, instance_uuid) if fresh else row.position
                created_at = now if fresh else row.created_at
                await _update_vif(
                    conn,
                    row,
                    instance_uuid=instance_uuid,
                    position=position,
                    vif=data,
                    revision=revision,
                    deleted=False,
                    created_at=created_at,
                    updated_at=now,
                )
            return WriteOutcome(
                "applied",
                VifRow(
                    port_id=port_id,
                    instance_uuid=instance_uuid,
                    position=position,
                    vif=data,
                    revision=revision,
                    deleted=False,
                    created_at=created_at,
                    updated_at=now,
                ),
            )

        outcome = await self._write("put_vif", txn)
        self._account("put_vif", port_id, revision, outcome, expect, expect_deleted)
        return outcome

    async def tombstone_vif(
        self,
        port_id: str,
        revision: int,
        *,
        expect: int | None = None,
    ) -> WriteOutcome:
        _check_revision("revision", revision)
        if expect is not None:
            _check_revision("expect", expect)

        async def txn(conn: AsyncConnection) -> WriteOutcome:
            row = await _lock_vif(conn, port_id)
            reason = tombstone_verdict(row, revision, expect)
            if reason != "applied" or row is None:
                return WriteOutcome(reason, row)
            now = self._clock()
            await _update_vif(conn, row, revision=revision, deleted=True, updated_at=now)
            return WriteOutcome(
                "applied",
                VifRow(
                    port_id=row.port_id,
                    instance_uuid=row.instance_uuid,
                    position=row.position,
                    vif=row.vif,
                    revision=revision,
                    deleted=True,
                    created_at=row.created_at,
                    updated_at=now,
                ),
            )

        outcome = await self._write("tombstone_vif", txn)
        self._account("tombstone_vif", port_id, revision, outcome, expect)
        return outcome

    async def set_active(self, port_id: str, active: bool) -> bool:
        async def txn(conn: AsyncConnection) -> bool:
            row = await _lock_vif(conn, port_id)
            if row is None or row.deleted:
                return False
            data = dict(row.vif)
            data["active"] = bool(active)
            await _update_vif(conn, row, vif=data, updated_at=self._clock())
            return True

        return await self._write("set_active", txn)

    async def replace_instance_vifs(
        self, instance_uuid: str, rows: Sequence[tuple[str, Mapping[str, Any], int]]
    ) -> None:
        """UNCONDITIONAL whole-blob write (the `article` reference policy only).

        Every listed row is written whatever its current revision; the instance's other
        live rows become tombstones (revision kept). Positions follow the rule of live
        writes: a live row of this instance keeps its place, a new, resurrected or moved
        row gets a new one, in the order given.
        """
        given = [(port_id, dict(vif), revision) for port_id, vif, revision in rows]
        ports = [port_id for port_id, _, _ in given]
        if len(set(ports)) != len(ports):
            raise ValueError("replace_instance_vifs: a port is listed twice")
        for _, _, revision in given:
            _check_revision("revision", revision)

        async def txn(conn: AsyncConnection) -> None:
            if not await _instance_is_live(conn, instance_uuid):
                raise InstanceNotFound(instance_uuid)
            mine = sa.and_(vifs.c.instance_uuid == instance_uuid, _LIVE)
            where = sa.or_(mine, vifs.c.port_id.in_(ports)) if ports else mine
            result = await conn.execute(
                sa.select(*_VIF_COLUMNS).where(where).order_by(vifs.c.port_id).with_for_update()
            )
            existing = {row.port_id: row for row in map(_vif_row, result.all())}
            kept = {
                p
                for p, r in existing.items()
                if not r.deleted and r.instance_uuid == instance_uuid and p in set(ports)
            }
            fresh = [p for p in ports if p not in kept]
            first = await _allocate_positions(conn, instance_uuid, len(fresh)) if fresh else 0
            new_position = {p: first + k for k, p in enumerate(fresh)}
            now = self._clock()
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for port_id, vif, revision in given:
                old = existing.get(port_id)
                if old is None:
                    inserts.append(
                        {
                            "port_id": port_id,
                            "instance_uuid": instance_uuid,
                            "position": new_position[port_id],
                            "vif": vif,
                            "revision": revision,
                            "deleted": False,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                else:
                    keep = port_id in kept
                    updates.append(
                        {
                            "b_port_id": port_id,
                            "b_instance_uuid": instance_uuid,
                            "b_position": old.position if keep else new_position[port_id],
                            "b_vif": vif,
                            "b_revision": revision,
                            "b_created_at": old.created_at if keep else now,
                        }
                    )
            if inserts:
                await conn.execute(sa.insert(vifs), inserts)
            if updates:
                await conn.execute(
                    sa.update(vifs)
                    .where(vifs.c.port_id == sa.bindparam("b_port_id"))
                    .values(
                        instance_uuid=sa.bindparam("b_instance_uuid"),
                        position=sa.bindparam("b_position"),
                        vif=sa.bindparam("b_vif", type_=vifs.c.vif.type),
                        revision=sa.bindparam("b_revision"),
                        deleted=False,
                        created_at=sa.bindparam("b_created_at"),
                        updated_at=now,
                    ),
                    updates,
                )
            gone = [
                p
                for p, r in existing.items()
                if r.instance_uuid == instance_uuid and not r.deleted and p not in set(ports)
            ]
            if gone:
                await conn.execute(
                    sa.update(vifs)
                    .where(vifs.c.port_id.in_(gone))
                    .values(deleted=True, updated_at=now)
                )
            log.debug(
                "replace_instance_vifs: instance=%s written=%d tombstoned=%d",
                instance_uuid,
                len(given),
                len(gone),
            )

        await self._write("replace_instance_vifs", txn)

    async def purge_tombstones(self, older_than: float) -> int:
        async def txn(conn: AsyncConnection) -> int:
            result = await conn.execute(
                sa.delete(vifs).where(vifs.c.deleted == sa.true(), vifs.c.updated_at < older_than)
            )
            return int(result.rowcount)

        count = await self._write("purge_tombstones", txn)
        if count:
            log.info("purged %d tombstones last updated before %.3f", count, older_than)
        return count

    def refused_writes(self) -> Mapping[str, int]:
        return dict(self._refused)

    # -- set-up in bulk (benchmarks, scale runs, tests) ----------------------------------

    async def bulk_load(
        self,
        host: str,
        rows: Iterable[tuple[str, str, Mapping[str, Any], int]],
        *,
        chunk: int = 5_000,
    ) -> tuple[int, int]:
        """Record (instance, port_id, vif, revision) rows as live VIFs, creating the
        instances (on `host`, named after their UUID) on first sight; returns (instances,
        rows) written. SET-UP ONLY: unconditional inserts, no write rules, positions
        handed out in the order given. The rows must be new (an existing port or instance
        raises `StoreError`). One transaction per `chunk` rows, so a 100,000-row load
        neither holds the write lock for long nor needs the rows in memory at once."""
        if chunk < 1:
            raise ValueError("bulk_load: chunk must be positive")
        seen: dict[str, int] = {}  # instance -> next position
        counts = [0, 0]

        async def flush(batch: list[tuple[str, str, Mapping[str, Any], int]]) -> None:
            fresh: list[dict[str, Any]] = []
            values: list[dict[str, Any]] = []
            now = self._clock()
            for instance_uuid, port_id, vif, revision in batch:
                _check_revision("revision", revision)
                position = seen.get(instance_uuid)
                if position is None:
                    position = 0
                    fresh.append(
                        {
                            "uuid": instance_uuid,
                            "name": instance_uuid,
                            "host": host,
                            "created_at": now,
                            "deleted": False,
                            "next_position": 0,
                        }
                    )
                seen[instance_uuid] = position + 1
                values.append(
                    {
                        "port_id": port_id,
                        "instance_uuid": instance_uuid,
                        "position": position,
                        "vif": dict(vif),
                        "revision": revision,
                        "deleted": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            touched = {v["instance_uuid"] for v in values}

            async def txn(conn: AsyncConnection) -> None:
                if fresh:
                    await conn.execute(sa.insert(instances), fresh)
                await conn.execute(sa.insert(vifs), values)
                await conn.execute(
                    sa.update(instances)
                    .where(instances.c.uuid == sa.bindparam("b_uuid"))
                    .values(next_position=sa.bindparam("b_next")),
                    [{"b_uuid": u, "b_next": seen[u]} for u in touched],
                )

            await self._write("bulk_load", txn)
            counts[0] += len(fresh)
            counts[1] += len(values)

        batch: list[tuple[str, str, Mapping[str, Any], int]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                await flush(batch)
                batch = []
        if batch:
            await flush(batch)
        return counts[0], counts[1]

    # -- journal -----------------------------------------------------------------------

    async def journal_start(
        self,
        instance_uuid: str,
        port_id: str | None,
        kind: JournalKind,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        if kind not in _JOURNAL_KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
        data: JSON = dict(details or {})

        async def txn(conn: AsyncConnection) -> int:
            now = self._clock()
            result = await conn.execute(
                sa.insert(journal)
                .values(
                    instance_uuid=instance_uuid,
                    port_id=port_id,
                    kind=kind,
                    state="started",
                    error=None,
                    details=data,
                    created_at=now,
                    updated_at=now,
                )
                .returning(journal.c.id)
            )
            return int(result.scalar_one())

        return await self._write("journal_start", txn)

    async def _open_entry(self, conn: AsyncConnection, entry_id: int, op: str) -> JournalEntry:
        result = await conn.execute(
            sa.select(journal).where(journal.c.id == entry_id).with_for_update()
        )
        row = result.mappings().one_or_none()
        if row is None:
            raise JournalEntryNotFound(f"{op}: no journal entry {entry_id}")
        entry = _journal_entry(row)
        if not entry.open:
            raise JournalEntryClosed(f"{op}: journal entry {entry_id} is already {entry.state}")
        return entry

    async def journal_update(self, entry_id: int, details: Mapping[str, Any]) -> None:
        async def txn(conn: AsyncConnection) -> None:
            entry = await self._open_entry(conn, entry_id, "journal_update")
            values: dict[str, Any] = {
                "details": {**entry.details, **details},
                "updated_at": self._clock(),
            }
            if entry.port_id is None and isinstance(details.get("port_id"), str):
                values["port_id"] = details["port_id"]  # learnt after the start (a created port)
            await conn.execute(sa.update(journal).where(journal.c.id == entry_id).values(**values))

        await self._write("journal_update", txn)

    async def journal_finish(
        self,
        entry_id: int,
        state: JournalState,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        if state not in _FINAL_STATES:
            raise ValueError(f"journal_finish: {state!r} is not a final state")

        async def txn(conn: AsyncConnection) -> None:
            entry = await self._open_entry(conn, entry_id, "journal_finish")
            await conn.execute(
                sa.update(journal)
                .where(journal.c.id == entry_id)
                .values(
                    state=state,
                    error=error,
                    details={**entry.details, **(details or {})},
                    updated_at=self._clock(),
                )
            )

        await self._write("journal_finish", txn)

    async def journal(
        self,
        *,
        instance_uuid: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[JournalEntry]:
        if limit < 0:
            raise ValueError("journal: limit must not be negative")
        query = sa.select(journal)
        if instance_uuid is not None:
            query = query.where(journal.c.instance_uuid == instance_uuid)
        if open_only:
            query = query.where(journal.c.state == "started")
        query = query.order_by(journal.c.id.desc()).limit(limit)

        async def txn(conn: AsyncConnection) -> list[JournalEntry]:
            result = await conn.execute(query)
            return [_journal_entry(r) for r in result.mappings()]

        return await self._read("journal", txn)

    async def open_ports(self) -> set[str]:
        async def txn(conn: AsyncConnection) -> set[str]:
            result = await conn.execute(
                sa.select(journal.c.port_id)
                .where(journal.c.state == "started", journal.c.port_id.is_not(None))
                .distinct()
            )
            return {str(p) for p in result.scalars()}

        return await self._read("open_ports", txn)

    async def journal_counts(self) -> dict[str, int]:
        async def txn(conn: AsyncConnection) -> dict[str, int]:
            result = await conn.execute(
                sa.select(journal.c.state, sa.func.count()).group_by(journal.c.state)
            )
            return {str(state): int(n) for state, n in result.all()}

        return await self._read("journal_counts", txn)


if TYPE_CHECKING:

    def _conforms(store: SqlStore) -> Store:
        return store
