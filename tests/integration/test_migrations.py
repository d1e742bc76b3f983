"""Migrations run up and down on SQLite and PostgreSQL, and match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub.db import engine_for
from hub.migrate import current, downgrade, include_name, upgrade
from hub.tables import metadata


def test_upgrade_head_then_downgrade_base(database_url: str) -> None:
    engine = engine_for(database_url)
    assert current(database_url) is not None
    tables = set(inspect(engine).get_table_names())
    assert {"orgs", "accounts", "users", "audit_log", "platform_tokens"} <= tables

    downgrade(database_url, "base")
    assert current(database_url) is None
    left = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert left == set()

    upgrade(database_url)
    assert {"orgs", "accounts"} <= set(inspect(engine).get_table_names())


def test_one_step_down_and_back_up(database_url: str) -> None:
    """`govhub db downgrade` (one step) is unambiguous: the migrations have one head."""
    assert current(database_url) == "0012"
    downgrade(database_url)
    assert current(database_url) == "0009"
    downgrade(database_url)
    assert current(database_url) == "0008"
    downgrade(database_url)  # the merge point: back to the four domain branches' heads
    assert current(database_url) == "0004,0005,0006,0007"
    assert "inbox_settings" in set(inspect(engine_for(database_url)).get_table_names())
    upgrade(database_url)
    assert current(database_url) == "0012"


def test_schema_matches_the_models(database_url: str) -> None:
    with engine_for(database_url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": include_name}), metadata
        )
    assert diff == [], f"models and migrations disagree (write a migration): {diff}"
