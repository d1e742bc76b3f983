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


# The revisions after the domain branches were merged (0008), newest first: one straight line.
LINE = ["0016", "0010", "0009", "0008"]


def test_one_step_down_and_back_up(database_url: str) -> None:
    """`govhub db downgrade` (one step) is unambiguous: the migrations have one head."""
    assert current(database_url) == LINE[0]
    for older in LINE[1:]:
        downgrade(database_url)
        assert current(database_url) == older
    assert "user_sessions" not in set(inspect(engine_for(database_url)).get_table_names())
    downgrade(database_url)  # the merge point: back to the four domain branches' heads
    assert current(database_url) == "0004,0005,0006,0007"
    assert "inbox_settings" in set(inspect(engine_for(database_url)).get_table_names())
    upgrade(database_url)
    assert current(database_url) == LINE[0]


def test_schema_matches_the_models(database_url: str) -> None:
    with engine_for(database_url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": include_name}), metadata
        )
    assert diff == [], f"models and migrations disagree (write a migration): {diff}"
