"""`govhub doctor` against a real database and the platform sandboxes over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox.app import start_sandboxes
from connectors.sandbox.server import RunningServer
from hub.accounts.demo import bind_sandbox_accounts
from hub.accounts.models import Account, Platform
from hub.accounts.service import credentials_of
from hub.cli import app
from hub.config import get_settings
from hub.db import engine_for
from hub.sqltypes import utcnow
from tests.factories import credentials_key

runner = CliRunner()


@pytest.fixture
def sandbox(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    _sandboxes, server = start_sandboxes(public_base_url="http://hall.test")
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", f"{server.base_url}/weibo")
    monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", f"{server.base_url}/wechat")
    get_settings.cache_clear()
    with httpx.Client() as client, Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        bind_sandbox_accounts(
            session=session,
            client=client,
            sandbox_url=server.base_url,
            public_base_url="http://hall.test",
            credentials_key=credentials_key(),
            now=utcnow(),
        )
        session.commit()
    try:
        yield server
    finally:
        server.stop()


def _doctor(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["doctor", "--as-json", *args])
    return result.exit_code, json.loads(result.stdout)


def _findings(report: dict[str, object], level: str) -> list[dict[str, str]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f for f in findings if f["level"] == level]


def test_a_healthy_matrix_passes_and_reads_every_platform_account(
    sandbox: RunningServer, guizhou: dict[str, str]
) -> None:
    code, report = _doctor()
    assert code == 0, _findings(report, "error")
    probed = [f for f in _findings(report, "ok") if "平台接口正常" in f["message"]]
    assert len(probed) == 8  # four demo orgs × (Weibo, WeChat)
    # the development defaults are called out, but do not fail a development install
    warned = {f["subject"] for f in _findings(report, "warn")}
    assert {"GOVHUB_SECRET_KEY", "GOVHUB_WEIBO_APP_KEY", "GOVHUB_WEIBO_API_BASE"} <= warned


def test_an_ip_whitelist_fault_names_the_address_to_add(
    sandbox: RunningServer, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    with Session(engine_for(url)) as session:
        account = session.exec(
            select(Account).where(Account.platform == Platform("wechat"))
        ).first()
        assert account is not None
        creds = credentials_of(account, credentials_key())
    # the account's administrator whitelisted another server's address only
    httpx.post(
        f"{sandbox.base_url}/wechat/_sandbox/apps",
        json={
            "appid": creds["app_id"],
            "secret": creds["app_secret"],
            "ip_whitelist": ["10.9.9.9"],
        },
    ).raise_for_status()

    code, report = _doctor("--account", str(account.id))
    assert code == 1
    (error,) = _findings(report, "error")
    assert f"#{account.id}" in error["subject"]
    assert "127.0.0.1" in error["message"] and "IP白名单" in error["message"]


def test_production_with_sandbox_settings_fails_and_says_what_to_set(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("GOVHUB_ENV", "production")
    monkeypatch.setenv("GOVHUB_SECRET_KEY", "a-real-secret-" + "x" * 32)
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("GOVHUB_PUBLIC_BASE_URL", "http://127.0.0.1:8000")
    get_settings.cache_clear()

    code, report = _doctor("--skip-accounts")
    assert code == 1
    errors = {f["subject"]: f for f in _findings(report, "error")}
    assert set(errors) >= {"GOVHUB_PUBLIC_BASE_URL", "GOVHUB_WEIBO_APP_KEY"}
    assert "安全域名" in errors["GOVHUB_PUBLIC_BASE_URL"]["fix"]
    assert "GOVHUB_SECRET_KEY" not in errors


def test_a_database_behind_its_migrations_is_an_error(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.migrate import current, downgrade, upgrade

    url = guizhou["GOVHUB_DATABASE_URL"]
    head = current(url)
    downgrade(url)
    try:
        code, report = _doctor("--skip-accounts")
        assert code == 1
        (migrations,) = [f for f in _findings(report, "error") if f["subject"] == "数据库结构"]
        assert "govhub db upgrade" in migrations["fix"]
    finally:
        upgrade(url)
    assert current(url) == head


def test_an_unaudited_weibo_app_is_named_with_what_to_do(
    sandbox: RunningServer, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    with Session(engine_for(url)) as session:
        account = session.exec(select(Account).where(Account.platform == Platform("weibo"))).first()
        assert account is not None
    httpx.post(
        f"{sandbox.base_url}/weibo/_sandbox/config", json={"app_audited": False}
    ).raise_for_status()
    code, report = _doctor("--account", str(account.id))
    assert code == 1
    (error,) = _findings(report, "error")
    assert "open.weibo.com" in error["message"]
    with Session(engine_for(url)) as session:  # the doctor only looked: nothing was flagged
        again = session.get(Account, account.id)
        assert again is not None and again.status == "active"


def test_comment_permission_refused_is_a_warning_not_an_error(
    sandbox: RunningServer, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    with Session(engine_for(url)) as session:
        account = session.exec(select(Account).where(Account.platform == Platform("weibo"))).first()
        assert account is not None
    httpx.post(
        f"{sandbox.base_url}/weibo/_sandbox/config", json={"comments_permission": False}
    ).raise_for_status()
    code, report = _doctor("--account", str(account.id))
    assert code == 0
    (warning,) = [f for f in _findings(report, "warn") if f"#{account.id}" in f["subject"]]
    assert "10014" in warning["message"] or "评论" in warning["message"]
