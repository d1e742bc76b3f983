"""workers and deliveries.claimed_by: a dead worker's copies are taken over within seconds

Each worker process records itself in ``workers`` and refreshes ``last_seen`` from a thread of
its own; a delivery's claim names its worker (``deliveries.claimed_by``), so the sweeper takes
over the claims of a worker that went silent instead of waiting for their lease to run out.

Revision ID: 0019
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from hub.sqltypes import UTCDateTime

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("node", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_by", sa.String(length=120), nullable=False, server_default="")
        )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), as in 0012.
    op.execute("ALTER TABLE deliveries DROP COLUMN claimed_by")
    op.drop_table("workers")
