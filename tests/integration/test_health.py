from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from hub.config import get_settings
from hub.web.app import create_app


def beating(database_url: str, **ages: timedelta) -> None:
    """Heartbeats of ``worker`` and ``beat`` as if recorded ``age`` ago (default: just now)."""
    from sqlmodel import Session

    from hub.db import engine_for
    from hub.sqltypes import utcnow
    from hub.system import Heartbeat

    with Session(engine_for(database_url)) as session:
        for name in ("worker", "beat"):
            row = session.get(Heartbeat, name) or Heartbeat(name=name, at=utcnow())
            row.at = utcnow() - ages.get(name, timedelta(0))
            session.add(row)
        session.commit()


def test_health_and_readiness(client: TestClient, guizhou: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    beating(guizhou["GOVHUB_DATABASE_URL"])
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
        "worker": "ok",
        "beat": "ok",
    }


def test_readiness_is_503_while_no_worker_or_beat_has_been_seen(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["worker"] == ready.json()["beat"] == "never seen"
    assert ready.json()["database"] == "ok"


def test_readiness_names_a_stalled_beat(client: TestClient, guizhou: dict[str, str]) -> None:
    beating(guizhou["GOVHUB_DATABASE_URL"], beat=timedelta(minutes=5))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["worker"] == "ok"
    assert ready.json()["beat"].startswith("stale: last seen 30")  # 300 s and a little


def test_readiness_reports_migrations_behind_the_code(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from hub.migrate import current, downgrade, upgrade

    url = guizhou["GOVHUB_DATABASE_URL"]
    beating(url)
    head = current(url)
    downgrade(url)
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["migrations"].endswith(f"head is {head}")
    finally:
        upgrade(url)


def test_readiness_reports_an_unreachable_broker(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    beating(guizhou["GOVHUB_DATABASE_URL"])
    monkeypatch.setenv("GOVHUB_BROKER_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok" and ready.json()["broker"] != "ok"


def test_admins_see_a_banner_when_publishing_stalls_and_status_says_why(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from typer.testing import CliRunner

    from hub.cli import app
    from tests.integration.test_editor_pages import login

    url = guizhou["GOVHUB_DATABASE_URL"]
    beating(url, worker=timedelta(minutes=4))
    login(client, "admin")
    home = client.get("/")
    assert "发布可能已停滞" in home.text and "govhub worker" in home.text
    assert "govhub beat）超过" not in home.text  # only what is stalled is named

    status = CliRunner().invoke(app, ["status"])
    assert status.exit_code == 1
    assert "✗ 发布进程（govhub worker）心跳：stale" in status.stdout

    beating(url)
    assert "发布可能已停滞" not in client.get("/").text
    assert CliRunner().invoke(app, ["status"]).exit_code == 0


def test_status_lists_each_worker_process_and_which_went_silent(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from typer.testing import CliRunner

    from hub.cli import app
    from hub.sqltypes import utcnow
    from hub.system import beat_worker

    beating(guizhou["GOVHUB_DATABASE_URL"])
    beat_worker("worker1@hub-a:101:aa", node="worker1@hub-a")
    beat_worker("worker2@hub-a:102:bb", node="worker2@hub-a", now=utcnow() - timedelta(minutes=2))
    status = CliRunner().invoke(app, ["status"])
    assert status.exit_code == 0, status.stdout  # readiness is the task heartbeat's matter
    assert "发布进程（各进程自身心跳）：1 个在线" in status.stdout
    assert "worker1@hub-a" in status.stdout and "：在线" in status.stdout
    silent = next(line for line in status.stdout.splitlines() if "worker2@hub-a" in line)
    assert re.search(r"已无心跳（stale: last seen 12\d s ago）", silent) and "接管" in silent


def test_editors_are_not_shown_the_operations_banner(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from tests.integration.test_editor_pages import login

    beating(guizhou["GOVHUB_DATABASE_URL"], worker=timedelta(minutes=4))
    login(client, "kaili-editor")
    assert "发布可能已停滞" not in client.get("/").text


def test_openapi_documents_every_route_with_a_summary(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/accounts" in spec["paths"] and "/readyz" in spec["paths"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert {"200", "201", "204"} & set(operation["responses"]), f"{method.upper()} {path}"
    assert client.get("/docs").status_code == 200
