"""media library: every uploaded image per org with its alt text; each org's default cover

Revision ID: 0029
Revises: 0024
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.sqltypes import UTCDateTime

revision = "0029"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("alt", sa.String(length=200), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    op.create_index("ix_media_org_created", "media", ["org_id", "created_at"])
    op.create_index("ix_media_content_hash", "media", ["content_hash"])
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(
            sa.Column("default_cover", sa.String(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL): batch mode would copy and drop
    # ``orgs``, which SQLite refuses while accounts reference it (foreign keys are on).
    op.execute("ALTER TABLE orgs DROP COLUMN default_cover")
    op.drop_index("ix_media_content_hash", table_name="media")
    op.drop_index("ix_media_org_created", table_name="media")
    op.drop_table("media")
