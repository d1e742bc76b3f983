"""Running Alembic migrations from code (``govhub db upgrade``/``downgrade``, tests, demo)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Database objects written by hand in migrations, unknown to the models: the release hall's
# search (0006: SQLite FTS5 table and its shadow tables, PostgreSQL trigram indexes).
HAND_WRITTEN_PREFIXES = (
    "hall_entries_fts",
    "ix_hall_entries_title_trgm",
    "ix_hall_entries_text_trgm",
)


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Alembic name filter: compare everything except the hand-written objects above."""
    return not (name or "").startswith(HAND_WRITTEN_PREFIXES)


def alembic_config(database_url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "-1") -> None:
    """Migrate down; "-1" is one step, also from a merge point (back to the merged heads)."""
    from alembic.script import ScriptDirectory

    config = alembic_config(database_url)
    heads = current(database_url)
    if revision == "-1" and heads and "," not in heads:
        merged = ScriptDirectory.from_config(config).get_revision(heads)
        if merged is not None and isinstance(merged.down_revision, tuple):
            revision = merged.down_revision[0]  # un-merges: every merged head stays applied
    command.downgrade(config, revision)


def current(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from hub.db import engine_for

    with engine_for(database_url).connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
        return ",".join(sorted(heads)) or None  # several when branches (0003, 0004) are applied
