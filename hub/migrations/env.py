"""Alembic environment: the URL comes from the caller (hub.migrate) or GOVHUB_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from hub.db import engine_for
from hub.migrate import include_name
from hub.tables import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from hub.config import get_settings

        url = get_settings().database_url
    connectable = config.attributes.get("connection") or engine_for(url)
    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
