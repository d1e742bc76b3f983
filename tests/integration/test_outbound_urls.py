"""Outbound URLs are checked when they are registered (issue 14, item 12)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub.config import get_settings
from hub.web.app import create_app

pytestmark = pytest.mark.integration

SECRET = "a-long-enough-partner-secret"


def webhook_account(url: str) -> dict[str, object]:
    return {
        "org_code": "522601",
        "platform": "webhook",
        "name": "凯里新闻网",
        "credentials": {"url": url, "secret": SECRET},
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
        "http://10.0.0.8/hook",
    ],
)
def test_webhook_accounts_refuse_internal_urls_at_registration(
    client: TestClient, auth: dict[str, dict[str, str]], url: str
) -> None:
    refused = client.post("/api/v1/accounts", json=webhook_account(url), headers=auth["admin"])
    assert refused.status_code == 422, refused.text
    assert "内网或本机" in refused.json()["detail"]
    assert client.get("/api/v1/accounts", headers=auth["admin"]).json() == []


def test_changing_a_webhook_url_is_checked_too(
    client: TestClient, auth: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    with TestClient(create_app()) as open_client:
        made = open_client.post(
            "/api/v1/accounts",
            json=webhook_account("http://127.0.0.1:9/hook"),
            headers=auth["admin"],
        )
        assert made.status_code == 201, made.text  # allowed by the operator
    monkeypatch.setenv("GOVHUB_WEBHOOK_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    changed = client.patch(
        f"/api/v1/accounts/{made.json()['id']}",
        json={"credentials": {"url": "http://169.254.169.254/", "secret": SECRET}},
        headers=auth["admin"],
    )
    assert changed.status_code == 422, changed.text


def test_partner_urls_refuse_the_6to4_form_of_loopback(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    for url in ("http://[2002:7f00:1::]:9/hook", "http://[::ffff:127.0.0.1]/hook"):
        body = {"name": "sixtofour", "url": url, "secret": SECRET}
        refused = client.post("/api/v1/partners", json=body, headers=auth["admin"])
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "url"
