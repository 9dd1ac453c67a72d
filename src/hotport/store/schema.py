"""The store's tables, declared in Python (SQLAlchemy Core) for queries and for Alembic.

Owns: the table, column, index and constraint definitions of the store, and the naming
convention that gives every constraint and index a stable, dialect-independent name.

Must never: create or alter tables itself (Alembic's `migrations/versions/` does, from the
first table on: a change here needs a new migration, and the migration test compares the
two); import anything of hotport beyond the standard library and SQLAlchemy.

Concurrency: none; these are immutable declarations, shared freely.

Types are portable (SQLite and PostgreSQL): times are unix seconds as double-precision
floats (from the store's injectable clock), JSON goes through `sa.JSON` (TEXT on SQLite,
`json` on PostgreSQL), booleans are `sa.Boolean` without a CHECK constraint.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 64
NAME_LENGTH = 255

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("uuid", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("host", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    # The next position to hand out to a VIF of this instance: positions are never reused.
    sa.Column("next_position", sa.Integer(), nullable=False, server_default=sa.text("0")),
)
sa.Index(None, instances.c.host, instances.c.deleted)

vifs = sa.Table(
    "vifs",
    metadata,
    sa.Column("port_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column(
        "instance_uuid",
        sa.String(ID_LENGTH),
        sa.ForeignKey(instances.c.uuid),
        nullable=False,
    ),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("vif", sa.JSON(), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)
sa.Index(None, vifs.c.instance_uuid, vifs.c.position)
sa.Index(None, vifs.c.deleted, vifs.c.updated_at)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("instance_uuid", sa.String(ID_LENGTH), nullable=False),
    sa.Column("port_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)
sa.Index(None, journal.c.state)
sa.Index(None, journal.c.port_id)
sa.Index(None, journal.c.instance_uuid)
