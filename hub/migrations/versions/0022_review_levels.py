"""review chains (三审三校), live key-event approvers and plans, event time of urgent posts

- ``review_chains``: an org's 1-3 review levels and its emergency fast path;
  ``posts.review_level`` (the level a post waits at), ``approvals.level`` (where a decision was
  taken).
- ``live_sessions.approver_ids`` / ``plan`` / ``plan_approved_by`` / ``plan_approved_at`` and
  ``live_entries.key_by`` / ``key_approved_by`` / ``key_approved_at``: a key event reaches social
  media only once a second person approved it (or the plan a reviewer approved before the start).
- ``posts.event_at``: when the emergency or hot topic happened; its clock runs from it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.sqltypes import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("emergency", sa.String(length=20), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"]),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_chains_org_id", "review_chains", ["org_id"], unique=True)
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_level", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("event_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("level", sa.Integer(), nullable=True))
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("approver_ids", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("plan", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("plan_approved_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("plan_approved_at", UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("live_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("key_approved_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("key_approved_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), as in 0012.
    for table, column in (
        ("live_entries", "key_approved_at"),
        ("live_entries", "key_approved_by"),
        ("live_entries", "key_by"),
        ("live_sessions", "plan_approved_at"),
        ("live_sessions", "plan_approved_by"),
        ("live_sessions", "plan"),
        ("live_sessions", "approver_ids"),
        ("approvals", "level"),
        ("posts", "event_at"),
        ("posts", "review_level"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index("ix_review_chains_org_id", table_name="review_chains")
    op.drop_table("review_chains")
