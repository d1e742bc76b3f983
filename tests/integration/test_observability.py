"""Watching the hub: /metrics (off, bearer-protected, what it counts), request ids, the access
and delivery outcome lines (JSON in production, no secrets), and the Grafana dashboard's
queries against what /metrics exports (docs/operations.md, "Watching")."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, select

from hub import logs
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.models import Delivery
from hub.delivery.pacing import get_pacer
from hub.metrics import clear_state_cache
from hub.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
APP_SECRET = "app-secret-value-0123456789abcdef"


@pytest.fixture
def metrics_on(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Metrics switched on, this process's counts read in memory (no shared folder)."""
    monkeypatch.setenv("GOVHUB_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("GOVHUB_METRICS_DIR", "")
    get_settings.cache_clear()
    with TestClient(create_app(), client=("203.0.113.7", 50000)) as test_client:
        yield test_client
    get_settings.cache_clear()


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    clear_state_cache()
    answer = client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def hall_post(client: TestClient, auth: dict[str, dict[str, str]], title: str) -> int:
    """An approved post to a new hall account of 凯里市: its delivery is queued."""
    account = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": f"凯里发布厅{title}"},
        headers=auth["admin"],
    )
    assert account.status_code == 201, account.text
    post = client.post(
        "/api/v1/posts",
        json={
            "title": title,
            "body": "请做好防汛准备。",
            "target_account_ids": [account.json()["id"]],
        },
        headers=auth["kaili-editor"],
    ).json()["id"]
    assert client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"]).is_success
    assert client.post(f"/api/v1/posts/{post}/approve", headers=auth["kaili-reviewer"]).is_success
    return int(post)


def publish_all(post_id: int) -> None:
    url = get_settings().database_url
    with Session(engine_for(url)) as session:
        ids = session.exec(select(Delivery.id).where(Delivery.post_id == post_id)).all()
    for delivery_id in ids:
        with Session(engine_for(url)) as session:
            assert (
                engine.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())
                == "published"
            )


# -- /metrics ------------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=BEARER).status_code == 404


def test_metrics_want_the_bearer_token(metrics_on: TestClient) -> None:
    assert metrics_on.get("/metrics").status_code == 401
    wrong = metrics_on.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert metrics_on.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    assert metrics_on.get("/metrics", headers=BEARER).status_code == 200
    assert "/metrics" not in metrics_on.get("/openapi.json").json()["paths"]


def test_publishing_a_post_moves_it_through_the_delivery_gauges_and_counters(
    metrics_on: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    before = scrape(metrics_on)
    # every state and platform of the registry is there from the start (zero)
    assert ("govhub_deliveries", (("platform", "hall"), ("state", "queued"))) in before
    assert ("govhub_deliveries", (("platform", "weibo"), ("state", "failed"))) in before
    assert value(before, "govhub_metrics_source_up", source="database") == 1
    assert value(before, "govhub_metrics_source_up", source="broker") == 1
    assert ("govhub_queue_depth", (("queue", "celery"),)) in before

    post = hall_post(metrics_on, auth, "防汛通知")
    queued = scrape(metrics_on)
    assert value(queued, "govhub_deliveries", state="queued", platform="hall") == 1
    assert value(queued, "govhub_deliveries", state="published", platform="hall") == 0

    publish_all(post)
    after = scrape(metrics_on)
    assert value(after, "govhub_deliveries", state="queued", platform="hall") == 0
    assert value(after, "govhub_deliveries", state="published", platform="hall") == 1
    attempts = ("govhub_delivery_attempts_total",)
    assert value(after, *attempts, platform="hall", error_class="none") == (
        value(before, *attempts, platform="hall", error_class="none") + 1
    )
    latency = "govhub_approval_to_published_seconds_count"
    assert value(after, latency, platform="hall") == value(before, latency, platform="hall") + 1


def test_a_scheduled_post_counts_in_lateness_not_in_approval_latency(
    metrics_on: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    from hub.posts.service import release_due

    account = metrics_on.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅定时"},
        headers=auth["admin"],
    ).json()["id"]
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    post = metrics_on.post(
        "/api/v1/posts",
        json={
            "title": "定时发布",
            "body": "内容",
            "target_account_ids": [account],
            "scheduled_at": at.isoformat(),
        },
        headers=auth["kaili-editor"],
    ).json()["id"]
    assert metrics_on.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"]).is_success
    assert metrics_on.post(
        f"/api/v1/posts/{post}/approve", headers=auth["kaili-reviewer"]
    ).is_success
    before = scrape(metrics_on)
    url = get_settings().database_url
    due = at + timedelta(seconds=1)
    with Session(engine_for(url)) as session:
        (delivery_id,), _missed = release_due(session=session, now=due)
        session.commit()
    with Session(engine_for(url)) as session:
        outcome = engine.publish(
            session=session, delivery_id=delivery_id, pacer=get_pacer(), now=due
        )
        assert outcome == "published"
    after = scrape(metrics_on)
    late, approval = (
        "govhub_scheduled_lateness_seconds_count",
        "govhub_approval_to_published_seconds_count",
    )
    assert value(after, late, platform="hall") == value(before, late, platform="hall") + 1
    assert value(after, approval, platform="hall") == value(before, approval, platform="hall")


def test_token_refreshes_are_counted_by_platform(metrics_on: TestClient) -> None:
    from hub.delivery.channels import token_store

    before = scrape(metrics_on)
    store = token_store(get_settings())
    with store.lock("wechat:wx-metrics"):
        store.put("wechat:wx-metrics", "ACCESS-TOKEN", datetime.now(UTC) + timedelta(hours=2))
    after = scrape(metrics_on)
    name = "govhub_token_refreshes_total"
    assert value(after, name, platform="wechat") == value(before, name, platform="wechat") + 1


def test_metrics_still_answer_when_the_broker_is_away(
    metrics_on: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    get_settings.cache_clear()
    started = time.monotonic()
    samples = scrape(metrics_on)
    assert time.monotonic() - started < 10
    assert value(samples, "govhub_metrics_source_up", source="broker") == 0
    assert value(samples, "govhub_metrics_source_up", source="database") == 1
    assert not any(name == "govhub_queue_depth" for name, _labels in samples)


def test_http_latency_is_labelled_by_route_template_not_path(
    metrics_on: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    post = hall_post(metrics_on, auth, "路由标签")
    assert metrics_on.get(f"/api/v1/posts/{post}", headers=auth["kaili-editor"]).status_code == 200
    assert metrics_on.get("/no/such/page/12345").status_code == 404
    metrics_on.request("BREW", "/healthz")  # any token is a method to HTTP: not a label value
    text = metrics_on.get("/metrics", headers=BEARER).text
    assert re.search(
        r'govhub_http_request_duration_seconds_count\{method="GET",route="/api/v1/posts/\{post_id\}",'
        r'status="200"\} [1-9]',
        text,
    ), text
    assert f'/api/v1/posts/{post}"' not in text  # never the raw path
    assert "/no/such/page" not in text
    assert 'route="(unmatched)",status="404"' in text
    assert 'method="BREW"' not in text and 'method="other",route="/healthz"' in text


def test_request_ids_are_kept_when_sane_and_made_otherwise(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42"
    made = client.get("/healthz", headers={"X-Request-ID": "no spaces <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert client.get("/healthz").headers["x-request-id"] != made.headers["x-request-id"]


def test_the_metrics_folder_adds_up_other_processes_and_forgets_dead_readers(
    metrics_on: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process counts into the host's folder; /metrics adds it up. A process killed
    without cleaning up loses its live-reader gauge at the next scrape; its counts stay."""
    folder = tmp_path / "metrics"
    child = textwrap.dedent(
        f"""
        import os, sys
        from hub.metrics import metrics, use_directory
        assert use_directory({str(folder)!r})
        m = metrics()
        m.attempts.labels("wechat", "transient").inc(3)
        m.live_readers.set(int(sys.argv[1]))
        print("ready", flush=True)
        if sys.argv[2] == "crash":
            os._exit(0)  # no atexit: as if killed
        sys.stdin.read()
        """
    )
    crashed = subprocess.run(
        [sys.executable, "-c", child, "5", "crash"], cwd=ROOT, capture_output=True, text=True
    )
    assert crashed.returncode == 0, crashed.stderr
    alive = subprocess.Popen(
        [sys.executable, "-c", child, "2", "stay"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert alive.stdout is not None and alive.stdout.readline().strip() == "ready"
        monkeypatch.setenv("GOVHUB_METRICS_DIR", str(folder))
        get_settings.cache_clear()
        samples = scrape(metrics_on)
        assert (
            value(
                samples,
                "govhub_delivery_attempts_total",
                platform="wechat",
                error_class="transient",
            )
            == 6
        )
        assert value(samples, "govhub_live_readers") == 2  # the crashed process's 5 are gone
    finally:
        assert alive.stdin is not None
        alive.stdin.close()
        alive.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and list(folder.glob("gauge_live*")):
        time.sleep(0.05)
    assert not list(folder.glob("gauge_live*"))  # a clean exit removes its own
    samples = scrape(metrics_on)
    assert value(samples, "govhub_live_readers") == 0
    assert (
        value(samples, "govhub_delivery_attempts_total", platform="wechat", error_class="transient")
        == 6
    )


def test_every_metric_the_grafana_dashboard_queries_is_exported(metrics_on: TestClient) -> None:
    dashboard = json.loads((ROOT / "docs" / "grafana-govhub.json").read_text("utf-8"))
    queries = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(queries) >= 10
    text = metrics_on.get("/metrics", headers=BEARER).text
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    queried = {name for expr in queries for name in re.findall(r"\bgovhub_[a-z_]+", expr)}
    assert queried, queries
    missing = sorted(
        name
        for name in queried
        if name not in exported and re.sub(r"_(total|bucket|count|sum)$", "", name) not in exported
    )
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"


# -- log lines -----------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    logs.unconfigure()


def test_production_logs_are_json_with_request_ids_outcomes_and_no_secrets(
    client: TestClient, auth: dict[str, dict[str, str]], log_lines: io.StringIO
) -> None:
    logs.configure("info", production=True, stream=log_lines)
    login = client.post(
        "/api/v1/auth/token",
        data={"username": "kaili-editor", "password": "kaili-editor-password"},
        headers={"X-Request-ID": "req-login-1"},
    )
    assert login.status_code == 200
    bearer = login.json()["access_token"]
    account = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "wechat",
            "name": "凯里发布公众号",
            "credentials": {"app_id": "wxkaili", "app_secret": APP_SECRET},
        },
        headers={**auth["admin"], "X-Request-ID": "req-account-2"},
    )
    assert account.status_code == 201, account.text
    post = hall_post(client, auth, "日志检查")
    publish_all(post)
    # a library logging a URL with a token in it (httpx does at INFO)
    logs.logging.getLogger("httpx").warning(
        "HTTP Request: GET https://api.example.cn/x?access_token=TOKEN123&appid=1"
    )

    text = log_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert "kaili-editor-password" not in text and APP_SECRET not in text
    assert bearer not in text and "TOKEN123" not in text

    access = [line for line in lines if line["logger"] == "govhub.access"]
    by_id = {line.get("request_id"): line for line in access}
    login_line = by_id["req-login-1"]
    assert login_line["route"] == "/api/v1/auth/token" and login_line["status"] == 200
    assert login_line["method"] == "POST" and login_line["duration_ms"] >= 0
    assert login_line["level"] == "INFO" and login_line["time"]
    account_line = by_id["req-account-2"]
    assert account_line["status"] == 201 and account_line["user_id"]

    outcomes = [line for line in lines if line["logger"] == "govhub.outcomes"]
    assert len(outcomes) == 1, outcomes
    (outcome,) = outcomes
    assert outcome["post_id"] == post and outcome["delivery_id"]
    assert outcome["platform"] == "hall" and outcome["state"] == "published"
    assert outcome["attempt"] == 1 and outcome["error_class"] == "none"
    assert outcome["account_id"] and outcome["duration_ms"] >= 0
    redacted = [line for line in lines if line["logger"] == "httpx"]
    assert redacted and "access_token=***" in redacted[0]["message"]


def test_development_logs_are_readable_text(client: TestClient, log_lines: io.StringIO) -> None:
    logs.configure("info", production=False, stream=log_lines)
    client.get("/healthz", headers={"X-Request-ID": "dev-1"})
    (line,) = [x for x in log_lines.getvalue().splitlines() if "govhub.access" in x]
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO govhub.access: GET /healthz 200  request_id=dev-1 ",
        line,
    ), line
    assert "route=/healthz" in line and "duration_ms=" in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_a_quiet_console_still_shows_delivery_outcomes(
    client: TestClient, auth: dict[str, dict[str, str]], log_lines: io.StringIO
) -> None:
    """`--log-level warning` (the demo's console): no access lines, but every outcome."""
    logs.configure("warning", production=False, stream=log_lines)
    post = hall_post(client, auth, "安静的控制台")
    publish_all(post)
    url = get_settings().database_url
    with Session(engine_for(url)) as session:
        (delivery_id,) = session.exec(select(Delivery.id).where(Delivery.post_id == post)).all()
        assert engine.withdraw(session=session, delivery_id=delivery_id) == "withdrawn"
    text = log_lines.getvalue()
    assert "govhub.access" not in text
    published, withdrawn = [x for x in text.splitlines() if "govhub.outcomes" in x]
    assert f"post_id={post}" in published and "platform=hall" in published
    assert "state=published" in published and "action=publish" in published
    assert f"delivery_id={delivery_id}" in withdrawn
    assert "state=withdrawn" in withdrawn and "action=withdraw" in withdrawn
