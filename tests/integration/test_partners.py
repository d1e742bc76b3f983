"""Partner sites subscribed to the hall: registration (SSRF-guarded), signed once-only delivery,
retries with backoff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from connectors.sandbox.partner import PartnerFault, PartnerSandbox
from connectors.sandbox.server import RunningServer, serve
from hub.config import get_settings
from hub.db import engine_for
from hub.hall import service
from hub.hall.partners import MAX_ATTEMPTS, SweepResult, sweep_partners
from hub.sqltypes import utcnow
from scheduler.app import BEAT_SCHEDULE, get_celery
from tests.integration import hall_data

SECRET = "partner-secret-0123456789"


@pytest.fixture
def partner_site() -> Iterator[tuple[PartnerSandbox, RunningServer]]:
    sandbox = PartnerSandbox()
    server = serve(sandbox)
    yield sandbox, server
    server.stop()


@pytest.fixture
def allow_private(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVHUB_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()


def register(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    server: RunningServer,
    sandbox: PartnerSandbox,
    name: str,
) -> dict[str, object]:
    sandbox.set_secret(name, SECRET)
    response = client.post(
        "/api/v1/partners",
        json={"name": name, "url": f"{server.base_url}/hooks/{name}", "secret": SECRET},
        headers=auth["admin"],
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def sweep(url: str, *, later: timedelta = timedelta(0)) -> SweepResult:
    with Session(engine_for(url), expire_on_commit=False) as session:
        return sweep_partners(session=session, now=utcnow() + later)


def test_each_new_entry_reaches_each_partner_once_signed(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    allow_private: None,
    partner_site: tuple[PartnerSandbox, RunningServer],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandbox, server = partner_site
    before = hall_data.publish(url, org_code="522601", title="订阅之前的稿件", body="旧")
    created = register(client, auth, server, sandbox, "news-site")
    assert "secret" not in created and SECRET not in str(created)

    first = hall_data.publish(url, org_code="522601", title="凯里市发布会", body="政务公开")
    second = hall_data.publish(url, org_code="520102", title="南明区通知", body="内容")

    # The engine's hook after commit: one entry now.
    with Session(engine_for(url)) as session:
        result = service.notify_partners(session=session, entry_id=first.entry_id)
    assert result.sent == 1
    # Beat's sweep finds the other; repeated sweeps and notifications send nothing twice.
    assert sweep(url).sent == 1
    assert sweep(url).sent == 0
    with Session(engine_for(url)) as session:
        assert service.notify_partners(session=session, entry_id=first.entry_id).sent == 0

    received = sandbox.received()
    assert [r.delivery for r in received] == [
        f"hall-entry-{first.entry_id}",
        f"hall-entry-{second.entry_id}",
    ]
    assert all(r.verified and r.name == "news-site" for r in received)
    post = received[0].body["post"]
    assert post["title"] == "凯里市发布会"
    assert post["link"] == f"http://hall.test/hall/posts/{first.post_id}"
    assert post["org_code"] == "522601"
    assert f"hall-entry-{before.entry_id}" not in sandbox.entries("news-site")

    listed = client.get("/api/v1/partners", headers=auth["admin"]).json()
    assert listed == [
        {
            "id": created["id"],
            "name": "news-site",
            "url": f"{server.base_url}/hooks/news-site",
            "active": True,
            "created_at": listed[0]["created_at"],
            "pending": 0,
            "sent": 2,
            "failed": 0,
        }
    ]

    # Removed partners get nothing more.
    removed = client.delete(f"/api/v1/partners/{created['id']}", headers=auth["admin"])
    assert removed.status_code == 200 and removed.json()["active"] is False
    hall_data.publish(url, org_code="522601", title="删除之后", body="x")
    assert sweep(url).sent == 0
    assert len(sandbox.received()) == 2
    assert client.get("/api/v1/partners", headers=auth["admin"]).json() == []


def test_a_withdrawn_entry_is_withdrawn_from_the_partners_that_had_it(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    allow_private: None,
    partner_site: tuple[PartnerSandbox, RunningServer],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandbox, server = partner_site
    register(client, auth, server, sandbox, "news-site")
    wrong = hall_data.publish(url, org_code="522601", title="有误的通报", body="错误信息")
    right = hall_data.publish(url, org_code="520102", title="南明区通知", body="内容")
    assert sweep(url).sent == 2
    assert set(sandbox.entries("news-site")) == {
        f"hall-entry-{wrong.entry_id}",
        f"hall-entry-{right.entry_id}",
    }

    hall_data.withdraw(url, post_id=wrong.post_id, reason="信息有误，统一撤回")
    assert sweep(url).sent == 1
    withdrawal = sandbox.received()[-1]
    assert withdrawal.verified
    assert withdrawal.body["event"] == "post.withdrawn"
    assert withdrawal.body["id"] == f"hall-entry-{wrong.entry_id}"  # the id it was sent under
    assert set(sandbox.entries("news-site")) == {f"hall-entry-{right.entry_id}"}
    assert sweep(url).sent == 0, "a withdrawal goes out once"

    # An entry withdrawn before it reached the partner is never sent, nor withdrawn.
    never = hall_data.publish(url, org_code="522601", title="未推送即撤回", body="x")
    hall_data.withdraw(url, post_id=never.post_id, reason="撤回")
    assert sweep(url).sent == 0
    assert all(str(r.body.get("id")) != f"hall-entry-{never.entry_id}" for r in sandbox.received())
    listed = client.get("/api/v1/partners", headers=auth["admin"]).json()
    assert listed[0]["sent"] == 3 and listed[0]["failed"] == 0


def test_a_failing_partner_is_retried_with_backoff(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    allow_private: None,
    partner_site: tuple[PartnerSandbox, RunningServer],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandbox, server = partner_site
    register(client, auth, server, sandbox, "flaky")
    sandbox.add_fault(PartnerFault(status=503, times=2))
    entry = hall_data.publish(url, org_code="522601", title="重试的稿件", body="x")

    assert sweep(url).retry == 1
    assert sandbox.entries("flaky") == {}
    assert sweep(url).sent == 0  # not due yet: backing off
    listed = client.get("/api/v1/partners", headers=auth["admin"]).json()
    assert listed[0]["pending"] == 1 and listed[0]["sent"] == 0

    assert sweep(url, later=timedelta(seconds=31)).retry == 1  # second failure
    assert sweep(url, later=timedelta(seconds=50)).sent == 0  # now waits 60 s
    assert sweep(url, later=timedelta(seconds=95)).sent == 1
    assert list(sandbox.entries("flaky")) == [f"hall-entry-{entry.entry_id}"]
    assert [r.verified for r in sandbox.received()] == [True]
    assert client.get("/api/v1/partners", headers=auth["admin"]).json()[0]["sent"] == 1


def test_a_partner_that_keeps_failing_gives_up(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    allow_private: None,
    partner_site: tuple[PartnerSandbox, RunningServer],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandbox, server = partner_site
    register(client, auth, server, sandbox, "down")
    sandbox.add_fault(PartnerFault(status=500, times=100))
    hall_data.publish(url, org_code="522601", title="稿件", body="x")
    for attempt in range(MAX_ATTEMPTS):
        sweep(url, later=timedelta(hours=2 * attempt))
    assert client.get("/api/v1/partners", headers=auth["admin"]).json()[0]["failed"] == 1
    assert sweep(url, later=timedelta(days=1)).sent == 0


def test_a_refused_entry_is_not_retried(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    allow_private: None,
    partner_site: tuple[PartnerSandbox, RunningServer],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandbox, server = partner_site
    register(client, auth, server, sandbox, "picky")
    sandbox.add_fault(PartnerFault(status=400, times=1))
    hall_data.publish(url, org_code="522601", title="稿件", body="x")
    assert sweep(url).failed == 1
    assert sweep(url, later=timedelta(hours=2)).sent == 0
    assert sandbox.entries("picky") == {}


def test_registration_refuses_private_urls_and_non_admins(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    body = {"name": "intranet", "url": "http://127.0.0.1:9/hook", "secret": SECRET}
    refused = client.post("/api/v1/partners", json=body, headers=auth["admin"])
    assert refused.status_code == 422
    assert refused.json()["detail"] == "合作网站推送地址 127.0.0.1 指向内网或本机地址，已拒绝发送"
    assert refused.json()["field"] == "url"
    for bad in ("ftp://example.org/x", "not a url"):
        answer = client.post("/api/v1/partners", json={**body, "url": bad}, headers=auth["admin"])
        assert answer.status_code == 422
        assert "http(s)" in answer.json()["detail"]
    short = client.post("/api/v1/partners", json={**body, "secret": "short"}, headers=auth["admin"])
    assert short.status_code == 422

    for user in ("kaili-editor", "supervisor"):
        assert client.post("/api/v1/partners", json=body, headers=auth[user]).status_code == 403
        assert client.get("/api/v1/partners", headers=auth[user]).status_code == 403
    assert client.get("/api/v1/partners").status_code == 401
    assert client.get("/api/v1/partners", headers=auth["admin"]).json() == []


def test_duplicate_names_conflict(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    allow_private: None,
    partner_site: tuple[PartnerSandbox, RunningServer],
) -> None:
    sandbox, server = partner_site
    register(client, auth, server, sandbox, "twice")
    again = client.post(
        "/api/v1/partners",
        json={"name": "twice", "url": f"{server.base_url}/hooks/twice", "secret": SECRET},
        headers=auth["admin"],
    )
    assert again.status_code == 409


def test_the_sweep_is_on_beat_and_the_tasks_are_registered(hub_env: dict[str, str]) -> None:
    task, every = BEAT_SCHEDULE["hall.sweep-partners"]
    assert task == "hall.sweep_partners" and every == timedelta(seconds=10)
    app = get_celery()
    app.loader.import_default_modules()
    assert {"hall.sweep_partners", "hall.notify_partners"} <= set(app.tasks)
    assert app.conf.beat_schedule["hall.sweep-partners"]["options"]["expires"] == 10.0
