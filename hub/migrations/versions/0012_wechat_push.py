"""WeChat publish-and-push (群发) and reconciliation of lost submit answers

deliveries.mode ("" = publish, "push" = mass send), deliveries.msg_data_id (comments are
addressed by it), deliveries.submitted_at (start of the reconciliation grace period);
posts.wechat_modes (account id -> "publish"/"push"), posts.wechat_comments and the org's default
orgs.wechat_comments ("closed", "open", "fans").

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.sqltypes import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=10), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("msg_data_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wechat_modes", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column(
                "wechat_comments", sa.String(length=10), nullable=False, server_default="closed"
            )
        )
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "wechat_comments", sa.String(length=10), nullable=False, server_default="closed"
            )
        )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL): batch mode would copy and drop
    # ``orgs``, which SQLite refuses while accounts reference it (foreign keys are on).
    for table, column in (
        ("orgs", "wechat_comments"),
        ("posts", "wechat_comments"),
        ("posts", "wechat_modes"),
        ("deliveries", "submitted_at"),
        ("deliveries", "msg_data_id"),
        ("deliveries", "mode"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
