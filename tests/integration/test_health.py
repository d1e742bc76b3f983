from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub.config import get_settings
from hub.web.app import create_app


def test_health_and_readiness(client: TestClient, guizhou: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_readiness_reports_an_unreachable_broker(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_BROKER_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok" and ready.json()["broker"] != "ok"


def test_openapi_documents_every_route_with_a_summary(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/accounts" in spec["paths"] and "/readyz" in spec["paths"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert "200" in operation["responses"] or "201" in operation["responses"]
    assert client.get("/docs").status_code == 200
