"""reach_counts and reach_pulls: readers' counts of published copies, per copy per day

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from hub.sqltypes import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reach_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("pulled_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id", "day", "metric", name="uq_reach_counts_copy_day_metric"),
    )
    op.create_index("ix_reach_counts_delivery_id", "reach_counts", ["delivery_id"])
    op.create_index("ix_reach_counts_account_day", "reach_counts", ["account_id", "day"])
    op.create_table(
        "reach_pulls",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("last_pulled_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("next_pull_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("reach_pulls")
    op.drop_index("ix_reach_counts_account_day", table_name="reach_counts")
    op.drop_index("ix_reach_counts_delivery_id", table_name="reach_counts")
    op.drop_table("reach_counts")
