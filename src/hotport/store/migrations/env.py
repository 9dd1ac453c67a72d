"""Alembic environment of the hotport store.

Owns: how Alembic reaches the database when migrations run.

At run time `hotport.store.sql.upgrade` builds the Alembic `Config` in code (no alembic.ini)
and hands over an open, already-transactional SQLAlchemy connection in
`config.attributes["connection"]`: the migrations run in that transaction, which on SQLite
was begun with `BEGIN IMMEDIATE`, so two processes starting at once migrate one at a time.

For developers (e.g. `alembic revision --autogenerate`), a URL may be given instead as
`-x url=...`, the `sqlalchemy.url` option or `HOTPORT_STORE_URL`; an async URL is driven
through `asyncio.run`.

Must never: configure logging (the service owns that), import anything of hotport but the
schema.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hotport.store.schema import metadata

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run_on(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("HOTPORT_STORE_URL")
    )
    if not url:
        raise RuntimeError("no database: pass -x url=..., sqlalchemy.url or HOTPORT_STORE_URL")
    return url


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_on(connection)
    else:
        asyncio.run(_run_async(_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
