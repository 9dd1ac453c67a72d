"""Initial schema: instances, vifs (one row per port), journal.

Revision ID: 0001
Revises:
Create Date: 2025-11-24

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("next_position", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_instances")),
    )
    op.create_index(op.f("ix_instances_host_deleted"), "instances", ["host", "deleted"])

    op.create_table(
        "vifs",
        sa.Column("port_id", sa.String(64), nullable=False),
        sa.Column("instance_uuid", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("vif", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_uuid"],
            ["instances.uuid"],
            name=op.f("fk_vifs_instance_uuid_instances"),
        ),
        sa.PrimaryKeyConstraint("port_id", name=op.f("pk_vifs")),
    )
    op.create_index(op.f("ix_vifs_instance_uuid_position"), "vifs", ["instance_uuid", "position"])
    op.create_index(op.f("ix_vifs_deleted_updated_at"), "vifs", ["deleted", "updated_at"])

    op.create_table(
        "journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_uuid", sa.String(64), nullable=False),
        sa.Column("port_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
    )
    op.create_index(op.f("ix_journal_state"), "journal", ["state"])
    op.create_index(op.f("ix_journal_port_id"), "journal", ["port_id"])
    op.create_index(op.f("ix_journal_instance_uuid"), "journal", ["instance_uuid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_journal_instance_uuid"), table_name="journal")
    op.drop_index(op.f("ix_journal_port_id"), table_name="journal")
    op.drop_index(op.f("ix_journal_state"), table_name="journal")
    op.drop_table("journal")
    op.drop_index(op.f("ix_vifs_deleted_updated_at"), table_name="vifs")
    op.drop_index(op.f("ix_vifs_instance_uuid_position"), table_name="vifs")
    op.drop_table("vifs")
    op.drop_index(op.f("ix_instances_host_deleted"), table_name="instances")
    op.drop_table("instances")
