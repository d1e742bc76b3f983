"""partner sites hear of withdrawals: partner_deliveries.event, unique per (partner, entry, event)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partner_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event", sa.String(length=20), nullable=False, server_default="published")
        )
        batch_op.drop_constraint("uq_partner_deliveries_partner_entry", type_="unique")
        batch_op.create_unique_constraint(
            "uq_partner_deliveries_partner_entry_event", ["partner_id", "entry_id", "event"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM partner_deliveries WHERE event <> 'published'")
    with op.batch_alter_table("partner_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_partner_deliveries_partner_entry_event", type_="unique")
        batch_op.create_unique_constraint(
            "uq_partner_deliveries_partner_entry", ["partner_id", "entry_id"]
        )
        batch_op.drop_column("event")
