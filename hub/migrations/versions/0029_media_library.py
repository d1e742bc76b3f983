"""media library: every uploaded image per org with its alt text; each org's default cover

Images uploaded before this revision are entered from the audit log's ``media.upload`` events
(org, uploader, time); size, hash and dimensions are read from the file when it is still in
GOVHUB_MEDIA_DIR, else left at zero.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from hub.sqltypes import UTCDateTime

revision = "0029"
down_revision = "0028"
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
    _backfill()


def _backfill() -> None:
    """One library row per earlier upload, from its audit event (the only record there was)."""
    bind = op.get_bind()
    events = bind.execute(
        sa.text(
            "SELECT object_id, org_id, actor_id, at, summary FROM audit_log "
            "WHERE action = 'media.upload' AND org_id IS NOT NULL ORDER BY id"
        )
    ).all()
    if not events:
        return
    from hub.config import get_settings

    root = Path(get_settings().media_dir)
    users = {r[0] for r in bind.execute(sa.text("SELECT id FROM users")).all()}
    media = sa.table(
        "media",
        sa.column("created_at", UTCDateTime(timezone=True)),
        *(
            sa.column(name)
            for name in (
                "org_id",
                "path",
                "original_name",
                "content_hash",
                "content_type",
                "size",
                "width",
                "height",
                "alt",
                "uploaded_by",
                "created_at",
            )
        ),
    )
    seen: set[str] = set()
    rows = []
    for path, org_id, actor_id, at, summary in events:
        if not path or path in seen:
            continue
        seen.add(path)
        row = {
            "org_id": org_id,
            "path": path,
            "original_name": "",
            "content_hash": "",
            "content_type": (summary or "").split(",")[0][:40],
            "size": 0,
            "width": 0,
            "height": 0,
            "alt": "",
            "uploaded_by": actor_id if actor_id in users else None,
            "created_at": _when(at),
        }
        row.update(_facts(root / path))
        rows.append(row)
    op.bulk_insert(media, rows)


def _when(at: object) -> datetime:
    """The event's time: SQLite hands back the text of the column, PostgreSQL a datetime."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if not isinstance(at, datetime):
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _facts(file: Path) -> dict[str, object]:
    try:
        data = file.read_bytes()
    except OSError:
        return {}
    facts: dict[str, object] = {"size": len(data), "content_hash": hashlib.sha256(data).hexdigest()}
    try:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            facts.update(width=int(image.width), height=int(image.height))
    except Exception:  # a damaged old file keeps zero dimensions
        pass
    return facts


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL): batch mode would copy and drop
    # ``orgs``, which SQLite refuses while accounts reference it (foreign keys are on).
    op.execute("ALTER TABLE orgs DROP COLUMN default_cover")
    op.drop_index("ix_media_content_hash", table_name="media")
    op.drop_index("ix_media_org_created", table_name="media")
    op.drop_table("media")
