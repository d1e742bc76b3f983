"""Migrations run up and down on SQLite and PostgreSQL, and match the models exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from hub.config import get_settings
from hub.db import engine_for
from hub.migrate import current, downgrade, include_name, upgrade
from hub.security import decrypt_credentials, encrypt_credentials
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
LINE = [
    "0024",
    "0022",
    "0021",
    "0020",
    "0019",
    "0016",
    "0013",
    "0012",
    "0011",
    "0010",
    "0009",
    "0008",
]


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


def test_0013_gives_old_audit_entries_the_org_of_their_actor(database_url: str) -> None:
    engine = engine_for(database_url)
    downgrade(database_url, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orgs (id, code, name, level, path, livelihood, press_office, "
                "created_at, updated_at) VALUES (7, '522600', '黔东南州', 'prefecture', "
                "'/522600/', false, false, :now, :now)"
            ),
            {"now": "2026-11-01 00:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, display_name, email, password_hash, role, "
                "org_id, is_active, token_version, locale, created_at) VALUES (3, 'qdn-admin', "
                "'', '', 'x', 'admin', 7, true, 0, 'zh-CN', :now)"
            ),
            {"now": "2026-11-01 00:00:00+00:00"},
        )
        for actor in ("3", "NULL"):
            conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor_id, actor_name, action, object_type, "
                    f"object_id, summary, client_ip) VALUES (:now, {actor}, 'x', "
                    "'calendar.override', 'calendar', '', '', '')"
                ),
                {"now": "2026-11-01 00:00:00+00:00"},
            )
    upgrade(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT actor_id, org_id FROM audit_log ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(3, 7), (None, None)]


def test_schema_matches_the_models(database_url: str) -> None:
    with engine_for(database_url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": include_name}), metadata
        )
    assert diff == [], f"models and migrations disagree (write a migration): {diff}"


def test_callback_tokens_move_into_the_encrypted_credentials_and_back(database_url: str) -> None:
    """0011: the plaintext accounts.callback_token column is folded into credentials_encrypted
    (the column wins over a stale copy there); downgrading brings the column back, filled."""
    key = get_settings().credentials_key
    engine = engine_for(database_url)
    downgrade(database_url, "0009")
    now = datetime.now(UTC)
    stale = encrypt_credentials(key, {"app_id": "wx1", "app_secret": "s", "callback_token": "old"})
    bare = encrypt_credentials(key, {"app_id": "wx2", "app_secret": "s"})
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orgs (id, code, name, level, path, livelihood, press_office, "
                "created_at, updated_at) VALUES (1, '520000', '贵州省', 'province', '/1/', "
                "false, false, :now, :now)"
            ),
            {"now": now},
        )
        for account_id, credentials, token in (
            (1, stale, "tok-one"),
            (2, bare, "tok-two"),
            (3, bare, ""),
        ):
            conn.execute(
                text(
                    "INSERT INTO accounts (id, org_id, platform, name, handle, interaction_channel,"
                    " status, kind, credentials_encrypted, callback_token, last_seen_remote_id,"
                    " created_at, updated_at) VALUES (:id, 1, 'wechat', 'a', '', false, 'active',"
                    " '', :credentials, :token, '', :now, :now)"
                ),
                {"id": account_id, "credentials": credentials, "token": token, "now": now},
            )
    upgrade(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, credentials_encrypted FROM accounts ORDER BY id"))
        tokens = {i: decrypt_credentials(key, c).get("callback_token") for i, c in rows}
    assert tokens == {1: "tok-one", 2: "tok-two", 3: None}
    assert "callback_token" not in {c["name"] for c in inspect(engine).get_columns("accounts")}

    downgrade(database_url, "0009")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, callback_token FROM accounts ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "tok-one"), (2, "tok-two"), (3, "")]
    upgrade(database_url)
    with engine.begin() as conn:  # leave the database as the fixture made it
        conn.execute(text("DELETE FROM accounts"))
        conn.execute(text("DELETE FROM orgs"))
